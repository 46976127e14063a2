package source

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/core/types"
)

// WalkStats is what one WalkLogs pass did.
type WalkStats struct {
	Blocks   uint64
	Logs     int
	Requests int
	Failures int // too-large answers that made the sizer shrink
	Duration time.Duration
}

// LogsPerSecond is the pass's throughput.
func (w WalkStats) LogsPerSecond() float64 {
	if w.Duration <= 0 {
		return 0
	}
	return float64(w.Logs) / w.Duration.Seconds()
}

// WalkLogs fetches the logs of blocks [from, to] matching q's addresses and topics with bare
// eth_getLogs, one window after another sized by sizer, and hands each answer to fn (nil: drop
// it). It is the yardstick for the follower's backfill: the node's own speed over the same range
// with nothing else done.
func WalkLogs(ctx context.Context, s *Source, q ethereum.FilterQuery, from, to uint64, sizer *RangeSizer, fn func([]types.Log) error) (WalkStats, error) {
	var st WalkStats
	start := time.Now()
	defer func() { st.Duration = time.Since(start) }()
	q.BlockHash = nil
	for cur := from; cur <= to; {
		end := sizer.Next(cur, to)
		for {
			q.FromBlock, q.ToBlock = new(big.Int).SetUint64(cur), new(big.Int).SetUint64(end)
			t0 := time.Now()
			st.Requests++
			logs, err := s.Logs(ctx, q)
			var rte *RangeTooLargeError
			if errors.As(err, &rte) {
				st.Failures++
				next, ok := sizer.Failure(cur, end, err)
				if !ok {
					return st, fmt.Errorf("walk logs %d..%d: %w", cur, end, err)
				}
				end = next
				continue
			}
			if err != nil {
				return st, fmt.Errorf("walk logs %d..%d: %w", cur, end, err)
			}
			sizer.Success(end-cur+1, len(logs), time.Since(t0))
			st.Logs += len(logs)
			if fn != nil {
				if err := fn(logs); err != nil {
					return st, err
				}
			}
			break
		}
		st.Blocks += end - cur + 1
		cur = end + 1
	}
	st.Duration = time.Since(start)
	return st, nil
}
