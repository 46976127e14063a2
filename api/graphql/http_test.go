package graphql

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/echain/echain-indexer/api/graphql/internal/gqltest"
	"github.com/echain/echain-indexer/schema"
	"github.com/echain/echain-indexer/store/ddl"
)

// smallStore is a store with a few hundred entities of the Echain schema.
func smallStore(t *testing.T) (*schema.Schema, *pgxpool.Pool) {
	t.Helper()
	sch, err := schema.Load()
	if err != nil {
		t.Fatal(err)
	}
	pool := gqltest.OpenDB(t, sch)
	if _, err := gqltest.LoadBulk(context.Background(), pool, sch, gqltest.Sizes{Events: 30, TicketsPerEvent: 10, Owners: 20, Organizers: 3, ExtraTransferPct: 20, TxsPerEvent: 3}); err != nil {
		t.Fatal(err)
	}
	return sch, pool
}

func newHandler(t *testing.T, sch *schema.Schema, pool *pgxpool.Pool, o Options) *Handler {
	t.Helper()
	h, err := NewHandler(pool, sch, o)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func wantCode(t *testing.T, r *gqltest.Response, status int, code, inMessage string) {
	t.Helper()
	if r.Status != status {
		t.Errorf("status %d, want %d: %s", r.Status, status, r.Raw)
	}
	if len(r.Errors) == 0 {
		t.Errorf("no error, want %s: %s", code, r.Raw)
		return
	}
	if code != "" && r.ErrorCodes()[0] != code {
		t.Errorf("error code %v, want %s: %s", r.ErrorCodes(), code, r.Raw)
	}
	if msg, _ := r.Errors[0]["message"].(string); !strings.Contains(msg, inMessage) {
		t.Errorf("error %q does not mention %q", msg, inMessage)
	}
}

// TestLimits checks that each limit refuses with a GraphQL error naming it.
func TestLimits(t *testing.T) {
	sch, pool := smallStore(t)
	h := newHandler(t, sch, pool, Options{MaxSkip: 50, MaxDepth: 4, MaxQueryBytes: 400, MaxResultEntities: 100})
	post := func(q string) *gqltest.Response { return gqltest.Post(t, h, q, nil) }

	wantCode(t, post(`{ events(first: 1001) { id } }`), 200, "LIMIT_FIRST", "between 0 and 1000")
	wantCode(t, post(`{ events(first: -1) { id } }`), 200, "LIMIT_FIRST", "`first`")
	wantCode(t, post(`{ events(skip: 51) { id } }`), 200, "LIMIT_SKIP", "between 0 and 50")
	wantCode(t, post(`{ event(id: "1") { tickets(first: 2000) { id } } }`), 200, "LIMIT_FIRST", "1000")
	wantCode(t, post(`{ tickets { event { tickets { event { id } } } } }`), 200, "LIMIT_DEPTH", "max_depth")
	wantCode(t, post(`{ events(first: 10) { id `+strings.Repeat("title ", 80)+` } }`), 200, "LIMIT_QUERY_SIZE", "max_query_bytes")
	wantCode(t, post(`{ events(first: 20) { tickets(first: 10) { id } } }`), 200, "LIMIT_RESULT_ENTITIES", "max_result_entities")
	// within every limit
	if r := post(`{ events(first: 5, skip: 50) { id tickets(first: 5) { id } } }`); len(r.Errors) > 0 {
		t.Fatalf("a query within the limits failed: %s", r.Raw)
	}
}

// TestStatementTimeoutAndConcurrency holds a lock so that queries wait inside PostgreSQL: one
// with a short statement timeout fails naming the limit; while a query holds the only slot, the
// next one is refused with 503, and the first still completes.
func TestStatementTimeoutAndConcurrency(t *testing.T) {
	sch, pool := smallStore(t)
	ctx := context.Background()
	lock := func() func() {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "LOCK TABLE "+ddl.TableName(sch.Type("Event"))+" IN ACCESS EXCLUSIVE MODE"); err != nil {
			t.Fatal(err)
		}
		return func() { _ = tx.Rollback(ctx) }
	}

	h := newHandler(t, sch, pool, Options{StatementTimeout: 200 * time.Millisecond})
	unlock := lock()
	wantCode(t, gqltest.Post(t, h, `{ events { id } }`, nil), 200, "LIMIT_STATEMENT_TIMEOUT", "statement timeout")
	unlock()
	if r := gqltest.Post(t, h, `{ events(first: 1) { id } }`, nil); len(r.Errors) > 0 {
		t.Fatalf("after a timeout the next query fails: %s", r.Raw)
	}

	h = newHandler(t, sch, pool, Options{MaxConcurrent: 1, QueueTimeout: 100 * time.Millisecond, Registerer: prometheus.NewRegistry()})
	unlock = lock()
	var wg sync.WaitGroup
	var first *gqltest.Response
	wg.Add(1)
	go func() {
		defer wg.Done()
		first = gqltest.Post(t, h, `{ events(first: 3) { id } }`, nil)
	}()
	time.Sleep(300 * time.Millisecond) // the first query now waits for the lock, holding the slot
	r := gqltest.Post(t, h, `{ _meta { deployment } }`, nil)
	wantCode(t, r, 503, "LIMIT_CONCURRENT_QUERIES", "max_concurrent")
	if r.Header.Get("Retry-After") == "" {
		t.Error("a refused query should carry Retry-After")
	}
	unlock()
	wg.Wait()
	if len(first.Errors) > 0 || len(first.Data["events"].([]any)) != 3 {
		t.Fatalf("the query holding the slot should complete once the lock is gone: %s", first.Raw)
	}
}

