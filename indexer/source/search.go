package source

import (
	"context"
	"errors"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/core/types"
)

// These make *Source a config.LogSearcher: `start_block: auto` searches with eth_getLogs through
// the source's failover, retries and chain checks.

// FilterLogs is Logs.
func (s *Source) FilterLogs(ctx context.Context, q ethereum.FilterQuery) ([]types.Log, error) {
	return s.Logs(ctx, q)
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
