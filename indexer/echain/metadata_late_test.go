package echain

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/echain/echain-indexer/devchain"
	"github.com/echain/echain-indexer/indexer"
	"github.com/echain/echain-indexer/indexer/echain/echaintest"
	"github.com/echain/echain-indexer/indexer/source"
	"github.com/echain/echain-indexer/schema"
	"github.com/echain/echain-indexer/store"
	"github.com/echain/echain-indexer/store/storetest"
)

// These tests run the real follower: metadata documents reach the store only through
// WriteLate in its commits.

// gateway serves the dev chain's documents (devchain.Metadata, a pure function of the CID) and
// holds every request while it is held, counting what it received and answered.
type gateway struct {
	*httptest.Server
	mu       sync.Mutex
	held     chan struct{} // closed when released
	failN    int           // the first failN requests of each CID answer 502
	seen     map[string]int
	received atomic.Int64
	answered atomic.Int64
}

func newGateway(t *testing.T, held bool, failN int) *gateway {
	g := &gateway{held: make(chan struct{}), failN: failN, seen: map[string]int{}}
	if !held {
		close(g.held)
	}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.received.Add(1)
		g.mu.Lock()
		held := g.held
		g.mu.Unlock()
		select {
		case <-held:
		case <-r.Context().Done():
			return
		}
		cid := strings.TrimPrefix(r.URL.Path, "/ipfs/")
		g.mu.Lock()
		g.seen[cid]++
		fail := g.seen[cid] <= g.failN
		g.mu.Unlock()
		g.answered.Add(1)
		if fail {
			http.Error(w, "busy", http.StatusBadGateway)
			return
		}
		d, ok := devchain.Metadata("ipfs://"+cid, devchain.MetadataConfig{})
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(d.Status)
		_, _ = w.Write(d.Body)
	}))
	t.Cleanup(g.Close)
	return g
}

func (g *gateway) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.held:
	default:
		close(g.held)
	}
}

// lateIndexer is one follower (with its mappings) over a dev chain and a store.
type lateIndexer struct {
	h    *Handler
	fl   *indexer.Follower
	stop func()
}

func startLateIndexer(t *testing.T, ctx context.Context, dc *devchain.Chain, st *store.Store, gatewayURL string) *lateIndexer {
	t.Helper()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	reg := prometheus.NewRegistry()
	src, err := source.New(ctx, source.Config{Endpoints: []source.Endpoint{{Name: "dev", HTTPURL: dc.HTTPURL, WSURL: dc.WSURL}}, PollInterval: 50 * time.Millisecond}, log, reg)
	if err != nil {
		t.Fatal(err)
	}
	a := dc.Addresses
	h, err := New(Config{
		EventFactory:     ContractConfig{a.EventFactory, a.StartBlock},
		Marketplace:      ContractConfig{a.Marketplace, a.StartBlock},
		POAPAttendance:   ContractConfig{a.POAPAttendance, a.StartBlock},
		IncentiveManager: ContractConfig{a.IncentiveManager, a.StartBlock},
		MetadataGateway:  gatewayURL,
		MetadataTimeout:  time.Hour, // a hanging document hangs for the whole test
		MetadataStore:    st,
	}, src, log, reg)
	if err != nil {
		t.Fatal(err)
	}
	h.meta.retryMin, h.meta.hostMin, h.meta.hostMax = 50*time.Millisecond, 10*time.Millisecond, 100*time.Millisecond
	fl, err := indexer.New(indexer.Config{FinalityDepth: 32}, src, st, h, log, reg)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- fl.Run(runCtx) }()
	var once sync.Once
	x := &lateIndexer{h: h, fl: fl}
	x.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("indexer: %v", err)
			}
			h.Close()
			src.Close()
		})
	}
	t.Cleanup(x.stop)
	return x
}

func openLateStore(t *testing.T, ctx context.Context) (*store.Store, *schema.Schema) {
	t.Helper()
	sch, err := schema.Load()
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, storetest.NewDB(t), sch, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return st, sch
}

