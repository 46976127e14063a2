package subscriptions_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/echain/echain-indexer/api"
	"github.com/echain/echain-indexer/api/graphql"
	"github.com/echain/echain-indexer/api/subscriptions"
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

func testLogger() *slog.Logger {
	if os.Getenv("ECHAIN_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// replica is one API process's worth of serving: a query engine and a subscription server on a
// pool of its own, behind the real api server.
type replica struct {
	srv  *subscriptions.Server
	http *api.Server
	reg  *prometheus.Registry
	url  string // ws://host:port/graphql
	pool *pgxpool.Pool
}

// startReplica serves subscriptions over the database at dbURL until the test ends.
func startReplica(t testing.TB, dbURL string, sch *schema.Schema, opts subscriptions.Options) *replica {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	log := testLogger()
	reg := prometheus.NewRegistry()
	gql, err := graphql.NewHandler(pool, sch, graphql.Options{Logger: log, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	opts.Logger, opts.Registerer = log, reg
	srv, err := subscriptions.New(pool, gql.Engine(), opts)
	if err != nil {
		t.Fatal(err)
	}
	hs, err := api.Listen(api.Options{Listen: "127.0.0.1:0", GraphQL: gql, Subscriptions: srv,
		OnShutdown: []func(context.Context) error{srv.Shutdown}, Log: log, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = hs.Serve() }()
	go func() {
		defer wg.Done()
		if err := srv.Run(ctx); err != nil {
			t.Errorf("subscriptions Run: %v", err)
		}
	}()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		if err := hs.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		cancel()
		wg.Wait()
		pool.Close()
	})
	r := &replica{srv: srv, http: hs, reg: reg, url: "ws://" + hs.Addr() + api.PathGraphQL, pool: pool}
	waitFor(t, "the change feed", patience, func() bool { return r.metric("echain_indexer_subscriptions_feed_connected") == 1 })
	return r
}

// metric sums a metric's samples (all label values).
func (r *replica) metric(name string, labels ...string) float64 {
	mfs, err := r.reg.Gather()
	if err != nil {
		return -1
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				if labelValue(m, labels[i]) != labels[i+1] {
					continue next
				}
			}
			switch {
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Histogram != nil:
				sum += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return sum
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// chainWriter commits synthetic blocks straight through the store (the writer the follower
// uses), for tests that need exact control over what each block changes.
type chainWriter struct {
	t      testing.TB
	st     *store.Store
	sch    *schema.Schema
	blocks []store.BlockPtr // canonical, ascending
	branch int
}

func openStore(t testing.TB) (*store.Store, *schema.Schema, string) {
	t.Helper()
	sch, err := schema.Load()
	if err != nil {
		t.Fatal(err)
	}
	url := storetest.NewDB(t)
	st, err := store.Open(context.Background(), url, sch, store.Options{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st, sch, url
}

// commit writes one block with the given entities ({type: {id: fields}}) and returns it.
func (w *chainWriter) commit(ents map[string]map[string]map[string]any) store.BlockPtr {
	w.t.Helper()
	n := int64(1)
	parent := common.Hash{}
	if len(w.blocks) > 0 {
		last := w.blocks[len(w.blocks)-1]
		n, parent = last.Number+1, last.Hash
	}
	ptr := store.BlockPtr{Number: n, ParentHash: parent, Timestamp: 1_700_000_000 + n*2,
		Hash: crypto.Keccak256Hash([]byte(fmt.Sprintf("block %d branch %d", n, w.branch)))}
	b := w.st.NewBatch()
	b.StartBlock(ptr)
	for typ, byID := range ents {
		for id, vals := range byID {
			b.Set(typ, entityRow(w.t, w.sch, typ, id, vals))
		}
	}
	if err := w.st.Commit(context.Background(), b, store.Commit{Head: ptr, Window: []store.BlockPtr{ptr}, Finalized: 0}); err != nil {
		w.t.Fatal(err)
	}
	w.blocks = append(w.blocks, ptr)
	return ptr
}

// revertTo undoes every block above n; later blocks form a new branch.
func (w *chainWriter) revertTo(n int64) store.BlockPtr {
	w.t.Helper()
	to := w.blocks[n-1]
	if err := w.st.RevertTo(context.Background(), to); err != nil {
		w.t.Fatal(err)
	}
	w.blocks = w.blocks[:n]
	w.branch++
	return to
}

// entityRow builds a complete row of typ: fields not given take a zero value of their kind.
func entityRow(t testing.TB, sch *schema.Schema, typ, id string, vals map[string]any) []any {
	t.Helper()
	et := sch.Type(typ)
	if et == nil {
		t.Fatalf("no entity type %s", typ)
	}
	row := make([]any, len(et.Columns))
	for i, f := range et.Columns {
		if v, ok := vals[f.Name]; ok {
			row[i] = v
			continue
		}
		if i == 0 {
			row[i] = id
			continue
		}
		if !f.NonNull {
			continue
		}
		if f.List {
			row[i] = []any{}
			continue
		}
		switch f.Kind {
		case schema.KindBoolean:
			row[i] = false
		case schema.KindInt:
			row[i] = int32(0)
		case schema.KindInt8, schema.KindTimestamp:
			row[i] = int64(0)
		case schema.KindBigInt:
			row[i] = big.NewInt(0)
		case schema.KindBigDecimal:
			row[i] = "0"
		case schema.KindBytes:
			row[i] = []byte{}
		default:
			row[i] = ""
		}
	}
	return row
}

func event(id string, sold int64) map[string]map[string]map[string]any {
	return map[string]map[string]map[string]any{"Event": {id: {"title": "Event " + id, "ticketsSold": big.NewInt(sold)}}}
}

// wsClient is a raw protocol client: every frame is visible to the test.
type wsClient struct {
	t    testing.TB
	ws   *websocket.Conn
	msgs chan wsMsg
	done chan struct{}
	err  error // why the read loop ended (a *websocket.CloseError for a close frame)
}

type wsMsg struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

// result is a next/data payload.
type result struct {
	Data       json.RawMessage `json:"data"`
	Errors     []wireErr       `json:"errors"`
	Extensions struct {
		Block *struct {
			Number int64  `json:"number"`
			Hash   string `json:"hash"`
		} `json:"block"`
	} `json:"extensions"`
}

type wireErr struct {
	Message    string         `json:"message"`
	Extensions map[string]any `json:"extensions"`
}

func dial(t testing.TB, url, proto string) *wsClient {
	t.Helper()
	c := dialIdle(t, url, proto)
	c.startReading()
	return c
}

// dialIdle connects without reading yet (set handlers first, then startReading).
func dialIdle(t testing.TB, url, proto string) *wsClient {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{proto}, HandshakeTimeout: 5 * time.Second}
	ws, resp, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	resp.Body.Close()
	if ws.Subprotocol() != proto {
		t.Fatalf("subprotocol %q, want %q", ws.Subprotocol(), proto)
	}
	return newClient(t, ws, false)
}

func newClient(t testing.TB, ws *websocket.Conn, read bool) *wsClient {
	c := &wsClient{t: t, ws: ws, msgs: make(chan wsMsg, 1024), done: make(chan struct{})}
	t.Cleanup(func() { ws.Close() })
	if read {
		c.startReading()
	}
	return c
}

// startReading starts the loop that hands every message to c.msgs.
func (c *wsClient) startReading() {
	ws := c.ws
	go func() {
		defer close(c.done)
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				c.err = err
				return
			}
			var m wsMsg
			if err := json.Unmarshal(data, &m); err != nil {
				c.err = fmt.Errorf("bad message %s: %w", data, err)
				return
			}
			c.msgs <- m
		}
	}()
}

func (c *wsClient) send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		c.t.Fatalf("send %s: %v", b, err)
	}
}

func (c *wsClient) sendRaw(s string) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Fatalf("send %s: %v", s, err)
	}
}

