package indexer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/big"
	"slices"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/echain/echain-indexer/indexer/source"
	"github.com/echain/echain-indexer/store"
)

// ErrReorgTooDeep stops indexing: the node's chain forked below the oldest block the follower
// kept, so the store cannot be made equal to the new chain by reverting. Raise FinalityDepth or
// use the node's finalized tag, then re-sync from below the fork.
var ErrReorgTooDeep = errors.New("reorganisation deeper than the kept block window")

// syncTo brings the store to the node's canonical chain up to target's number, block by block
// with parent checks, reverting first when target or the blocks before it are on another branch.
// It reports whether the cursor moved. When the node lacks a block on the way (a lagging
// endpoint), it stops there without error; the next head continues.
func (fl *Follower) syncTo(ctx context.Context, st *chainState, target *types.Header, received time.Time, mode string) (bool, error) {
	tn := target.Number.Int64()
	moved := false
	if tn <= st.head.Number {
		known, ok := st.hashAt(tn)
		switch {
		case ok && known.Hash == target.Hash() && tn == st.head.Number:
			return false, nil
		case ok && known.Hash != target.Hash():
			if err := fl.reorg(ctx, st, target); err != nil {
				return false, err
			}
			moved = true
		default:
			// target is on our chain or older than anything kept: a late notification, or the node
			// really went back. Only a different block at our cursor proves the latter.
			probe, err := fl.header(ctx, big.NewInt(st.head.Number))
			if err != nil {
				return false, fmt.Errorf("header %d: %w", st.head.Number, err)
			}
			if probe == nil || probe.Hash() == st.head.Hash || st.head.Hash == (common.Hash{}) {
				return false, nil
			}
			if err := fl.reorg(ctx, st, probe); err != nil {
				return false, err
			}
			target, tn, moved = probe, probe.Number.Int64(), true
		}
	}
	useTarget := true
	for reorgs := 0; st.head.Number < tn; {
		p, fork, err := fl.collect(ctx, st, target, useTarget, received, mode)
		if err != nil {
			st.revert(st.head) // forget data sources of uncommitted blocks
			return moved, err
		}
		if fork != nil {
			if err := fl.reorg(ctx, st, fork); err != nil {
				return moved, err
			}
			moved = true
			// target itself may be on a branch the node has since abandoned: from here on follow
			// the node's canonical chain by number. Reorgs that keep coming mean the node is
			// still switching: go back for a fresher head instead of chasing this one.
			useTarget = false
			if reorgs++; reorgs > 8 {
				return moved, nil
			}
			continue
		}
		if p == nil {
			return moved, nil
		}
		collected := time.Now()
		if err := fl.commit(ctx, st, p, fl.finalizedFor(ctx, max(tn, fl.chainHeadNumber()))); err != nil {
			st.revert(st.head)
			return moved, err
		}
		if fl.log.Enabled(ctx, slog.LevelDebug) {
			fl.log.Debug("blocks committed", "mode", mode, "to", p.head.Number, "blocks", p.count, "logs", p.logs,
				"fetch_ms", collected.Sub(p.began).Milliseconds(), "apply_ms", p.applied.Sub(collected).Milliseconds(),
				"commit_ms", time.Since(p.applied).Milliseconds())
		}
		moved = true
	}
	return moved, nil
}