// waitFor polls cond until it holds; what names the condition in the failure.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("gave up waiting for %s: %v", what, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func readEvents(t *testing.T, ctx context.Context, st *store.Store, sch *schema.Schema, at int64) echaintest.State {
	t.Helper()
	s, err := echaintest.ReadStore(ctx, st.Pool(), sch, at)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func filled(e echaintest.Entity, d devchain.MetadataDoc) bool {
	return e != nil && e["description"] == d.Description && e["category"] == d.Category && d.Description != ""
}

func isDefault(e echaintest.Entity) bool {
	return e != nil && e["description"] == "" && e["category"] == "" && e["location"] == nil && e["imageUrl"] == nil
}

// TestMetadataNeverHoldsACommit: with a gateway that answers nothing, Events are committed with
// the defaults while every document request is still open; a restarted indexer finds them,
// writes each document as a new version when it arrives, and writes it again after a
// reorganisation took away the block that carried it.
func TestMetadataNeverHoldsACommit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	dc, err := devchain.Start(ctx, devchain.Config{Archive: true, MetadataAddr: "off"}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dc.Close() })
	st, sch := openLateStore(t, ctx)
	gw := newGateway(t, true, 0)
	ix := startLateIndexer(t, ctx, dc, st, gw.URL)

	org := dc.User(0)
	if _, err := dc.VerifyOrganizer(ctx, org); err != nil {
		t.Fatal(err)
	}
	if _, err := dc.Mine(ctx); err != nil {
		t.Fatal(err)
	}
	docs := map[string]devchain.MetadataDoc{}
	now := dc.Head().Time
	n := uint64(0)
	for i := range 3 {
		var uri string
		uri, n = devchain.MetadataURIOfKind(3, n+1, devchain.MetaFull)
		d, _ := devchain.Metadata(uri, devchain.MetadataConfig{})
		if _, err := dc.CreateEvent(ctx, org, devchain.EventParams{Name: fmt.Sprint("E", i), MetadataURI: uri, TicketPrice: gwei(1),
			MaxTickets: 5, StartTime: now + 100, EndTime: now + 200}); err != nil {
			t.Fatal(err)
		}
		docs[fmt.Sprint(i+1)] = d
	}
	if _, err := dc.Mine(ctx); err != nil {
		t.Fatal(err)
	}
	created := dc.Head().Number.Int64()
	// Every commit so far happened with every document request open and unanswered.
	waitFor(t, ctx, "the three Events committed", func() bool {
		s := readEvents(t, ctx, st, sch, echaintest.Current)
		return s.Count("Event") == 3
	})
	waitFor(t, ctx, "the gateway asked for the documents", func() bool { return gw.received.Load() >= 3 })
	if a := gw.answered.Load(); a != 0 {
		t.Fatalf("the gateway answered %d requests while held", a)
	}
	for id := range docs {
		if e := readEvents(t, ctx, st, sch, echaintest.Current).Get("Event", id); !isDefault(e) {
			t.Errorf("event %s committed before its document arrived: %v, want the defaults", id, e)
		}
	}
	// More blocks commit while the documents still hang.
	for range 3 {
		if _, err := dc.Mine(ctx); err != nil {
			t.Fatal(err)
		}
	}
	head := dc.Head().Hash()
	waitFor(t, ctx, "blocks committed past the hanging documents", func() bool {
		h, err := st.Head(ctx)
		return err == nil && h != nil && h.Hash == head
	})
	if a := gw.answered.Load(); a != 0 {
		t.Fatalf("the gateway answered %d requests while held", a)
	}

	// A restart: the new process has no memory of the Events awaiting documents; the store does.
	ix.stop()
	gw.release()
	ix = startLateIndexer(t, ctx, dc, st, gw.URL)
	mineUntil := func(what string, cond func(echaintest.State) bool) {
		t.Helper()
		waitFor(t, ctx, what, func() bool {
			if cond(readEvents(t, ctx, st, sch, echaintest.Current)) {
				return true
			}
			// Fills are written in the next commit: give the follower blocks to commit.
			if _, err := dc.Mine(ctx); err != nil {
				t.Fatal(err)
			}
			return false
		})
	}
	allFilled := func(s echaintest.State) bool {
		for id, d := range docs {
			if !filled(s.Get("Event", id), d) {
				return false
			}
		}
		return true
	}
	mineUntil("every document written after the restart", allFilled)
	// A new version: as of the creation block the Events still show the defaults.
	at := readEvents(t, ctx, st, sch, created)
	for id := range docs {
		if e := at.Get("Event", id); !isDefault(e) {
			t.Errorf("event %s as of its creation block %d: %v, want the defaults (the document came later)", id, created, e)
		}
	}
	fillBlock := int64(0)
	if err := st.Pool().QueryRow(ctx, `SELECT max(lower(block_range)) FROM entities."event"`).Scan(&fillBlock); err != nil {
		t.Fatal(err)
	}
	if fillBlock <= created {
		t.Fatalf("fill at block %d, not after the creation block %d", fillBlock, created)
	}

	// A reorganisation that takes away the fill's block but not the creation's.
	depth := int(dc.Head().Number.Int64() - created)
	if depth > dc.MaxReorgDepth() {
		t.Fatalf("the fill came %d blocks after the creation, deeper than a dev chain reorg (%d)", depth, dc.MaxReorgDepth())
	}
	res, err := dc.Reorg(ctx, depth)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the indexer on the new branch", func() bool {
		h, err := st.Head(ctx)
		return err == nil && h != nil && h.Number >= int64(res.NewHead)
	})
	mineUntil("every document written again after the reorganisation", allFilled)
	var refill int64
	if err := st.Pool().QueryRow(ctx, `SELECT max(lower(block_range)) FROM entities."event" WHERE upper_inf(block_range)`).Scan(&refill); err != nil {
		t.Fatal(err)
	}
	if refill <= int64(res.Ancestor) {
		t.Errorf("current versions start at block %d, not on the new branch (ancestor %d)", refill, res.Ancestor)
	}
	if got := counterValue(t, ix.h.m.metadataFills); got < 3 {
		t.Errorf("%v fills written by the restarted indexer, want at least 3 (before and after the reorg)", got)
	}
}

