package source

import (
	"context"
	"errors"
	"math/big"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
)

// These make *Source a config.LogSearcher: `start_block: auto` searches with eth_getLogs through
// the source's failover, retries and chain checks.

// FilterLogs is Logs.
func (s *Source) FilterLogs(ctx context.Context, q ethereum.FilterQuery) ([]types.Log, error) {
	return s.Logs(ctx, q)
}

// CodeAt is eth_getCode of addr at block (nil: the latest).
func (s *Source) CodeAt(ctx context.Context, addr common.Address, block *big.Int) ([]byte, error) {
	var out hexutil.Bytes
	err := s.do(ctx, "eth_getCode", 0, 0, func(ctx context.Context, ep *endpoint) error {
		return ep.rpc.call(ctx, &out, "eth_getCode", addr, blockNumArg(block))
	})
	return out, err
}

// RangeTooLarge tells whether err is a *RangeTooLargeError, and the length of the range the
// provider suggested (0: none).
func (s *Source) RangeTooLarge(err error) (uint64, bool) {
	var rte *RangeTooLargeError
	if !errors.As(err, &rte) {
		return 0, false
	}
	if rte.SuggestedTo != 0 && rte.SuggestedTo >= rte.SuggestedFrom {
		return rte.SuggestedTo - rte.SuggestedFrom + 1, true
	}
	return 0, true
}