// collect gathers the next consecutive blocks after the cursor, up to target's number and at most
// MaxBlocksPerCommit of them, with their logs, sources, transactions and prepared data. When the
// first of them does not extend the cursor it returns that header as a fork instead. useTarget
// takes target as the header at its height (saving a request) instead of asking by number.
func (fl *Follower) collect(ctx context.Context, st *chainState, target *types.Header, useTarget bool, received time.Time, mode string) (*pending, *types.Header, error) {
	began := time.Now()
	tn := target.Number.Int64()
	parent := st.head
	var headers []*types.Header
	preHeaders := fl.prefetchHeaders(ctx, parent.Number+1, min(tn, parent.Number+int64(fl.cfg.MaxBlocksPerCommit)), tn, useTarget)
	for n := parent.Number + 1; n <= tn && len(headers) < fl.cfg.MaxBlocksPerCommit; n++ {
		h := target
		if n != tn || !useTarget {
			h = preHeaders[n]
		}
		if h == nil {
			var err error
			h, err = fl.header(ctx, big.NewInt(n))
			if err != nil {
				return nil, nil, fmt.Errorf("header %d: %w", n, err)
			}
			if h == nil {
				break
			}
		}
		if parent.Hash != (common.Hash{}) && h.ParentHash != parent.Hash {
			if len(headers) == 0 {
				return nil, h, nil
			}
			break // commit what extends the cursor; the next round sees the fork
		}
		headers = append(headers, h)
		parent = ptrOf(h)
	}
	if len(headers) == 0 {
		return nil, nil, nil
	}
	// The headers' blooms tell which blocks may hold a handled log; the others cost no request.
	// Those that may are fetched whole in one round trip (receipts and transactions, by hash)
	// where the endpoint serves block receipts and the bloom is sparse enough that a match is
	// probably ours; else (a saturated bloom, as on a busy chain, matches nearly every block) by
	// eth_getLogs and then the transactions of blocks that had logs: two round trips.
	may := make([]bool, len(headers))
	var whole []common.Hash
	sources := st.sourceAddrs()
	for i, h := range headers {
		if may[i] = fl.filter.mayHold(h.Bloom, sources); may[i] && bloomSparse(h.Bloom) {
			whole = append(whole, h.Hash())
		}
	}
	var contents map[common.Hash]*source.BlockContent
	known := map[common.Hash]*Tx{}
	if len(whole) > 0 {
		cs, err := fl.src.BlockContentsByHash(ctx, whole)
		switch {
		case err == nil:
			contents = make(map[common.Hash]*source.BlockContent, len(cs))
			for i := range cs {
				contents[cs[i].Hash] = &cs[i]
				maps.Copy(known, cs[i].Txs)
			}
		case !errors.Is(err, source.ErrReceiptsUnsupported):
			return nil, nil, fmt.Errorf("blocks %d-%d: %w", headers[0].Number, headers[len(headers)-1].Number, err)
		}
	}
	p := &pending{created: map[int64][]store.DataSource{}, mode: mode, received: received, began: began}
	var withLogs, fromContents, fromLogs []*Block
	for i, h := range headers {
		ptr := ptrOf(h)
		var logs []types.Log
		var created []store.DataSource
		c := contents[ptr.Hash]
		switch {
		case !may[i]:
		case c != nil:
			logs, created = fl.selectLogs(slices.Clone(c.Logs), st, nil)
		default:
			var err error
			if logs, created, err = fl.blockLogs(ctx, ptr.Hash, st); err != nil {
				return nil, nil, err
			}
		}
		for _, d := range created {
			// Later blocks of this batch must see the new sources; on failure the caller forgets them.
			st.addSource(d)
		}
		p.created[ptr.Number] = created
		p.window = append(p.window, ptr)
		p.head = ptr
		p.count++
		if len(logs) > 0 {
			blk := groupBlocks(logs, st)[0]
			blk.Ptr = ptr
			withLogs = append(withLogs, blk)
			if c != nil {
				fromContents = append(fromContents, blk)
			} else {
				fromLogs = append(fromLogs, blk)
			}
			p.logs += len(logs)
		}
		if len(created) > 0 && fl.skippedFor(headers[i+1:], may[i+1:], created) {
			break // a later block passed over may hold logs of the new sources: the next round sees it
		}
	}
	p.blocks = withLogs
	if _, err := fl.fetchTxs(ctx, fromContents, known); err != nil {
		return nil, nil, err
	}
	if _, err := fl.fetchTxs(ctx, fromLogs, nil); err != nil {
		return nil, nil, err
	}
	if len(withLogs) > 0 {
		if err := fl.handler.Prepare(ctx, withLogs); err != nil {
			return nil, nil, fmt.Errorf("prepare blocks %d-%d: %w", headers[0].Number, p.head.Number, err)
		}
	}
	return p, nil, nil
}

// reorg handles a header h (at most one above the cursor) that is not on the committed chain:
// it walks back by parent hash to the common ancestor and reverts the store to it.
func (fl *Follower) reorg(ctx context.Context, st *chainState, h *types.Header) error {
	detected := time.Now()
	x := h
	var ancestor store.BlockPtr
	for {
		pn := x.Number.Int64() - 1
		known, ok := st.hashAt(pn)
		if !ok && pn < fl.start {
			// Nothing is indexed below the start: revert everything, to the new chain's block
			// before it, whose hash the next block's parent check needs (a zero hash fails it).
			ancestor = store.BlockPtr{Number: pn, Hash: x.ParentHash}
			if parent, err := fl.headerByHash(ctx, x.ParentHash); err != nil {
				return fmt.Errorf("walk back to the start: header %s: %w", x.ParentHash, err)
			} else if parent != nil {
				ancestor = ptrOf(parent)
			}
			break
		}
		if !ok {
			fl.metrics.reorgTooDeep.Inc()
			err := fmt.Errorf("%w: block %d (%s) forks below block %d, the oldest kept (finalized %d); indexing stopped, re-sync from below the fork",
				ErrReorgTooDeep, h.Number, h.Hash(), st.lowestKnown(), st.finalized)
			fl.log.Error("reorg deeper than the kept window", "block", h.Number, "hash", h.Hash(), "oldest_kept", st.lowestKnown(), "finalized", st.finalized)
			return err
		}
		if known.Hash == x.ParentHash {
			ancestor = known
			break
		}
		parent, err := fl.headerByHash(ctx, x.ParentHash)
		if err != nil {
			return fmt.Errorf("walk back to the common ancestor: header %s: %w", x.ParentHash, err)
		}
		if parent == nil {
			return fmt.Errorf("walk back to the common ancestor: node does not have block %s (parent of %d)", x.ParentHash, x.Number)
		}
		x = parent
	}
	depth := st.head.Number - ancestor.Number
	if depth <= 0 {
		return nil
	}
	walked := time.Since(detected)
	old := st.head
	if err := fl.store.RevertTo(ctx, ancestor); err != nil {
		return fmt.Errorf("revert to block %d (%s): %w", ancestor.Number, ancestor.Hash, err)
	}
	st.revert(ancestor)
	if lw, ok := fl.handler.(LateWriter); ok {
		lw.Reverted(ancestor.Number)
	}
	took := time.Since(detected)
	fl.metrics.reorgs.Inc()
	fl.metrics.reorgDepth.Observe(float64(depth))
	fl.metrics.reorgSeconds.Observe(took.Seconds())
	fl.log.Warn("chain reorganisation", "depth", depth, "old_head", old.Number, "old_hash", old.Hash,
		"ancestor", ancestor.Number, "ancestor_hash", ancestor.Hash, "new_block", h.Number, "new_hash", h.Hash(),
		"walk_ms", walked.Milliseconds(), "revert_ms", (took - walked).Milliseconds())
	fl.noteReorg(Reorg{At: time.Now(), Depth: depth, From: old, To: ancestor})
	fl.setIndexed(st)
	return nil
}

