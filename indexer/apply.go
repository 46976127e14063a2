package indexer

import (
	"context"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/echain/echain-indexer/indexer/source"
	"github.com/echain/echain-indexer/store"
)

// groupBlocks turns logs sorted by (block, index) into one Block per block number, with the
// data sources (already in st) that emitted them.
func groupBlocks(logs []types.Log, st *chainState) []*Block {
	var out []*Block
	start := 0
	for i := range logs {
		lg := &logs[i]
		if len(out) == 0 || out[len(out)-1].Ptr.Number != int64(lg.BlockNumber) {
			if len(out) > 0 {
				out[len(out)-1].Logs = logs[start:i:i]
			}
			start = i
			out = append(out, &Block{
				Ptr: store.BlockPtr{Number: int64(lg.BlockNumber), Hash: lg.BlockHash, Timestamp: int64(lg.BlockTimestamp)},
			})
		}
		if d, ok := st.source(lg.Address); ok {
			addSourceTo(out[len(out)-1], d)
		}
	}
	if len(out) > 0 {
		// Each block's logs are a window on logs, capped so that an append copies.
		out[len(out)-1].Logs = logs[start:len(logs):len(logs)]
	}
	return out
}

func addSourceTo(blk *Block, d store.DataSource) {
	if blk.Sources == nil {
		blk.Sources = map[common.Address]store.DataSource{}
	}
	blk.Sources[d.Address] = d
}

// fetchTxs fills Block.Txs for blocks with logs: the transactions that emitted them, taken from
// known (a backfill range's block contents) when given, else fetched in batches across blocks.
// The stats say how much of their blocks those transactions were, where the node said.
func (fl *Follower) fetchTxs(ctx context.Context, blocks []*Block, known map[common.Hash]*Tx) (source.TxStats, error) {
	var reqs []source.TxRequest
	for _, blk := range blocks {
		if len(blk.Logs) == 0 {
			continue
		}
		var hashes []common.Hash
		seen := map[common.Hash]bool{}
		minTxs := 0 // the block holds at least the transactions up to its logs' highest index
		for _, lg := range blk.Logs {
			if !seen[lg.TxHash] {
				seen[lg.TxHash] = true
				hashes = append(hashes, lg.TxHash)
			}
			minTxs = max(minTxs, int(lg.TxIndex)+1)
		}
		reqs = append(reqs, source.TxRequest{Block: blk.Ptr.Hash, Hashes: hashes, MinBlockTxs: minTxs})
	}
	if len(reqs) == 0 {
		return source.TxStats{}, nil
	}
	txs, stats := known, source.TxStats{}
	if txs == nil {
		var err error
		txs, stats, err = fl.src.TxsManyStats(ctx, reqs)
		if err != nil {
			return stats, fmt.Errorf("transactions of blocks %d-%d: %w", blocks[0].Ptr.Number, blocks[len(blocks)-1].Ptr.Number, err)
		}
	}
	i := 0
	for _, blk := range blocks {
		if len(blk.Logs) == 0 {
			continue
		}
		blk.Txs = make(map[common.Hash]*Tx, len(reqs[i].Hashes))
		for _, h := range reqs[i].Hashes {
			tx := txs[h]
			if tx == nil {
				return stats, fmt.Errorf("block %d: node returned no data for transaction %s", blk.Ptr.Number, h)
			}
			blk.Txs[h] = tx
		}
		i++
	}
	return stats, nil
}

// pending is a run of consecutive work ready to commit: blocks to apply in order (with the data
// sources each one created), the new cursor, and the blocks to record in the window.
type pending struct {
	blocks   []*Block
	created  map[int64][]store.DataSource
	head     store.BlockPtr
	window   []store.BlockPtr
	logs     int
	count    int64 // blocks covered
	mode     string
	received time.Time // when the work was asked for (head arrival), for latency metrics
	began    time.Time // when fetching started
	applied  time.Time // when the handler was done, before the store's commit
}

// commit applies p through the handler into one batch and commits it with the cursor, then
// moves the in-memory state. Only this and revert change the store.
func (fl *Follower) commit(ctx context.Context, st *chainState, p *pending, finalized int64) error {
	start := time.Now()
	b := fl.store.NewBatch()
	bi := 0
	started := map[int64]bool{}
	// Blocks are applied in chain order; window-only blocks (no logs) still get StartBlock so the
	// store records where each block's versions begin.
	apply := func(blk *Block) error {
		b.StartBlock(blk.Ptr)
		started[blk.Ptr.Number] = true
		for _, d := range p.created[blk.Ptr.Number] {
			b.AddDataSource(d)
		}
		if len(blk.Logs) == 0 {
			return nil
		}
		if err := fl.handler.Apply(ctx, blk, b); err != nil {
			return fmt.Errorf("apply block %d (%s): %w", blk.Ptr.Number, blk.Ptr.Hash, err)
		}
		return nil
	}
	for _, w := range p.window {
		for bi < len(p.blocks) && p.blocks[bi].Ptr.Number < w.Number {
			if err := apply(p.blocks[bi]); err != nil {
				return err
			}
			bi++
		}
		if bi < len(p.blocks) && p.blocks[bi].Ptr.Number == w.Number {
			blk := p.blocks[bi]
			blk.Ptr = w // the header's pointer carries the parent hash
			if err := apply(blk); err != nil {
				return err
			}
			bi++
			continue
		}
		if err := apply(&Block{Ptr: w}); err != nil {
			return err
		}
	}
	for ; bi < len(p.blocks); bi++ {
		if err := apply(p.blocks[bi]); err != nil {
			return err
		}
	}
	if !started[p.head.Number] {
		b.StartBlock(p.head)
	}
	if lw, ok := fl.handler.(LateWriter); ok {
		if err := lw.WriteLate(ctx, p.head, b); err != nil {
			return fmt.Errorf("late writes at block %d: %w", p.head.Number, err)
		}
	}
	// The finalized block itself stays in the window (the store is told one less): a fork right
	// above it then still finds its common ancestor.
	finalized = min(finalized, p.head.Number) - 1
	var win []store.BlockPtr
	for _, w := range p.window {
		if w.Number > finalized {
			win = append(win, w)
		}
	}
	if n := len(win); n == 0 || win[n-1].Number != p.head.Number {
		win = append(win, p.head) // a backfill range's last block: the parent check of the next
	}
	p.applied = time.Now()
	if err := fl.store.Commit(ctx, b, store.Commit{Head: p.head, Window: win, Finalized: finalized}); err != nil {
		return fmt.Errorf("commit blocks up to %d: %w", p.head.Number, err)
	}
	st.advance(p.head, win, finalized)
	fl.metrics.commitSeconds.WithLabelValues(p.mode).Observe(time.Since(start).Seconds())
	fl.metrics.logs.WithLabelValues(p.mode).Add(float64(p.logs))
	fl.metrics.blocks.WithLabelValues(p.mode).Add(float64(p.count))
	if !p.received.IsZero() {
		fl.metrics.headToCommit.Observe(time.Since(p.received).Seconds())
	}
	fl.setIndexed(st)
	return nil
}

func ptrOf(h *types.Header) store.BlockPtr {
	return store.BlockPtr{
		Number:     h.Number.Int64(),
		Hash:       h.Hash(),
		ParentHash: h.ParentHash,
		Timestamp:  int64(h.Time),
	}
}
