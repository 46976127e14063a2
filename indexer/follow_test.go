package indexer_test

import (
	"context"
	"io"
	"log/slog"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/rpc"

	"github.com/echain/echain-indexer/devchain"
	"github.com/echain/echain-indexer/indexer/source"
	"github.com/echain/echain-indexer/store/storetest"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// steps seals n blocks of traffic.
func steps(t testing.TB, tr *devchain.Traffic, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := tr.Step(context.Background()); err != nil {
			t.Fatalf("traffic step: %v", err)
		}
	}
}

// TestHandoverNoGapNoDup backfills a history with small ranges while the chain keeps growing,
// hands over to block-by-block processing, and checks that every block was committed exactly
// once (block counters add up to the indexed range) and that the result equals a from-scratch
// index.
func TestHandoverNoGapNoDup(t *testing.T) {
	c := startChain(t, devchain.Config{})
	tr := devchain.NewTraffic(c, devchain.TrafficConfig{TxsPerBlock: 6}, quietLog())
	steps(t, tr, 250)

	s := chainSetup(c, storetest.NewDB(t))
	s.Config.FinalityDepth = 16
	s.Config.BackfillMinBlocks = 20
	s.Config.Range = source.RangeSizerConfig{Initial: 8, Max: 16}
	in := startIndexer(t, s)
	// Keep sealing while the backfill runs, so the target moves and the handover happens under load.
	for i := 0; i < 60; i++ {
		steps(t, tr, 1)
		time.Sleep(15 * time.Millisecond)
	}
	waitSynced(t, in, c)
	head := c.Head().Number.Int64()
	start := in.fl.StartBlock()
	bf := counter(t, in.reg, "echain_indexer_blocks_indexed_total", map[string]string{"mode": "backfill"})
	rt := counter(t, in.reg, "echain_indexer_blocks_indexed_total", map[string]string{"mode": "realtime"})
	if bf == 0 || rt == 0 {
		t.Fatalf("want both backfill and realtime blocks, got backfill %v realtime %v", bf, rt)
	}
	if got, want := int64(bf+rt), head-start+1; got != want {
		t.Fatalf("blocks committed %d (backfill %v + realtime %v), want %d (start %d, head %d): a gap or a duplicate", got, bf, rt, want, start, head)
	}
	in.stop()
	compareStores(t, scratchIndex(t, c), s.DB)
}

// TestFinalizedTag takes finality from the node's `finalized` block: the backfill stops there,
// the kept window starts at it, and the rest of the chain goes block by block.
func TestFinalizedTag(t *testing.T) {
	c := startChain(t, devchain.Config{})
	tr := devchain.NewTraffic(c, devchain.TrafficConfig{TxsPerBlock: 3}, quietLog())
	steps(t, tr, 150)
	s := chainSetup(c, storetest.NewDB(t))
	s.Config.UseFinalizedTag = true
	s.Config.BackfillMinBlocks = 20
	in := startIndexer(t, s)
	waitSynced(t, in, c)
	ctx := context.Background()
	fin, err := c.Client().HeaderByNumber(ctx, big.NewInt(int64(rpc.FinalizedBlockNumber)))
	if err != nil {
		t.Fatal(err)
	}
	head := c.Head().Number.Int64()
	if fin.Number.Int64() >= head-10 || fin.Number.Int64() < 64 {
		t.Fatalf("dev chain finalized %d at head %d: not a useful test", fin.Number, head)
	}
	if got := in.fl.Status().Finalized; got != fin.Number.Int64()-1 {
		t.Fatalf("status finalized %d, want the node's %d (kept in the window, so one less)", got, fin.Number)
	}
	w, err := in.st.Window(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(w) == 0 || w[0].Number != fin.Number.Int64() || w[len(w)-1].Number != head {
		t.Fatalf("window %d blocks from %d, want %d..%d", len(w), w[0].Number, fin.Number, head)
	}
	bf := counter(t, in.reg, "echain_indexer_blocks_indexed_total", map[string]string{"mode": "backfill"})
	if int64(bf) > fin.Number.Int64() || bf == 0 {
		t.Fatalf("backfilled %v blocks, want some and none above finalized %d", bf, fin.Number)
	}
}