// next returns the next message, skipping keep-alives; it fails the test after d.
func (c *wsClient) next(d time.Duration) wsMsg {
	c.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case m := <-c.msgs:
			if m.Type == "ka" {
				continue
			}
			return m
		case <-c.done:
			c.t.Fatalf("connection ended while waiting for a message: %v", c.err)
		case <-deadline:
			c.t.Fatalf("no message within %v", d)
		}
	}
}

// expect reads the next message and checks its type (and id when not empty).
func (c *wsClient) expect(typ, id string) wsMsg {
	c.t.Helper()
	m := c.next(patience)
	if m.Type != typ || (id != "" && m.ID != id) {
		c.t.Fatalf("got %s id=%q payload=%s, want %s id=%q", m.Type, m.ID, m.Payload, typ, id)
	}
	return m
}

// quiet asserts that no message (keep-alives aside) arrives within d.
func (c *wsClient) quiet(d time.Duration) {
	c.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case m := <-c.msgs:
			if m.Type == "ka" {
				continue
			}
			c.t.Fatalf("unexpected %s id=%q payload=%s", m.Type, m.ID, m.Payload)
		case <-c.done:
			c.t.Fatalf("connection ended: %v", c.err)
		case <-deadline:
			return
		}
	}
}

// closed waits for the server's close frame and returns its code and reason.
func (c *wsClient) closed(d time.Duration) (int, string) {
	c.t.Helper()
	select {
	case <-c.done:
	case <-time.After(d):
		c.t.Fatalf("connection still open after %v", d)
	}
	var ce *websocket.CloseError
	if !errors.As(c.err, &ce) {
		c.t.Fatalf("connection ended without a close frame: %v", c.err)
	}
	return ce.Code, ce.Text
}

