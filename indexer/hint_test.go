package indexer_test

import (
	"context"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/echain/echain-indexer/devchain"
	"github.com/echain/echain-indexer/indexer"
	"github.com/echain/echain-indexer/indexer/source"
	"github.com/echain/echain-indexer/internal/testwait"
	"github.com/echain/echain-indexer/store/storetest"
)

// TestHints runs the follower without a WebSocket and with head polling slow enough that a
// poll rarely lands between sealing a block and hinting it, so hints make it look early: a hint
// by number or by transaction commits the block, fills a gap, and hints for processed, unknown
// or inconsistent blocks change nothing.
func TestHints(t *testing.T) {
	c := startChain(t, devchain.Config{})
	tr := devchain.NewTraffic(c, devchain.TrafficConfig{TxsPerBlock: 4}, quietLog())
	steps(t, tr, 20)
	s := chainSetup(c, storetest.NewDB(t))
	s.Endpoints = []source.Endpoint{{Name: "http-only", HTTPURL: c.HTTPURL}}
	s.Source.PollInterval = 20 * time.Second
	in := startIndexer(t, s)
	waitSynced(t, in, c)
	ctx := context.Background()

	step := func() (uint64, common.Hash) {
		t.Helper()
		res, err := tr.Step(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return res.Head, res.HeadHash
	}
	headIs := func(n uint64) {
		t.Helper()
		testwait.For(t, fmt.Sprintf("the hinted block %d in the store", n), func() (bool, string) {
			h, err := in.st.Head(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return h.Number == int64(n) && h.Hash == c.Head().Hash(), fmt.Sprintf("store head %d", h.Number)
		})
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
	headIs(n1)
	t.Logf("hinted block committed %s after the hint", time.Since(sent).Round(time.Millisecond))

	n2, _ := step()
	in.fl.Hint(indexer.Hint{TxHash: txOf(n2)})
	headIs(n2)

	in.fl.Hint(indexer.Hint{Block: n1}) // already processed
	in.fl.Hint(indexer.Hint{Block: n2 + 100})
	stays(n2)

	step()
	n4, _ := step()
	in.fl.Hint(indexer.Hint{Block: n4}) // fills n3 too
	headIs(n4)

	n5, _ := step()
	in.fl.Hint(indexer.Hint{Block: n5, TxHash: txOf(n2)}) // the node puts that tx elsewhere
	stays(n4)
	in.fl.Hint(indexer.Hint{Block: n5})
	headIs(n5)

	// A hint is counted once its block has committed: wait until all seven are.
	var useful, stale, unknown float64
	testwait.For(t, "every hint counted", func() (bool, string) {
		useful = counter(t, in.reg, "echain_indexer_hints_total", map[string]string{"result": "useful"})
		stale = counter(t, in.reg, "echain_indexer_hints_total", map[string]string{"result": "stale"})
		unknown = counter(t, in.reg, "echain_indexer_hints_total", map[string]string{"result": "unknown"})
		return useful+stale+unknown >= 7, fmt.Sprintf("useful %v stale %v unknown %v", useful, stale, unknown)
	})
	t.Logf("hints: useful %v stale %v unknown %v", useful, stale, unknown)
	// Four hints were ahead of the follower and one behind; a poll landing between sealing and
	// committing (20 s apart, so rarely) turns a useful one into a stale one.
	if useful < 3 || useful+stale != 5 || unknown != 2 {
		t.Fatalf("hint outcomes useful %v stale %v unknown %v, want 4, 1, 2", useful, stale, unknown)
	}
	// The slow poll eventually reports the hinted head: the hint's lead over it is measured.
	testwait.Until(t, "a hint lead time, recorded when the slow poll reports the hinted head", func() bool {
		return counter(t, in.reg, "echain_indexer_hint_lead_seconds", nil) > 0
	})
	in.stop()
	compareStores(t, scratchIndex(t, c), s.DB)
}
