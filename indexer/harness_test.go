package indexer_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/echain/echain-indexer/devchain"
	"github.com/echain/echain-indexer/indexer"
	"github.com/echain/echain-indexer/indexer/echain"
	"github.com/echain/echain-indexer/indexer/echain/echaintest"
	"github.com/echain/echain-indexer/indexer/source"
	"github.com/echain/echain-indexer/indexer/source/rpcproxy"
	"github.com/echain/echain-indexer/internal/testwait"
	"github.com/echain/echain-indexer/schema"
	"github.com/echain/echain-indexer/store"
	"github.com/echain/echain-indexer/store/storetest"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	os.Exit(storetest.Run(m))
}

// testLogger writes to the test log when -v is given and stays quiet otherwise.
func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		level := slog.LevelInfo
		if os.Getenv("ECHAIN_TEST_LOG") == "debug" {
			level = slog.LevelDebug
		}
		return slog.New(slog.NewTextHandler(&tWriter{t: t}, &slog.HandlerOptions{Level: level}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type tWriter struct {
	mu sync.Mutex
	t  testing.TB
}

func (w *tWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// startChain runs a dev chain for the test with the contracts deployed.
func startChain(t testing.TB, cfg devchain.Config) *devchain.Chain {
	t.Helper()
	if cfg.MetadataAddr == "" {
		cfg.MetadataAddr = "off"
	}
	c, err := devchain.Start(testwait.Context(t), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("start dev chain: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// setup names everything an indexer process needs; the kill test passes it to a child.
type setup struct {
	DB        string
	Endpoints []source.Endpoint
	Source    source.Config // Endpoints come from the field above; PollInterval defaults to 200ms
	Addresses devchain.Addresses
	Config    indexer.Config
}

func chainSetup(c *devchain.Chain, db string) setup {
	return setup{DB: db, Endpoints: []source.Endpoint{{Name: "dev", HTTPURL: c.HTTPURL, WSURL: c.WSURL}},
		Addresses: c.Addresses, Config: indexer.Config{FinalityDepth: 32, ProgressInterval: time.Second}}
}

// instance is one indexing process's parts, in-process.
type instance struct {
	st     *store.Store
	src    *source.Source
	fl     *indexer.Follower
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

func openStore(ctx context.Context, url string) (*store.Store, error) {
	sch, err := schema.Load()
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, url, sch, store.Options{})
	if err != nil {
		return nil, err
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// build assembles source, store, mappings and follower (not started).
func build(ctx context.Context, s setup, log *slog.Logger) (*instance, error) {
	reg := prometheus.NewRegistry()
	st, err := openStore(ctx, s.DB)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	scfg := s.Source
	scfg.Endpoints = s.Endpoints
	if scfg.PollInterval == 0 {
		scfg.PollInterval = 200 * time.Millisecond
	}
	src, err := source.New(ctx, scfg, log, reg)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("source: %w", err)
	}
	a := s.Addresses
	h, err := echain.New(echain.Config{
		EventFactory:     echain.ContractConfig{Address: a.EventFactory, StartBlock: a.StartBlock},
		Marketplace:      echain.ContractConfig{Address: a.Marketplace, StartBlock: a.StartBlock},
		POAPAttendance:   echain.ContractConfig{Address: a.POAPAttendance, StartBlock: a.StartBlock},
		IncentiveManager: echain.ContractConfig{Address: a.IncentiveManager, StartBlock: a.StartBlock},
	}, src, log, reg)
	if err != nil {
		src.Close()
		st.Close()
		return nil, fmt.Errorf("mappings: %w", err)
	}
	fl, err := indexer.New(s.Config, src, st, h, log, reg)
	if err != nil {
		src.Close()
		st.Close()
		return nil, err
	}
	return &instance{st: st, src: src, fl: fl, reg: reg}, nil
}

// startIndexer builds and runs an indexer in this process until the test ends or stop.
func startIndexer(t testing.TB, s setup) *instance {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	in, err := build(ctx, s, testLogger(t))
	if err != nil {
		cancel()
		t.Fatalf("build indexer: %v", err)
	}
	in.cancel = cancel
	in.done = make(chan error, 1)
	go func() { in.done <- in.fl.Run(ctx) }()
	t.Cleanup(in.stop)
	return in
}

func (in *instance) stop() {
	if in.cancel == nil {
		return
	}
	in.cancel()
	in.cancel = nil
	select {
	case err := <-in.done:
		in.done <- err
	case <-time.After(30 * time.Second):
	}
	in.src.Close()
	in.st.Close()
}

// runErr is Run's result once it returned (nil, false while running).
func (in *instance) runErr() (error, bool) {
	select {
	case err := <-in.done:
		in.done <- err
		return err, true
	default:
		return nil, false
	}
}

// waitSynced waits until the store's cursor is the chain's current head (same hash).
func waitSynced(t testing.TB, in *instance, c *devchain.Chain) {
	t.Helper()
	// The follower's status moves after the commit and its counters: waiting for it too, a test
	// that reads a counter next sees the last block counted.
	testwait.For(t, "the store's cursor and the follower's status to reach the chain's head", func() (bool, string) {
		head := c.Head()
		got, err := in.st.Head(context.Background())
		if err != nil {
			t.Fatalf("store head: %v", err)
		}
		if got != nil && got.Number == head.Number.Int64() && got.Hash == head.Hash() && in.fl.Status().Indexed.Hash == head.Hash() {
			return true, ""
		}
		if err, done := in.runErr(); done {
			t.Fatalf("indexer stopped: %v", err)
		}
		var n int64 = -1
		if got != nil {
			n = got.Number
		}
		return false, fmt.Sprintf("at %d, head %d (%s); status %+v", n, head.Number, head.Hash(), in.fl.Status())
	})
}

// scratchIndex indexes the chain as it is now into a fresh database and returns its URL.
func scratchIndex(t testing.TB, c *devchain.Chain) string {
	t.Helper()
	db := storetest.NewDB(t)
	s := chainSetup(c, db)
	in := startIndexer(t, s)
	waitSynced(t, in, c)
	in.stop()
	return db
}

// compareStores fails the test unless both databases hold the same current entities.
func compareStores(t testing.TB, wantURL, gotURL string) {
	t.Helper()
	want := readState(t, wantURL)
	got := readState(t, gotURL)
	if d := echaintest.Diff(want, got); len(d) > 0 {
		if len(d) > 20 {
			d = append(d[:20], fmt.Sprintf("... and %d more", len(d)-20))
		}
		t.Fatalf("store differs from a from-scratch index of the canonical chain:\n%s", strings.Join(d, "\n"))
	}
	n := 0
	for _, m := range want {
		n += len(m)
	}
	if n == 0 {
		t.Fatal("from-scratch index holds no entities: the traffic produced nothing to compare")
	}
	t.Logf("stores equal: %d entities", n)
}

func readState(t testing.TB, url string) echaintest.State {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	defer pool.Close()
	sch, err := schema.Load()
	if err != nil {
		t.Fatal(err)
	}
	st, err := echaintest.ReadStore(ctx, pool, sch, echaintest.Current)
	if err != nil {
		t.Fatalf("read store: %v", err)
	}
	return st
}

// counter reads a counter (summed over label sets matching labels) from a registry.
func counter(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !labelsMatch(m, labels) {
				continue
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Histogram != nil:
				sum += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return sum
}

func labelsMatch(m *dto.Metric, want map[string]string) bool {
	for k, v := range want {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == k && lp.GetValue() == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// wsProxy puts a TCP proxy in front of c's WebSocket endpoint, to cut, refuse or freeze its
// connections; it closes when the test ends.
func wsProxy(t testing.TB, c *devchain.Chain) *rpcproxy.TCPProxy {
	t.Helper()
	tcp, err := rpcproxy.NewTCP(strings.TrimPrefix(c.WSURL, "ws://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tcp.Close() })
	return tcp
}

// httpProxy puts the JSON-RPC proxy in front of c's HTTP endpoint; it closes when the test ends.
func httpProxy(t testing.TB, c *devchain.Chain) *rpcproxy.Proxy {
	t.Helper()
	proxy, err := rpcproxy.New(c.HTTPURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	return proxy
}
