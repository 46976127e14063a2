package echain

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/echain/echain-indexer/devchain"
	"github.com/echain/echain-indexer/indexer/echain/echaintest"
)

// TestTrafficMatchesOracle indexes the dev chain's traffic generator (every operation, several
// transactions per block, random interleavings) in a few backfill-like ranges, then compares the
// whole store with the oracle.
func TestTrafficMatchesOracle(t *testing.T) {
	// Every document answers within the timeout here: a timed-out fetch backs the whole gateway
	// off (the fetcher's host rule), and the oracle cannot know which documents that delayed.
	// Timeouts have their own tests (scenario, metadata_events, metadata_late).
	x := newHarness(t, harnessOpts{archive: true, metaWait: 600 * time.Millisecond, hangDelay: 300 * time.Millisecond})
	tr := devchain.NewTraffic(x.dc, devchain.TrafficConfig{Seed: 7, TxsPerBlock: 10}, slog.New(slog.DiscardHandler))
	const blocks = 120
	start := time.Now()
	var indexing time.Duration
	for i := range blocks {
		if _, err := tr.Step(x.ctx); err != nil {
			t.Fatalf("traffic step %d: %v", i, err)
		}
		if i%40 == 39 {
			t0 := time.Now()
			x.index()
			indexing += time.Since(t0)
		}
	}
	st := tr.Stats()
	if st.Reverted > 0 {
		t.Fatalf("%d traffic transactions reverted", st.Reverted)
	}
	for _, op := range []string{"createEvent", "createEventViaWallet", "updateEvent", "purchaseTicket", "transfer", "burn",
		"listTicket", "buyListing", "cancelListing", "mintAttendance", "useReferralCode"} {
		if st.Ops[op] == 0 {
			t.Errorf("traffic never did %s: %v", op, st.Ops)
		}
	}
	t0 := time.Now()
	got := x.compare()
	t.Logf("traffic+indexing %v (indexing %v), oracle+compare %v", t0.Sub(start), indexing, time.Since(t0))
	if got.Count("Ticket") != st.Tickets || got.Count("Event") != st.Events {
		t.Errorf("store has %d events and %d tickets, the traffic made %d and %d", got.Count("Event"), got.Count("Ticket"), st.Events, st.Tickets)
	}

	// Time travel: the store as of a block in the middle equals the oracle up to that block.
	mid := x.dc.Addresses.StartBlock + blocks/2
	cfg := x.oracleConfig()
	cfg.ToBlock = mid
	want, err := echaintest.Expected(x.ctx, x.dc.Client(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	at, err := echaintest.ReadStore(x.ctx, x.st.Pool(), x.sch, int64(mid))
	if err != nil {
		t.Fatal(err)
	}
	if diff := echaintest.Diff(want, at); len(diff) > 0 {
		t.Errorf("store as of block %d differs from the oracle:\n%s", mid, strings.Join(diff[:min(len(diff), 40)], "\n"))
	}
	if at.Count("Ticket") == 0 || at.Count("Ticket") >= got.Count("Ticket") {
		t.Errorf("as of block %d: %d tickets, now %d", mid, at.Count("Ticket"), got.Count("Ticket"))
	}
	t.Logf("traffic: %d txs, %d events, %d tickets; store: %d transfers, %d transactions, %d listings",
		st.Txs, st.Events, st.Tickets, got.Count("Transfer"), got.Count("Transaction"), got.Count("Listing"))
}
