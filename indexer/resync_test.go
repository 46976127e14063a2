package indexer_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/echain/echain-indexer/devchain"
	"github.com/echain/echain-indexer/indexer"
	"github.com/echain/echain-indexer/indexer/source"
	"github.com/echain/echain-indexer/internal/testwait"
	"github.com/echain/echain-indexer/store"
	"github.com/echain/echain-indexer/store/storetest"
)

// changes records the store's change notifications.
type changes struct {
	mu   sync.Mutex
	list []store.Change
}

func listen(t testing.TB, url string) *changes {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+store.NotifyChannel); err != nil {
		t.Fatal(err)
	}
	ch := &changes{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			n, err := conn.WaitForNotification(ctx)
			if err != nil {
				return
			}
			c, err := store.ParseChange(n.Payload)
			if err != nil {
				t.Errorf("bad notification %q: %v", n.Payload, err)
				return
			}
			ch.mu.Lock()
			ch.list = append(ch.list, *c)
			ch.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); <-done; conn.Close(context.Background()) })
	return ch
}

func (c *changes) revertsTo(block int64) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, x := range c.list {
		if x.Revert && x.Block == block {
			n++
		}
	}
	return n
}

// TestResyncWhileRunning files a re-sync from another process-like follower while the leader
// runs: the leader reverts to N-1 (the API then answers as of N-1, announced by a revert
// notification) and re-indexes; refusals name their reason.
func TestResyncWhileRunning(t *testing.T) {
	c := startChain(t, devchain.Config{})
	tr := devchain.NewTraffic(c, devchain.TrafficConfig{TxsPerBlock: 4}, quietLog())
	steps(t, tr, 80)
	s := chainSetup(c, storetest.NewDB(t))
	leader := startIndexer(t, s)
	waitSynced(t, leader, c)
	notes := listen(t, s.DB)

	ctx := testwait.Context(t)
	// The command's own endpoint refuses connections: with a leader running, it needs none.
	cs := s
	cs.Endpoints = []source.Endpoint{{Name: "dead", HTTPURL: "http://127.0.0.1:1"}}
	cmd, err := build(ctx, cs, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer cmd.st.Close()
	defer cmd.src.Close()

	head := c.Head().Number.Int64()
	if err := cmd.fl.Resync(ctx, head+5, nil); err == nil || !strings.Contains(err.Error(), "beyond the indexed head") {
		t.Fatalf("resync beyond the head: %v", err)
	}
	if err := cmd.fl.Resync(ctx, cmd.fl.StartBlock()-1, nil); err == nil || !strings.Contains(err.Error(), "before the configured start") {
		t.Fatalf("resync before the start: %v", err)
	}

	from := head - 10 // inside the kept window
	before := counter(t, leader.reg, "echain_indexer_blocks_indexed_total", nil)
	// No traffic runs meanwhile, so the leader's head stays where it is until the request.
	h, err := cmd.st.Head(ctx)
	if err != nil || h == nil {
		t.Fatalf("store head: %v, %v", h, err)
	}
	indexedBefore := h.Number
	var seen []indexer.ResyncProgress // the first report of each phase
	err = cmd.fl.Resync(ctx, from, func(p indexer.ResyncProgress) {
		if len(seen) == 0 || seen[len(seen)-1].Phase != p.Phase {
			seen = append(seen, p)
		}
	})
	if err != nil {
		t.Fatalf("resync: %v", err)
	}
	t.Logf("phases %+v", seen)
	if seen[0].Phase != "requested" || seen[len(seen)-1].Phase != "done" {
		t.Fatalf("phases %+v: want requested ... done", seen)
	}
	// Every line the command prints names the block it waits for; after the revert the cursor
	// is at from-1; done means the leader is back where it was.
	for _, p := range seen {
		if p.From != from || p.Target != indexedBefore {
			t.Errorf("progress %+v: want from %d, target %d (the indexed head when asked)", p, from, indexedBefore)
		}
		switch p.Phase {
		case "requested":
			if p.Indexed != indexedBefore {
				t.Errorf("progress %+v: want indexed %d", p, indexedBefore)
			}
		case "reverted":
			if p.Indexed != from-1 {
				t.Errorf("progress %+v: want indexed %d after the revert", p, from-1)
			}
		case "done":
			if p.Indexed < indexedBefore {
				t.Errorf("progress %+v: done before the leader is back at %d", p, indexedBefore)
			}
		}
	}
	if n := counter(t, leader.reg, "echain_indexer_resyncs_total", nil); n != 1 {
		t.Fatalf("leader carried out %v re-syncs, want 1", n)
	}
	if got := counter(t, leader.reg, "echain_indexer_blocks_indexed_total", nil) - before; got < float64(head-from+1) {
		t.Fatalf("leader re-indexed %v blocks, want at least %d", got, head-from+1)
	}
	testwait.Until(t, fmt.Sprintf("a revert notification to block %d", from-1), func() bool { return notes.revertsTo(from-1) > 0 })
	steps(t, tr, 3)
	waitSynced(t, leader, c)
	leader.stop()
	compareStores(t, scratchIndex(t, c), s.DB)
}

// TestResyncStopped re-syncs from a block below the kept window with no indexer running: the
// command takes the leader lock, reverts and re-indexes to the head itself.
func TestResyncStopped(t *testing.T) {
	c := startChain(t, devchain.Config{})
	tr := devchain.NewTraffic(c, devchain.TrafficConfig{TxsPerBlock: 4}, quietLog())
	steps(t, tr, 120)
	s := chainSetup(c, storetest.NewDB(t))
	s.Config.FinalityDepth = 16
	in := startIndexer(t, s)
	waitSynced(t, in, c)
	in.stop()
	steps(t, tr, 5) // the re-sync also catches up with blocks sealed while stopped
	notes := listen(t, s.DB)

	ctx := testwait.Context(t)
	cmd, err := build(ctx, s, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer cmd.st.Close()
	defer cmd.src.Close()
	from := int64(30) // far below the window (head ~120, depth 16)
	var last indexer.ResyncProgress
	if err := cmd.fl.Resync(ctx, from, func(p indexer.ResyncProgress) { last = p }); err != nil {
		t.Fatalf("resync: %v", err)
	}
	if last.Phase != "done" || last.Indexed != c.Head().Number.Int64() {
		t.Fatalf("last progress %+v, want done at head %d", last, c.Head().Number)
	}
	testwait.Until(t, fmt.Sprintf("a revert notification to block %d", from-1), func() bool { return notes.revertsTo(from-1) > 0 })
	h, err := cmd.st.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if h.Hash != c.Head().Hash() {
		t.Fatalf("store head %d %s, chain head %d %s", h.Number, h.Hash, c.Head().Number, c.Head().Hash())
	}
	compareStores(t, scratchIndex(t, c), s.DB)
}