// finalizedFor is the finalized block number when the chain head is at head: the node's
// finalized tag when configured (refreshed at most every FinalizedRefresh), else a depth.
func (fl *Follower) finalizedFor(ctx context.Context, head int64) int64 {
	f := head - fl.cfg.FinalityDepth
	if fl.cfg.UseFinalizedTag {
		fl.finMu.Lock()
		defer fl.finMu.Unlock()
		if time.Since(fl.finAt) >= fl.cfg.FinalizedRefresh {
			h, err := fl.src.Finalized(ctx)
			if err != nil || h == nil {
				fl.log.Warn("finalized block unavailable; keeping the last known", "err", err)
			} else {
				fl.finNum = h.Number.Int64()
			}
			fl.finAt = time.Now()
		}
		f = fl.finNum
	}
	if f < fl.start-1 {
		f = fl.start - 1
	}
	return f
}

// checkCursor compares the cursor with the node's chain (after a reconnection): a different
// block at its height is a reorganisation, walked back to the common ancestor (or refused with
// ErrReorgTooDeep when there is none in the kept window: another chain). A node whose head is
// below the cursor is checked at its head against the window the same way; below the window it
// cannot be told from a node still syncing, and the follower waits for it (readiness reports
// the node's head below the indexed block, never a lag of 0).
func (fl *Follower) checkCursor(ctx context.Context, st *chainState) error {
	if st.head.Hash == (common.Hash{}) {
		return nil
	}
	probe, err := fl.header(ctx, big.NewInt(st.head.Number))
	if err != nil {
		return fmt.Errorf("check cursor: header %d: %w", st.head.Number, err)
	}
	if probe != nil {
		if probe.Hash() == st.head.Hash {
			return nil
		}
		fl.log.Warn("after a reconnection the node has another block at the cursor; walking back",
			"block", st.head.Number, "cursor_hash", st.head.Hash, "node_hash", probe.Hash())
		return fl.reorg(ctx, st, probe)
	}
	latest, err := fl.header(ctx, nil)
	if err != nil || latest == nil {
		return fmt.Errorf("check cursor: latest header: %v", err)
	}
	if known, ok := st.hashAt(latest.Number.Int64()); ok && known.Hash != latest.Hash() {
		fl.log.Warn("after a reconnection the node's head is below the cursor and on another branch; walking back",
			"node_head", latest.Number, "node_hash", latest.Hash(), "cursor", st.head.Number)
		return fl.reorg(ctx, st, latest)
	}
	fl.log.Warn("the node's head is below the indexed block: it is behind (syncing), or serves another chain; waiting for it",
		"node_head", latest.Number, "indexed", st.head.Number)
	return nil
}

// prefetchHeaders fetches the headers of from..to in JSON-RPC batches when a catch-up needs
// more than one (tn is the target's number, whose header the caller has when useTarget): the
// blocks a restart left below the head cost a request per hundred instead of one each. On any
// failure it returns nil, and the caller asks block by block.
func (fl *Follower) prefetchHeaders(ctx context.Context, from, to, tn int64, useTarget bool) map[int64]*types.Header {
	var nums []uint64
	for n := from; n <= to; n++ {
		if n != tn || !useTarget {
			nums = append(nums, uint64(n))
		}
	}
	if len(nums) < 2 {
		return nil
	}
	hs, err := fl.src.HeadersByNumber(ctx, nums)
	if err != nil {
		fl.log.Debug("catch-up: headers in one batch failed; asking block by block", "from", from, "to", to, "err", err)
		return nil
	}
	out := make(map[int64]*types.Header, len(hs))
	for _, h := range hs {
		out[h.Number.Int64()] = h
	}
	return out
}
