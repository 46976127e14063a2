package indexer_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/echain/echain-indexer/devchain"
	"github.com/echain/echain-indexer/indexer"
	"github.com/echain/echain-indexer/internal/testwait"
	"github.com/echain/echain-indexer/store/storetest"
)

// TestReorgFuzz runs traffic with random reorganisations of depth 1..20 over more than 1,000
// blocks while the follower keeps up, then checks the store equals a from-scratch index of the
// final canonical chain.
func TestReorgFuzz(t *testing.T) {
	c := startChain(t, devchain.Config{MaxReorgDepth: 20})
	tr := devchain.NewTraffic(c, devchain.TrafficConfig{TxsPerBlock: 2, ReorgEvery: 12, ReorgMaxDepth: 20}, quietLog())
	steps(t, tr, 30)
	s := chainSetup(c, storetest.NewDB(t))
	in := startIndexer(t, s)

	depths := map[int]int{}
	for c.Head().Number.Uint64() < 1100 {
		res, err := tr.Step(context.Background())
		if err != nil {
			t.Fatalf("traffic: %v", err)
		}
		if res.Reorg != nil {
			depths[res.Reorg.Depth]++
		}
		// Let the follower see most heads, so reorgs hit it live rather than being skipped over.
		time.Sleep(time.Millisecond)
	}
	waitSynced(t, in, c)
	reorgs := counter(t, in.reg, "echain_indexer_reorgs_total", nil)
	st := tr.Stats()
	t.Logf("chain: %d blocks, %d reorgs injected (depths %v); follower handled %v reorgs", c.Head().Number, st.Reorgs, depths, reorgs)
	if st.Reorgs < 40 {
		t.Fatalf("only %d reorgs injected", st.Reorgs)
	}
	if reorgs < float64(st.Reorgs)/4 {
		t.Fatalf("follower handled %v reorgs of %d injected: too few met live to exercise reverts", reorgs, st.Reorgs)
	}
	if err, done := in.runErr(); done {
		t.Fatalf("indexer stopped: %v", err)
	}
	in.stop()
	compareStores(t, scratchIndex(t, c), s.DB)
}

// TestReorgTooDeep: a fork below the kept window stops indexing with ErrReorgTooDeep and a
// metric, leaving the store as it was.
func TestReorgTooDeep(t *testing.T) {
	c := startChain(t, devchain.Config{MaxReorgDepth: 20})
	tr := devchain.NewTraffic(c, devchain.TrafficConfig{TxsPerBlock: 3}, quietLog())
	steps(t, tr, 40)
	s := chainSetup(c, storetest.NewDB(t))
	s.Config.FinalityDepth = 4
	in := startIndexer(t, s)
	waitSynced(t, in, c)
	before, err := in.st.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Reorg(context.Background(), 12); err != nil {
		t.Fatalf("reorg: %v", err)
	}
	select {
	case err := <-in.done:
		in.done <- err
		if !errors.Is(err, indexer.ErrReorgTooDeep) {
			t.Fatalf("Run returned %v, want ErrReorgTooDeep", err)
		}
		t.Logf("Run: %v", err)
	case <-testwait.After(t):
		t.Fatalf("follower did not stop on a reorg deeper than its window; status %+v", in.fl.Status())
	}
	if n := counter(t, in.reg, "echain_indexer_reorg_too_deep_total", nil); n != 1 {
		t.Fatalf("reorg_too_deep_total = %v, want 1", n)
	}
	after, err := in.st.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if after.Number != before.Number || after.Hash != before.Hash {
		t.Fatalf("store head moved from %d %s to %d %s", before.Number, before.Hash, after.Number, after.Hash)
	}
	if st := in.fl.Status(); st.Mode != "failed" || st.Err == "" {
		t.Fatalf("status %q %q, want failed with the error", st.Mode, st.Err)
	}
}
