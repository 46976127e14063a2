package indexer

import (
	"context"
	"errors"
	"math/big"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/echain/echain-indexer/indexer/source"
)

// absent reports "no endpoint has it": the follower treats a block the node lacks as a state of
// the chain (not there yet, or reorganised away), not as a failure to retry.
func absent(err error) bool {
	return errors.Is(err, ethereum.NotFound) || errors.Is(err, source.ErrBeyondHead)
}

// header is the canonical header at number (nil: latest), or nil when the node does not have it.
func (fl *Follower) header(ctx context.Context, number *big.Int) (*types.Header, error) {
	h, err := fl.src.HeaderByNumber(ctx, number)
	if absent(err) {
		return nil, nil
	}
	return h, err
}

// headerByHash is like header, by hash.
func (fl *Follower) headerByHash(ctx context.Context, hash common.Hash) (*types.Header, error) {
	h, err := fl.src.HeaderByHash(ctx, hash)
	if absent(err) {
		return nil, nil
	}
	return h, err
}

// txBlock locates a mined transaction; found is false when the node does not know it or it is
// still pending.
func (fl *Follower) txBlock(ctx context.Context, hash common.Hash) (number uint64, block common.Hash, found bool, err error) {
	tx, err := fl.src.TransactionByHash(ctx, hash)
	if absent(err) {
		return 0, common.Hash{}, false, nil
	}
	if err != nil {
		return 0, common.Hash{}, false, err
	}
	if tx.BlockHash == nil || tx.BlockNumber == nil {
		return 0, common.Hash{}, false, nil
	}
	return *tx.BlockNumber, *tx.BlockHash, true, nil
}
