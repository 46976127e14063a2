package indexer

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/echain/echain-indexer/internal/ctxsleep"
	"github.com/echain/echain-indexer/store"
)

// ResyncProgress reports a re-sync to the command that asked for it.
type ResyncProgress struct {
	Phase   string // requested (waiting for the running indexer), reverted, indexing, done
	From    int64
	Indexed int64 // the cursor
	// The block the re-sync is done at: the chain head when this process does the work; when the
	// running indexer does it, the block that indexer had reached when asked (it goes on
	// following the chain, so waiting for a head it is still chasing would measure a backfill).
	Target int64
}

// Resync reverts the store to block from-1 and re-indexes from `from` to the current chain head.
// The API keeps answering throughout: as of from-1 right after the revert, then as the cursor
// moves. When no indexer runs, Resync takes the leader lock and does the work itself; when one
// runs, it files a request the leader serves and waits until the leader is back where it was,
// without calling the node.
func (fl *Follower) Resync(ctx context.Context, from int64, progress func(ResyncProgress)) error {
	if progress == nil {
		progress = func(ResyncProgress) {}
	}
	if from < fl.start {
		return fmt.Errorf("resync: block %d is before the configured start block %d", from, fl.start)
	}
	lock, err := acquireLeader(ctx, fl.store.Pool().Config().ConnConfig.Copy(), fl.cfg.LeaderLockKey, false)
	if err != nil {
		return fmt.Errorf("resync: %w", err)
	}
	if lock == nil {
		return fl.resyncViaLeader(ctx, from, progress)
	}
	defer lock.releaseUnwatched()
	return fl.resyncHere(ctx, from, progress)
}

func (fl *Follower) resyncHere(ctx context.Context, from int64, progress func(ResyncProgress)) error {
	st, err := loadState(ctx, fl.store, fl.start)
	if err != nil {
		return fmt.Errorf("resync: %w", err)
	}
	if err := fl.checkResyncFrom(st, from); err != nil {
		return err
	}
	target, err := fl.header(ctx, nil)
	if err != nil {
		return fmt.Errorf("resync: latest header: %w", err)
	}
	if target == nil {
		return errors.New("resync: latest header: the node has none")
	}
	fl.noteHead(target, false)
	if err := fl.revertForResync(ctx, st, from); err != nil {
		return err
	}
	tn := target.Number.Int64()
	progress(ResyncProgress{Phase: "reverted", From: from, Indexed: st.head.Number, Target: tn})
	ix := &indexBuild{}
	defer ix.wait()
	for st.head.Number < tn {
		if _, err := fl.step(ctx, st, target, time.Now(), ix, false); err != nil {
			return fmt.Errorf("resync: re-indexing stopped at block %d (an indexer started later continues from there): %w", st.head.Number, err)
		}
		progress(ResyncProgress{Phase: "indexing", From: from, Indexed: st.head.Number, Target: tn})
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	progress(ResyncProgress{Phase: "done", From: from, Indexed: st.head.Number, Target: tn})
	return nil
}

func (fl *Follower) resyncViaLeader(ctx context.Context, from int64, progress func(ResyncProgress)) error {
	head, err := fl.store.Head(ctx)
	if err != nil {
		return fmt.Errorf("resync: %w", err)
	}
	indexed := fl.start - 1
	if head != nil {
		indexed = head.Number
	}
	if from > indexed {
		return fmt.Errorf("resync: block %d is beyond the indexed head %d", from, indexed)
	}
	id, err := fl.store.RequestResync(ctx, from, "echain-indexer resync")
	if err != nil {
		return fmt.Errorf("resync: file request: %w", err)
	}
	// The target is where the store was, not the chain head: this command needs no node of its
	// own (the leader has one), and it is done once every reverted block is indexed again.
	progress(ResyncProgress{Phase: "requested", From: from, Indexed: indexed, Target: indexed})
	for {
		req, err := fl.store.GetResync(ctx, id)
		if err != nil {
			return fmt.Errorf("resync: request %d: %w", id, err)
		}
		if req == nil {
			return fmt.Errorf("resync: request %d vanished", id)
		}
		if req.Status == "failed" {
			return fmt.Errorf("resync: the running indexer refused: %s", req.Error)
		}
		if req.Status == "done" {
			break
		}
		if !ctxsleep.Sleep(ctx, 200*time.Millisecond) {
			return ctx.Err()
		}
	}
	progress(ResyncProgress{Phase: "reverted", From: from, Indexed: from - 1, Target: indexed})
	for {
		head, err := fl.store.Head(ctx)
		if err != nil {
			return fmt.Errorf("resync: %w", err)
		}
		if head != nil {
			progress(ResyncProgress{Phase: "indexing", From: from, Indexed: head.Number, Target: indexed})
			if head.Number >= indexed {
				progress(ResyncProgress{Phase: "done", From: from, Indexed: head.Number, Target: indexed})
				return nil
			}
		}
		if !ctxsleep.Sleep(ctx, 500*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// serveResync carries out the oldest pending request, if any (leader only).
func (fl *Follower) serveResync(ctx context.Context, st *chainState) error {
	req, err := fl.store.NextResync(ctx)
	if err != nil {
		return fmt.Errorf("read re-sync requests: %w", err)
	}
	if req == nil {
		return nil
	}
	if req.FromBlock < 0 { // from the start
		req.FromBlock = fl.start
	}
	if err := fl.checkResyncFrom(st, req.FromBlock); err != nil {
		fl.log.Warn("re-sync request refused", "id", req.ID, "from", req.FromBlock, "err", err)
		return fl.store.FinishResync(ctx, req.ID, err.Error())
	}
	if err := fl.revertForResync(ctx, st, req.FromBlock); err != nil {
		return err
	}
	if err := fl.store.FinishResync(ctx, req.ID, ""); err != nil {
		return fmt.Errorf("mark re-sync request %d done: %w", req.ID, err)
	}
	return nil
}

func (fl *Follower) checkResyncFrom(st *chainState, from int64) error {
	if from < fl.start {
		return fmt.Errorf("resync: block %d is before the configured start block %d", from, fl.start)
	}
	if from > st.head.Number {
		return fmt.Errorf("resync: block %d is beyond the indexed head %d", from, st.head.Number)
	}
	return nil
}

// revertForResync reverts the store to from-1, taking that block's hash from the window or, when
// it is older (and so final), from the node.
func (fl *Follower) revertForResync(ctx context.Context, st *chainState, from int64) error {
	to := from - 1
	ptr, ok := st.hashAt(to)
	if !ok {
		if to < fl.start {
			ptr = store.BlockPtr{Number: to}
		} else {
			h, err := fl.header(ctx, big.NewInt(to))
			if err != nil {
				return fmt.Errorf("resync: header %d: %w", to, err)
			}
			if h == nil {
				return fmt.Errorf("resync: node does not have block %d", to)
			}
			ptr = ptrOf(h)
		}
	}
	fl.setMode(modeResync)
	old := st.head.Number
	if err := fl.store.RevertTo(ctx, ptr); err != nil {
		return fmt.Errorf("resync: revert to block %d: %w", to, err)
	}
	st.revert(ptr)
	if lw, ok := fl.handler.(LateWriter); ok {
		lw.Reverted(ptr.Number)
	}
	fl.metrics.resyncs.Inc()
	fl.setIndexed(st)
	fl.log.Info("re-sync: reverted; re-indexing", "from", from, "reverted_blocks", old-to)
	return nil
}