func (c *wsClient) expectClose(code int) string {
	c.t.Helper()
	got, reason := c.closed(patience)
	if got != code {
		c.t.Fatalf("closed with %d %q, want %d", got, reason, code)
	}
	return reason
}

// initTransport does connection_init/ack on graphql-transport-ws.
func (c *wsClient) initTransport() {
	c.t.Helper()
	c.send(map[string]any{"type": "connection_init"})
	c.expect("connection_ack", "")
}

func (c *wsClient) initLegacy() {
	c.t.Helper()
	c.send(map[string]any{"type": "connection_init", "payload": map[string]any{}})
	c.expect("connection_ack", "")
}

func (c *wsClient) subscribe(id, query string, vars map[string]any) {
	c.t.Helper()
	c.send(map[string]any{"id": id, "type": "subscribe", "payload": map[string]any{"query": query, "variables": vars}})
}

func (c *wsClient) start(id, query string, vars map[string]any) {
	c.t.Helper()
	c.send(map[string]any{"id": id, "type": "start", "payload": map[string]any{"query": query, "variables": vars}})
}

func decodeResult(t testing.TB, m wsMsg) result {
	t.Helper()
	var r result
	if err := json.Unmarshal(m.Payload, &r); err != nil {
		t.Fatalf("payload %s: %v", m.Payload, err)
	}
	return r
}

// expectResult reads the next result and checks its data (compact JSON) and block number.
func (c *wsClient) expectResult(typ, id, data string, block int64) result {
	c.t.Helper()
	m := c.expect(typ, id)
	r := decodeResult(c.t, m)
	if len(r.Errors) > 0 {
		c.t.Fatalf("result has errors: %s", m.Payload)
	}
	if data != "" && compact(c.t, r.Data) != compact(c.t, json.RawMessage(data)) {
		c.t.Fatalf("data %s, want %s", r.Data, data)
	}
	if r.Extensions.Block == nil || r.Extensions.Block.Number != block {
		c.t.Fatalf("result of block %+v, want block %d (%s)", r.Extensions.Block, block, m.Payload)
	}
	return r
}

func compact(t testing.TB, raw json.RawMessage) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("json %s: %v", raw, err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// patience bounds every wait for something that must happen: it only decides how long a broken
// build takes to fail. CI runs every package at once on two busy cores, where a leader failover or
// a push can take seconds; a wait sized for a quiet machine fails there.
const patience = 90 * time.Second

func waitFor(t testing.TB, what string, d time.Duration, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("timed out after %v waiting for %s", d, what)
}

// smallReadBuffer dials with a tiny receive buffer, so that a client that stops reading fills
// the path to it quickly.
func smallReadBuffer(t testing.TB, url, proto string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{proto}, NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		_ = c.(*net.TCPConn).SetReadBuffer(4096)
		return c, nil
	}}
	ws, resp, err := d.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return ws
}

func isHTTPStatus(err error, code int) bool {
	return err != nil && strings.Contains(err.Error(), http.StatusText(code))
}
