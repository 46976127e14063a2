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

// rpcSource adapts *source.Source to chainSource.
type rpcSource struct{ s *source.Source }

// absent maps "no endpoint has it" to the (nil, nil) the follower expects.
func absent(err error) bool {
	return errors.Is(err, ethereum.NotFound) || errors.Is(err, source.ErrBeyondHead)
}

func (r rpcSource) HeaderByNumber(ctx context.Context, n *big.Int) (*types.Header, error) {
	h, err := r.s.HeaderByNumber(ctx, n)
	if absent(err) {
		return nil, nil
	}
	return h, err
}

func (r rpcSource) HeaderByHash(ctx context.Context, hash common.Hash) (*types.Header, error) {
	h, err := r.s.HeaderByHash(ctx, hash)
	if absent(err) {
		return nil, nil
	}
	return h, err
}

func (r rpcSource) Finalized(ctx context.Context) (*types.Header, error) {
	return r.s.Finalized(ctx)
}

func (r rpcSource) Logs(ctx context.Context, q ethereum.FilterQuery) ([]types.Log, error) {
	return r.s.Logs(ctx, q)
}

func (r rpcSource) TxsManyStats(ctx context.Context, reqs []source.TxRequest) (map[common.Hash]*Tx, source.TxStats, error) {
	return r.s.TxsManyStats(ctx, reqs)
}

func (r rpcSource) BlockContents(ctx context.Context, from, to uint64) ([]source.BlockContent, error) {
	return r.s.BlockContents(ctx, from, to)
}

func (r rpcSource) TxBlock(ctx context.Context, hash common.Hash) (uint64, common.Hash, bool, error) {
	tx, err := r.s.TransactionByHash(ctx, hash)
	if absent(err) {
		return 0, common.Hash{}, false, nil
	}
	if err != nil {
		return 0, common.Hash{}, false, err
	}
	if tx.BlockHash == nil || tx.BlockNumber == nil {
		return 0, common.Hash{}, false, nil // pending
	}
	return *tx.BlockNumber, *tx.BlockHash, true, nil
}

func (r rpcSource) SubscribeNewHeads(ctx context.Context) (<-chan *types.Header, error) {
	return r.s.SubscribeNewHeads(ctx)
}

func (r rpcSource) NewRangeSizer(cfg source.RangeSizerConfig) rangeSizer {
	return source.NewRangeSizer(cfg)
}

func (r rpcSource) Endpoints() []source.EndpointStatus { return r.s.Endpoints() }
