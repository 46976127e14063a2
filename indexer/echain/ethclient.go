package echain

import (
	"context"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/echain/echain-indexer/indexer/source"
)

// EthClient adapts an *ethclient.Client to Chain (the indexer uses *source.Source). Its
// getEventDetails calls travel in JSON-RPC batches.
func EthClient(c *ethclient.Client) Chain { return ethClientChain{c} }

type ethClientChain struct{ c *ethclient.Client }

func (e ethClientChain) CallContract(ctx context.Context, msg ethereum.CallMsg, block *big.Int) ([]byte, error) {
	return e.c.CallContract(ctx, msg, block)
}

func (e ethClientChain) CallContractAtHash(ctx context.Context, msg ethereum.CallMsg, hash common.Hash) ([]byte, error) {
	return e.c.CallContractAtHash(ctx, msg, hash)
}

func (e ethClientChain) BatchCallContext(ctx context.Context, b []rpc.BatchElem) error {
	return e.c.Client().BatchCallContext(ctx, b)
}

// TransactionByHash reads the raw JSON so that transaction types go-ethereum cannot decode
// (OP-stack deposits) still answer.
func (e ethClientChain) TransactionByHash(ctx context.Context, hash common.Hash) (*source.TxInfo, error) {
	var tx *struct {
		Hash  common.Hash     `json:"hash"`
		From  common.Address  `json:"from"`
		To    *common.Address `json:"to"`
		Value *hexutil.Big    `json:"value"`
		Input hexutil.Bytes   `json:"input"`
	}
	if err := e.c.Client().CallContext(ctx, &tx, "eth_getTransactionByHash", hash); err != nil {
		return nil, fmt.Errorf("eth_getTransactionByHash %s: %w", hash, err)
	}
	if tx == nil {
		return nil, fmt.Errorf("transaction %s: %w", hash, ethereum.NotFound)
	}
	info := &source.TxInfo{Hash: tx.Hash, From: tx.From, To: tx.To, Input: tx.Input, Value: new(big.Int)}
	if tx.Value != nil {
		info.Value = tx.Value.ToInt()
	}
	return info, nil
}
