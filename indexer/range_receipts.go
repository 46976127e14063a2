package indexer

import (
	"context"
	"fmt"
	"maps"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// fetchByReceipts takes every log and transaction of the range's blocks from their receipts
// (source.BlockContents: eth_getBlockReceipts + the block with its transactions, per block).
// The error matches source.ErrReceiptsUnsupported when the node cannot serve them.
func (fl *Follower) fetchByReceipts(ctx context.Context, j *rangeJob) (*rangeFetch, error) {
	contents, err := fl.src.BlockContents(ctx, uint64(j.from), uint64(j.to))
	if err != nil {
		return nil, fmt.Errorf("block receipts %d-%d: %w", j.from, j.to, err)
	}
	nlogs, ntxs := 0, 0
	for i := range contents {
		nlogs += len(contents[i].Logs)
		ntxs += len(contents[i].Txs)
	}
	raw := make([]types.Log, 0, nlogs)
	j.known = make(map[common.Hash]*Tx, ntxs)
	for i := range contents {
		raw = append(raw, contents[i].Logs...)
		contents[i].Logs = nil
		maps.Copy(j.known, contents[i].Txs)
	}
	fl.metrics.backfillRanges.WithLabelValues(LogSourceReceipts).Inc()
	// Not a getLogs answer: fetching stays 0 and only the log count steers the range size.
	return &rangeFetch{raw: raw, wide: true, contents: contents}, nil
}
