package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"

	"github.com/echain/echain-indexer/devchain"
	"github.com/echain/echain-indexer/schema"
	"github.com/echain/echain-indexer/store"
	"github.com/echain/echain-indexer/store/ddl"
	"github.com/echain/echain-indexer/store/storetest"
)

// opsEnv points a child at the test's dev chain and database, on free ports.
type opsEnv struct {
	chain             *devchain.Chain
	db                string
	apiAddr, metAddr  string
	apiURL, metricURL string
}

func (o *opsEnv) env(extra ...string) []string {
	return append([]string{
		"ECHAIN_DATABASE_URL=" + o.db,
		"ECHAIN_RPC_HTTP_URL=" + o.chain.HTTPURL,
		"ECHAIN_RPC_WS_URL=" + o.chain.WSURL,
		"ECHAIN_METADATA_GATEWAY=" + o.chain.MetadataGateway,
		"ECHAIN_API_LISTEN=" + o.apiAddr,
		"ECHAIN_METRICS_LISTEN=" + o.metAddr,
		"ECHAIN_SHUTDOWN_TIMEOUT=15s",
		"ECHAIN_LOG_LEVEL=debug",
	}, extra...)
}

// TestOperations runs the binary against a dev chain the way an operator would: a backfill
// interrupted by SIGTERM exits 0 and resumes from its cursor; /metrics series move as the chain
// advances; /healthz and /readyz answer; `status --json` agrees with the database; `resync`
// goes through the running indexer; a `serve` replica and a second `run` (standby) answer the
// same without indexing; SIGTERM in realtime exits 0 within the deadline.
func TestOperations(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	chain, err := devchain.Start(ctx, devchain.Config{}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer chain.Close()
	traffic := devchain.NewTraffic(chain, devchain.TrafficConfig{TxsPerBlock: 6}, log)
	step := stepper(ctx, t, traffic)
	built := time.Now()
	step(250)
	t.Logf("dev chain: 250 blocks of traffic in %s", time.Since(built).Round(time.Millisecond))

	o := &opsEnv{chain: chain, db: storetest.NewDB(t), apiAddr: freePort(t), metAddr: freePort(t)}
	o.apiURL, o.metricURL = "http://"+o.apiAddr, "http://"+o.metAddr
	// Small getLogs windows, one at a time: the backfill takes long enough to be interrupted.
	slow := []string{"ECHAIN_BACKFILL_RANGE_BLOCKS=2", "ECHAIN_BACKFILL_MAX_RANGE_BLOCKS=2", "ECHAIN_BACKFILL_CONCURRENCY=1"}

	// 1. SIGTERM during backfill: exit 0, cursor part-way.
	first := startChild(t, o.env(slow...), "run")
	var target int64
	first.waitFor(90*time.Second, "the backfill to commit blocks", func() bool {
		l, err := liveOf(o.metricURL)
		if err != nil || l.Mode != "backfill" || l.Backfill == nil || l.Indexed < 20 {
			return false
		}
		target = l.Backfill.To
		return true
	})
	code, took := first.stop(syscall.SIGTERM, 20*time.Second)
	if code != 0 {
		t.Fatalf("SIGTERM during backfill: exit %d", code)
	}
	t.Logf("SIGTERM during backfill: exit 0 in %s", took.Round(time.Millisecond))
	h1, _ := headOf(t, o.db)
	if h1 < 20 || h1 >= target {
		t.Fatalf("cursor after the interrupted backfill is %d; want between 20 and the target %d", h1, target)
	}

	// 2. Restart: the backfill resumes right after the cursor.
	second := startChild(t, o.env(), "run")
	second.waitFor(60*time.Second, "the restarted indexer to report", func() bool {
		l, err := liveOf(o.metricURL)
		return err == nil && l.Leader && (l.Backfill != nil || l.Mode == "realtime")
	})
	second.waitFor(120*time.Second, "the indexer to reach the chain head", func() bool {
		n, _ := headOf(t, o.db)
		return n == int64(chain.Head().Number.Uint64())
	})
	if l, err := liveOf(o.metricURL); err != nil {
		t.Fatal(err)
	} else if l.Backfill != nil && l.Backfill.From != h1+1 {
		t.Errorf("restarted backfill began at %d, want the block after the cursor %d", l.Backfill.From, h1+1)
	}
	if strings.Contains(second.stderr.String(), "level=ERROR") {
		t.Errorf("errors logged after the restart:\n%s", grep(second.stderr.String(), "level=ERROR"))
	}

	// 3. The entities are what the chain holds: nothing lost or doubled by the interruption.
	stats := traffic.Stats()
	events, sold := graphqlTotals(t, o.apiURL)
	if events != stats.Events || sold != stats.Tickets {
		t.Errorf("GraphQL: %d events, %d tickets sold; the chain has %d events, %d tickets", events, sold, stats.Events, stats.Tickets)
	}

	// 4. Health and readiness.
	if code, body, err := httpGet(o.apiURL + "/healthz"); err != nil || code != 200 {
		t.Errorf("/healthz: %d %s %v", code, body, err)
	}
	waitFor(t, 90*time.Second, "/readyz", func() bool { code, _, _ := httpGet(o.apiURL + "/readyz"); return code == 200 })

	// 5. Metrics move as the chain advances.
	before := scrape(t, o.metricURL)
	step(5)
	head := int64(chain.Head().Number.Uint64())
	waitFor(t, 90*time.Second, "the new blocks to be indexed", func() bool { n, _ := headOf(t, o.db); return n == head })
	graphqlTotals(t, o.apiURL)
	waitFor(t, 90*time.Second, "the metrics to catch up", func() bool { return scrape(t, o.metricURL)["echain_indexer_indexed_block"] == float64(head) })
	after := scrape(t, o.metricURL)
	for _, name := range []string{
		"echain_indexer_indexed_block", "echain_indexer_chain_head_block",
		`echain_indexer_blocks_indexed_total{mode="realtime"}`, `echain_indexer_logs_indexed_total{mode="realtime"}`,
		"echain_indexer_rpc_requests_total", "echain_indexer_store_versions_written_total",
		`echain_indexer_http_requests_total{code="200",handler="graphql"}`, "echain_indexer_graphql_requests_total",
		"echain_indexer_db_pool_acquires_total",
	} {
		if after[name] <= before[name] {
			t.Errorf("%s did not move: %v -> %v", name, before[name], after[name])
		}
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "echain_indexer_build_info",
		"echain_indexer_db_pool_max_connections", "echain_indexer_leader", "echain_indexer_start_time_seconds"} {
		if after[name] == 0 {
			t.Errorf("%s missing or zero", name)
		}
	}
	if after["echain_indexer_lag_blocks"] > 2 {
		t.Errorf("lag %v blocks after catching up", after["echain_indexer_lag_blocks"])
	}

	// 6. `status --json` agrees with the database and the running indexer.
	st := startChild(t, o.env(), "status", "--json", "--count")
	if code := st.wait(60 * time.Second); code != 0 {
		t.Fatalf("status: exit %d", code)
	}
	var rep statusReport
	if err := json.Unmarshal([]byte(st.stdout.String()), &rep); err != nil {
		t.Fatalf("status --json: %v\n%s", err, st.stdout)
	}
	num, hash := headOf(t, o.db)
	if rep.Indexed == nil || rep.Indexed.Number != num || !strings.EqualFold(rep.Indexed.Hash, hash) {
		t.Errorf("status indexed %+v, database head %d %s", rep.Indexed, num, hash)
	}
	if rep.ChainHead != head || rep.LagBlocks != head-num || rep.ChainID != 1337 {
		t.Errorf("status chain head %d lag %d chain %d; want %d, %d, 1337", rep.ChainHead, rep.LagBlocks, rep.ChainID, head, head-num)
	}
	if len(rep.Endpoints) != 1 || rep.Endpoints[0].Head != head || rep.Endpoints[0].Error != "" {
		t.Errorf("status endpoints %+v", rep.Endpoints)
	}
	if rep.Indexer == nil || rep.Indexer.Mode != "realtime" || !rep.Indexer.Leader || rep.Indexer.Indexed != num {
		t.Errorf("status live indexer %+v (%s)", rep.Indexer, rep.IndexerError)
	}
	counts := entityCounts(t, o.db)
	if len(rep.Entities) != len(counts) || rep.DatabaseBytes <= 0 {
		t.Errorf("status has %d entity types, the database %d; size %d", len(rep.Entities), len(counts), rep.DatabaseBytes)
	}
	for _, e := range rep.Entities {
		want, ok := counts[e.Table]
		if !ok || e.Versions != want[0] || e.Current != want[1] || !e.Exact || e.Bytes <= 0 {
			t.Errorf("status entity %+v; database has versions/current %v", e, want)
		}
		if e.Type == "Event" && e.Current != int64(stats.Events) {
			t.Errorf("status counts %d events; the chain has %d", e.Current, stats.Events)
		}
	}
	// Without --count the versions are estimates; they must follow the rows written since the
	// last ANALYZE or CREATE INDEX (the statistics catch up within seconds), not stay at zero
	// or at the count of the day the query indexes were built.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		est := startChild(t, o.env(), "status", "--json")
		if code := est.wait(60 * time.Second); code != 0 {
			t.Fatalf("status --json: exit %d", code)
		}
		var r statusReport
		if err := json.Unmarshal([]byte(est.stdout.String()), &r); err != nil {
			t.Fatalf("status --json: %v\n%s", err, est.stdout)
		}
		var off []string
		for _, e := range r.Entities {
			if e.Exact || e.Current != -1 {
				t.Fatalf("status without --count claims exact figures: %+v", e)
			}
			if want := counts[e.Table][0]; e.Versions < want*95/100 || e.Versions > want*105/100+2 {
				off = append(off, fmt.Sprintf("%s ~%d of %d", e.Type, e.Versions, want))
			}
		}
		if len(off) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status estimates still off by over 5%% after 30s: %v", off)
		}
	}
	table := startChild(t, o.env(), "status")
	if code := table.wait(60 * time.Second); code != 0 || !strings.Contains(table.stdout.String(), "indexed") {
		t.Errorf("status table: exit %d\n%s", code, table.stdout)
	}

	// 7. resync goes through the running indexer and leaves the same state. The command's own
	// RPC endpoint refuses connections: the running indexer has one, the command needs none.
	stats = traffic.Stats()
	rs := startChild(t, o.env("ECHAIN_RPC_HTTP_URL=http://127.0.0.1:1", "ECHAIN_RPC_WS_URL=ws://127.0.0.1:1"),
		"resync", "--from-block", strconv.FormatInt(num-10, 10))
	if code := rs.wait(90 * time.Second); code != 0 {
		t.Fatalf("resync: exit %d\n%s", code, rs.stderr)
	}
	if out := rs.stdout.String(); !strings.Contains(out, fmt.Sprintf("done, indexed %d of %d", num, num)) {
		t.Errorf("resync output lacks done at block %d:\n%s", num, out)
	}
	if strings.Contains(rs.stderr.String(), "level=WARN") {
		t.Errorf("resync through the running indexer warns:\n%s", grep(rs.stderr.String(), "level=WARN"))
	}
	if e, s := graphqlTotals(t, o.apiURL); e != stats.Events || s != stats.Tickets {
		t.Errorf("after resync: %d events, %d tickets; want %d, %d", e, s, stats.Events, stats.Tickets)
	}

	// 8. `serve`: an API replica of the same database answers the same and is ready; it does not index.
	rAPI, rMet := freePort(t), freePort(t)
	replica := startChild(t, o.env("ECHAIN_API_LISTEN="+rAPI, "ECHAIN_METRICS_LISTEN="+rMet), "serve")
	replica.waitFor(60*time.Second, "the replica to be ready", func() bool {
		code, _, _ := httpGet("http://" + rAPI + "/readyz")
		return code == 200
	})
	if e, s := graphqlTotals(t, "http://"+rAPI); e != stats.Events || s != stats.Tickets {
		t.Errorf("replica: %d events, %d tickets; want %d, %d", e, s, stats.Events, stats.Tickets)
	}
	if code, _, _ := httpGet("http://" + rMet + "/status"); code != http.StatusNotFound {
		t.Errorf("replica /status: %d, want 404 (it does not index)", code)
	}
	if m := scrape(t, "http://"+rMet); m["echain_indexer_blocks_indexed_total"] != 0 || m["echain_indexer_db_pool_max_connections"] == 0 {
		t.Errorf("replica metrics: blocks indexed %v, pool max %v", m["echain_indexer_blocks_indexed_total"], m["echain_indexer_db_pool_max_connections"])
	}
	if code, _ := replica.stop(syscall.SIGTERM, 20*time.Second); code != 0 {
		t.Errorf("replica SIGTERM: exit %d", code)
	}

	// 9. A second `run` on the same database stands by: it serves the API but does not index.
	sAPI, sMet := freePort(t), freePort(t)
	standby := startChild(t, o.env("ECHAIN_API_LISTEN="+sAPI, "ECHAIN_METRICS_LISTEN="+sMet), "run")
	standby.waitFor(60*time.Second, "the standby to report", func() bool {
		l, err := liveOf("http://" + sMet)
		return err == nil && l.Mode == "standby"
	})
	if l, _ := liveOf("http://" + sMet); l == nil || l.Leader {
		t.Errorf("second run process: %+v, want a standby", l)
	}
	if l, _ := liveOf(o.metricURL); l == nil || !l.Leader {
		t.Errorf("first run process lost the lead: %+v", l)
	}
	if e, _ := graphqlTotals(t, "http://"+sAPI); e != stats.Events {
		t.Errorf("standby API: %d events, want %d", e, stats.Events)
	}
	if code, _ := standby.stop(syscall.SIGTERM, 20*time.Second); code != 0 {
		t.Errorf("standby SIGTERM: exit %d", code)
	}

	// 10. SIGTERM in realtime: exit 0 well within shutdown_timeout, the cursor at the head, and
	// a subscriber's WebSocket closed with a going-away close frame.
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+o.apiAddr+"/graphql", http.Header{"Sec-WebSocket-Protocol": {"graphql-transport-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	if err := ws.WriteJSON(map[string]any{"type": "connection_init"}); err != nil {
		t.Fatal(err)
	}
	var ack struct{ Type string }
	if err := ws.ReadJSON(&ack); err != nil || ack.Type != "connection_ack" {
		t.Fatalf("connection_init: %v %+v", err, ack)
	}
	if err := ws.WriteJSON(map[string]any{"id": "1", "type": "subscribe",
		"payload": map[string]any{"query": "subscription { events(first: 1) { id } }"}}); err != nil {
		t.Fatal(err)
	}
	wsEnd := make(chan error, 1)
	go func() { // a live client: reads (and so answers the close frame) as it comes
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				wsEnd <- err
				return
			}
		}
	}()
	step(2)
	code, took = second.stop(syscall.SIGTERM, 20*time.Second)
	if code != 0 {
		t.Fatalf("SIGTERM in realtime: exit %d", code)
	}
	t.Logf("SIGTERM in realtime: exit 0 in %s", took.Round(time.Millisecond))
	if !strings.Contains(second.stderr.String(), "shutting down") {
		t.Errorf("no shutdown logged")
	}
	var closeErr *websocket.CloseError
	if err := <-wsEnd; !errors.As(err, &closeErr) || closeErr.Code != websocket.CloseGoingAway {
		t.Errorf("subscriber's WebSocket ended with %v, want a 1001 close frame", err)
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range scanLines(s) {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// entityCounts returns, per entity table, its versions and current rows.
func entityCounts(t *testing.T, db string) map[string][2]int64 {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	sch, err := schema.Load()
	if err != nil {
		t.Fatal(err)
	}
	layout, err := ddl.Build(sch)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][2]int64{}
	for _, tb := range layout.Tables {
		v, c, err := store.CountVersions(ctx, conn, tb)
		if err != nil {
			t.Fatal(err)
		}
		out[tb.Name] = [2]int64{v, c}
	}
	return out
}
