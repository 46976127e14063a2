package indexer_test

import (
	"context"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/echain/echain-indexer/devchain"
	"github.com/echain/echain-indexer/indexer"
	"github.com/echain/echain-indexer/indexer/source"
	"github.com/echain/echain-indexer/store/storetest"
)

// TestHints runs the follower without a WebSocket and with slow head polling, so only hints
// make it look early: a hint by number or by transaction commits the block within a second,
// fills a gap, and hints for processed, unknown or inconsistent blocks change nothing.
func TestHints(t *testing.T) {
	c := startChain(t, devchain.Config{})
	tr := devchain.NewTraffic(c, devchain.TrafficConfig{TxsPerBlock: 4}, quietLog())
	steps(t, tr, 20)
	s := chainSetup(c, storetest.NewDB(t))
	s.Endpoints = []source.Endpoint{{Name: "http-only", HTTPURL: c.HTTPURL}}
	s.Source.PollInterval = 4 * time.Second
	in := startIndexer(t, s)
	waitSynced(t, in, c, 30*time.Second)
	ctx := context.Background()

	step := func() (uint64, common.Hash) {
		t.Helper()
		res, err := tr.Step(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return res.Head, res.HeadHash
	}
	headIs := func(n uint64, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			h, err := in.st.Head(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if h.Number == int64(n) && h.Hash == c.Head().Hash() {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("store head %d, want %d within %s", h.Number, n, within)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	stays := func(n uint64) {
		t.Helper()
		time.Sleep(300 * time.Millisecond)
		h, err := in.st.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if h.Number != int64(n) {
			t.Fatalf("store head moved to %d, want it to stay at %d", h.Number, n)
		}
	}
	txOf := func(n uint64) common.Hash {
		t.Helper()
		b, err := c.Client().BlockByNumber(ctx, new(big.Int).SetUint64(n))
		if err != nil || len(b.Transactions()) == 0 {
			t.Fatalf("block %d: %v (no transactions?)", n, err)
		}
		return b.Transactions()[0].Hash()
	}

	n1, _ := step()
	sent := time.Now()
	in.fl.Hint(indexer.Hint{Block: n1})
	headIs(n1, time.Second)
	t.Logf("hinted block committed %s after the hint", time.Since(sent).Round(time.Millisecond))

	n2, _ := step()
	in.fl.Hint(indexer.Hint{TxHash: txOf(n2)})
	headIs(n2, time.Second)

	in.fl.Hint(indexer.Hint{Block: n1}) // already processed
	in.fl.Hint(indexer.Hint{Block: n2 + 100})
	stays(n2)

	step()
	n4, _ := step()
	in.fl.Hint(indexer.Hint{Block: n4}) // fills n3 too
	headIs(n4, time.Second)

	n5, _ := step()
	in.fl.Hint(indexer.Hint{Block: n5, TxHash: txOf(n2)}) // the node puts that tx elsewhere
	stays(n4)
	in.fl.Hint(indexer.Hint{Block: n5})
	headIs(n5, time.Second)

	useful := counter(t, in.reg, "echain_indexer_hints_total", map[string]string{"result": "useful"})
	stale := counter(t, in.reg, "echain_indexer_hints_total", map[string]string{"result": "stale"})
	unknown := counter(t, in.reg, "echain_indexer_hints_total", map[string]string{"result": "unknown"})
	t.Logf("hints: useful %v stale %v unknown %v", useful, stale, unknown)
	// Four hints were ahead of the follower and one behind; a poll landing between sealing and
	// hinting (4 s apart, so rarely) turns a useful one into a stale one.
	if useful < 3 || useful+stale != 5 || unknown != 2 {
		t.Fatalf("hint outcomes useful %v stale %v unknown %v, want 4, 1, 2", useful, stale, unknown)
	}
	// The slow poll eventually reports the hinted head: the hint's lead over it is measured.
	deadline := time.Now().Add(10 * time.Second)
	for counter(t, in.reg, "echain_indexer_hint_lead_seconds", nil) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no hint lead time recorded after the head arrived")
		}
		time.Sleep(50 * time.Millisecond)
	}
	in.stop()
	compareStores(t, scratchIndex(t, c), s.DB)
}