// TestMetadataTwoIndexersConverge: one indexer's gateway fails the first requests of every
// document, the other's does not; both end with the same metadata, that of the documents.
func TestMetadataTwoIndexersConverge(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	dc, err := devchain.Start(ctx, devchain.Config{Archive: true, MetadataAddr: "off"}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dc.Close() })
	tr := devchain.NewTraffic(dc, devchain.TrafficConfig{Seed: 11, TxsPerBlock: 8}, log)
	for i := range 30 {
		if _, err := tr.Step(ctx); err != nil {
			t.Fatalf("traffic step %d: %v", i, err)
		}
	}
	good, flaky := newGateway(t, false, 0), newGateway(t, false, 3)
	stA, sch := openLateStore(t, ctx)
	stB, _ := openLateStore(t, ctx)
	startLateIndexer(t, ctx, dc, stA, good.URL)
	startLateIndexer(t, ctx, dc, stB, flaky.URL)
	events := func(st *store.Store) map[string]echaintest.Entity {
		return readEvents(t, ctx, st, sch, echaintest.Current)["Event"]
	}
	same := func() bool {
		a, b := events(stA), events(stB)
		if len(a) == 0 || len(a) != tr.Stats().Events || len(b) != len(a) {
			return false
		}
		for id, ea := range a {
			eb := b[id]
			d, ok := devchain.Metadata(fmt.Sprint(ea["metadataUri"]), devchain.MetadataConfig{})
			for _, f := range []string{"description", "category", "location", "imageUrl", "metadataUri"} {
				if fmt.Sprint(ea[f]) != fmt.Sprint(eb[f]) {
					return false
				}
			}
			if ok && d.Usable() && ea["description"] != d.Description {
				return false
			}
		}
		return true
	}
	waitFor(t, ctx, "both stores to hold the same Events with their documents", func() bool {
		if same() {
			return true
		}
		if _, err := dc.Mine(ctx); err != nil { // fills are written in commits
			t.Fatal(err)
		}
		return false
	})
	if flaky.answered.Load() <= good.answered.Load() {
		t.Errorf("the flaky gateway answered %d requests, the good one %d: the failures were not retried", flaky.answered.Load(), good.answered.Load())
	}
}