// TestBadInput sends malformed requests: each gets a GraphQL error and the right status, and
// the server keeps answering.
func TestBadInput(t *testing.T) {
	sch, pool := smallStore(t)
	h := newHandler(t, sch, pool, Options{MaxBodyBytes: 4096})
	raw := func(method, body, ctype string) *gqltest.Response {
		req := httptest.NewRequest(method, "/graphql", strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		return gqltest.Do(t, h, req)
	}
	wantCode(t, raw("POST", `{"query": `, "application/json"), 400, "BAD_REQUEST", "not a valid GraphQL request")
	wantCode(t, raw("POST", ``, "application/json"), 400, "BAD_REQUEST", "empty")
	wantCode(t, raw("POST", `{"variables": {}}`, "application/json"), 400, "BAD_REQUEST", "no query")
	wantCode(t, raw("POST", `[{"query": "{ events { id } }"}]`, "application/json"), 400, "BAD_REQUEST", "batched")
	wantCode(t, raw("POST", `{"query": "{ events { id } }", "variables": [1]}`, "application/json"), 400, "BAD_REQUEST", "variables")
	wantCode(t, raw("POST", `{"query": "`+strings.Repeat("x", 5000)+`"}`, "application/json"), 413, "BAD_REQUEST", "max_body_bytes")
	wantCode(t, raw("PUT", `{}`, "application/json"), 405, "BAD_REQUEST", "PUT")

	post := func(q string, vars map[string]any) *gqltest.Response { return gqltest.Post(t, h, q, vars) }
	wantCode(t, post(`{ events { id nope } }`, nil), 200, "", `Cannot query field "nope"`)
	wantCode(t, post(`{ events(first: "ten") { id } }`, nil), 200, "", "Int")
	wantCode(t, post(`{ events(orderBy: nope) { id } }`, nil), 200, "", "nope")
	wantCode(t, post(`{ events(where: {nope: 1}) { id } }`, nil), 200, "", "nope")
	wantCode(t, post(`{ events { id `, nil), 200, "", "syntax error")
	wantCode(t, post(`query($f: Int) { events(first: $f) { id } }`, map[string]any{"f": "x"}), 200, "", "")
	wantCode(t, post(`{ events(where: {ticketPrice_gt: "12abc"}) { id } }`, nil), 200, "BAD_FILTER", "BigInt")
	wantCode(t, post(`{ tickets(where: {owner: "0xzz"}) { id } }`, nil), 200, "BAD_FILTER", "Bytes")
	wantCode(t, post(`{ tickets(where: {owner: "0xabc"}) { id } }`, nil), 200, "BAD_FILTER", "even number")
	wantCode(t, post(`query($w: Ticket_filter) { tickets(where: $w) { id } }`, map[string]any{"w": map[string]any{"tokenId_in": []any{"1", nil}}}), 200, "", "")
	wantCode(t, post(`{ events(where: {ticketPrice_gt: null}) { id } }`, nil), 200, "BAD_FILTER", "null")
	wantCode(t, post(`{ events(orderBy: tickets) { id } }`, nil), 200, "BAD_ORDER_BY", "derived")
	wantCode(t, post(`subscription { events { id } }`, nil), 200, "BAD_REQUEST", "WebSocket")

	// Filter values are parameters: SQL in a value is just an odd title.
	r := post(`{ events(where: {title: "x'; DROP TABLE entities.event; --", title_contains: "'||pg_sleep(5)||'"}) { id } }`, nil)
	if len(r.Errors) > 0 || len(r.Data["events"].([]any)) != 0 {
		t.Fatalf("SQL in a filter value: %s", r.Raw)
	}
	if r := post(`{ events(first: 1) { id } }`, nil); len(r.Errors) > 0 || len(r.Data["events"].([]any)) != 1 {
		t.Fatalf("the server should still answer: %s", r.Raw)
	}
}

// TestHTTP covers GET, GraphiQL, CORS, gzip and the metrics.
func TestHTTP(t *testing.T) {
	sch, pool := smallStore(t)
	reg := prometheus.NewRegistry()
	h := newHandler(t, sch, pool, Options{Registerer: reg, Deployment: "echain-test"})

	// GET with a query string
	q := url.Values{"query": {`query Q($n: Int) { events(first: $n) { id } _meta { deployment } }`}, "variables": {`{"n": 2}`}}
	r := gqltest.Do(t, h, httptest.NewRequest("GET", "/subgraphs/name/echain?"+q.Encode(), nil))
	if r.Status != 200 || len(r.Data["events"].([]any)) != 2 || r.Data["_meta"].(map[string]any)["deployment"] != "echain-test" {
		t.Fatalf("GET: %d %s", r.Status, r.Raw)
	}
	// application/graphql body
	req := httptest.NewRequest("POST", "/graphql", strings.NewReader(`{ events(first: 1) { id } }`))
	req.Header.Set("Content-Type", "application/graphql")
	if r := gqltest.Do(t, h, req); r.Status != 200 || len(r.Data["events"].([]any)) != 1 {
		t.Fatalf("application/graphql: %s", r.Raw)
	}

	// GraphiQL from the binary
	rec := httptest.NewRecorder()
	req = httptest.NewRequest("GET", "/graphql", nil)
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	h.ServeHTTP(rec, req)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "GraphiQL") || strings.Contains(rec.Body.String(), "https://") {
		t.Fatalf("GraphiQL page: %d %.300s", rec.Code, rec.Body.String())
	}
	// Subscriptions run from GraphiQL over the WebSocket at the same path.
	if !strings.Contains(rec.Body.String(), "subscriptionUrl: wsURL") {
		t.Errorf("GraphiQL is not given the WebSocket subscriptionUrl: %s", rec.Body.String())
	}
	for _, asset := range []string{"graphiql.min.js", "graphiql.min.css", "react.production.min.js", "react-dom.production.min.js"} {
		rec = httptest.NewRecorder()
		req = httptest.NewRequest("GET", "/graphql?asset="+asset, nil)
		h.ServeHTTP(rec, req) // no gzip: served decompressed
		if rec.Code != 200 || rec.Body.Len() < 1000 || rec.Header().Get("Content-Encoding") != "" {
			t.Fatalf("asset %s: %d, %d bytes", asset, rec.Code, rec.Body.Len())
		}
		plain := rec.Body.Bytes()
		rec = httptest.NewRecorder()
		req.Header.Set("Accept-Encoding", "gzip")
		h.ServeHTTP(rec, req)
		zr, err := gzip.NewReader(rec.Body)
		if err != nil || rec.Header().Get("Content-Encoding") != "gzip" {
			t.Fatalf("asset %s gzip: %v %v", asset, err, rec.Header())
		}
		if b, _ := io.ReadAll(zr); !bytes.Equal(b, plain) {
			t.Fatalf("asset %s: gzip and plain differ", asset)
		}
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/graphql?asset=../../etc/passwd", nil))
	if rec.Code != 404 {
		t.Fatalf("unknown asset: %d", rec.Code)
	}

	// gzip of a large response
	req = httptest.NewRequest("POST", "/graphql", strings.NewReader(`{"query": "{ tickets(first: 200) { id owner tokenId } }"}`))
	req.Header.Set("Accept-Encoding", "gzip, deflate")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("large response not gzipped: %v", rec.Header())
	}
	zr, err := gzip.NewReader(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ Data struct{ Tickets []any } }
	if err := json.NewDecoder(zr).Decode(&body); err != nil || len(body.Data.Tickets) != 200 {
		t.Fatalf("gzipped response: %v, %d tickets", err, len(body.Data.Tickets))
	}

	// CORS: any origin by default
	req = httptest.NewRequest("OPTIONS", "/graphql", nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type,apollo-require-preflight")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 204 || rec.Header().Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(rec.Header().Get("Access-Control-Allow-Headers"), "apollo-require-preflight") {
		t.Fatalf("preflight: %d %v", rec.Code, rec.Header())
	}
	// configured origins
	hc := newHandler(t, sch, pool, Options{CORSOrigins: []string{"https://app.example"}})
	for origin, allowed := range map[string]bool{"https://app.example": true, "https://evil.example": false} {
		req = httptest.NewRequest("POST", "/graphql", strings.NewReader(`{"query": "{ _meta { deployment } }"}`))
		req.Header.Set("Origin", origin)
		rec = httptest.NewRecorder()
		hc.ServeHTTP(rec, req)
		if got := rec.Header().Get("Access-Control-Allow-Origin"); (got == origin) != allowed {
			t.Fatalf("origin %s: Access-Control-Allow-Origin %q", origin, got)
		}
	}
	// CORS off
	ho := newHandler(t, sch, pool, Options{CORSOrigins: []string{}})
	rec = httptest.NewRecorder()
	req = httptest.NewRequest("POST", "/graphql", strings.NewReader(`{"query": "{ _meta { deployment } }"}`))
	req.Header.Set("Origin", "https://app.example")
	ho.ServeHTTP(rec, req)
	if rec.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("CORS disabled but headers sent")
	}

	// metrics: requests and errors by operation
	gqltest.Post(t, h, `query Broken { events(first: 5000) { id } }`, nil)
	if n := metricValue(t, reg, "echain_indexer_graphql_requests_total", map[string]string{"operation": "Q"}); n != 1 {
		t.Errorf("requests_total{operation=Q} = %v", n)
	}
	if n := metricValue(t, reg, "echain_indexer_graphql_errors_total", map[string]string{"operation": "Broken", "code": "LIMIT_FIRST"}); n != 1 {
		t.Errorf("errors_total{operation=Broken,code=LIMIT_FIRST} = %v", n)
	}
	if n := metricValue(t, reg, "echain_indexer_graphql_request_duration_seconds", map[string]string{"operation": "Broken"}); n != 1 {
		t.Errorf("request_duration_seconds{operation=Broken} has %v samples", n)
	}
}

