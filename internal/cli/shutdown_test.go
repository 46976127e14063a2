package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/echain/echain-indexer/config"
	"github.com/echain/echain-indexer/internal/cli/clitest"
	"github.com/echain/echain-indexer/store/storetest"
)

// TestShutdownWithinTimeoutWhateverRuns: queries in flight and database connections held by work
// that ignores its cancellation (as graphql-go's validation did: SIGTERM left the process alive
// at 240 s, blocked in pgxpool.Close). The cancellation SIGTERM gives (Main cancels the command's
// context) must end the API's serve within shutdown_timeout, cleanly: nil error (exit 0), the
// abandoned work logged, and the store declared consistent. The bound is the process's own
// measure of its shutdown (the "stopped" line's took).
func TestShutdownWithinTimeoutWhateverRuns(t *testing.T) {
	const timeout = 3 * time.Second
	t.Chdir(t.TempDir()) // no ./config.yaml
	cfg, _, err := config.Load(config.Options{Set: map[string]string{
		"api.listen": "127.0.0.1:0", "metrics.listen": "", "shutdown_timeout": timeout.String(),
		"rpc.http_url": "http://127.0.0.1:1", "rpc.ws_url": "", "database.max_conns": "2",
	}})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Database.URL = storetest.NewDB(t)
	logs := &clitest.Buffer{}
	e := &env{cfg: cfg, log: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), stdout: io.Discard, stderr: io.Discard}
	ctx, sigterm := context.WithCancel(context.Background())
	defer sigterm()
	a, err := build(ctx, e, cfg, parts{api: true})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- a.serve(ctx) }()

	// Work that ignores cancellation: it holds both pool connections and never gives them back
	// while the process runs, so pgxpool.Close would wait forever.
	var held []*pgxpool.Conn
	for range 2 {
		c, err := a.store.Pool().Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	t.Cleanup(func() {
		for _, c := range held {
			c.Release()
		}
	})
	// Queries in flight, waiting for a connection.
	const queries = 8
	var wg sync.WaitGroup
	answered := make(chan string, queries)
	for range queries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Post("http://"+a.api.Addr()+"/graphql", "application/json", strings.NewReader(`{"query":"{ events(first: 1000) { id } }"}`))
			if err != nil {
				answered <- err.Error() // the connection was cut: also an end
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			answered <- string(b)
		}()
	}
	waitFor(t, time.Minute, "the queries to be in flight", func() bool {
		mfs, _ := a.reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "echain_indexer_graphql_in_flight_requests" {
				return mf.GetMetric()[0].GetGauge().GetValue() == queries
			}
		}
		return false
	})

	sigterm()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("serve after SIGTERM: %v (the exit status would not be 0)", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("serve still running 2 minutes after SIGTERM with shutdown_timeout %s", timeout)
	}
	wg.Wait()
	close(answered)
	for body := range answered {
		if strings.Contains(body, `"events":[`) {
			t.Errorf("a query waiting for a connection was answered after SIGTERM, not cancelled: %s", body)
		}
	}

	var stopped map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == "stopped" {
			stopped = line
		}
	}
	if stopped == nil {
		t.Fatalf("no \"stopped\" log line:\n%s", logs.String())
	}
	ns, ok := stopped["took"].(float64) // slog's JSON writes durations in nanoseconds
	if !ok {
		t.Fatalf("stopped line without took: %v", stopped)
	}
	took := time.Duration(ns)
	t.Logf("stopped: %v", stopped)
	if took > timeout {
		t.Errorf("the shutdown took %s, past shutdown_timeout %s", took, timeout)
	}
	if stopped["abandoned"] != true || !strings.Contains(stopped["store"].(string), "consistent") {
		t.Errorf("the last line should say the held work was abandoned and the store is consistent: %v", stopped)
	}
}