// metricValue sums a counter's value (a histogram's sample count) over the series whose labels
// include want.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
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
	series:
		for _, m := range mf.GetMetric() {
			for k, v := range want {
				found := false
				for _, l := range m.GetLabel() {
					if l.GetName() == k && l.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue series
				}
			}
			if m.Histogram != nil {
				sum += float64(m.Histogram.GetSampleCount())
			} else {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// TestBoundedStatements checks that the number of SQL statements of a nested query depends on
// its shape, not on how many rows each level has.
func TestBoundedStatements(t *testing.T) {
	sch, pool := smallStore(t)
	h := newHandler(t, sch, pool, Options{})
	count := func(first int) int {
		res := h.Engine().Execute(context.Background(), Request{Query: `query($n: Int) {
  events(first: $n) { id organizer { id events { id } } tickets { id event { id } transfers { id ticket { id } } } transactions { id } }
}`, Variables: map[string]any{"n": float64(first)}}, ExecOptions{})
		if len(res.Errors) > 0 {
			t.Fatalf("%v", res.Errors)
		}
		return res.Statements
	}
	one, many := count(1), count(30)
	// BEGIN + cursor + events with their organizer and tickets, then one statement per relation
	// level: transactions, organizer.events, tickets.event, transfers, transfers.ticket.
	if one != many || many != 8 {
		t.Fatalf("statements for 1 event: %d, for 30 events: %d; want 8 for both", one, many)
	}
}

// TestSubscriptionOperation runs a subscription operation through Execute: it is answered like
// the query with the same selection, and Subscription is in the schema for introspection.
func TestSubscriptionOperation(t *testing.T) {
	sch, pool := smallStore(t)
	h := newHandler(t, sch, pool, Options{})
	res := h.Engine().Execute(context.Background(), Request{Query: "# live\nsubscription Live($n: Int) { events(first: $n) { id } }",
		Variables: map[string]any{"n": float64(2)}}, ExecOptions{})
	if len(res.Errors) > 0 || !strings.Contains(string(res.Data), `"events":[{"id"`) {
		t.Fatalf("subscription: %s", res.JSON())
	}
	res = h.Engine().Execute(context.Background(), Request{Query: "subscription { events { nope } }"}, ExecOptions{})
	if len(res.Errors) != 1 || res.Errors[0].Locations[0].Column != 25 {
		t.Fatalf("validation error of a subscription should point into the client's text: %s", res.JSON())
	}
	r := gqltest.Post(t, h, `{ __schema { subscriptionType { name fields { name } } queryType { name } } }`, nil)
	if !strings.Contains(string(r.Raw), `"subscriptionType":{"name":"Subscription"`) || !strings.Contains(string(r.Raw), `"name":"_meta"`) {
		t.Fatalf("introspection: %s", r.Raw)
	}
}
