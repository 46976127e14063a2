package subscriptions_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/echain/echain-indexer/api/subscriptions"
)

const eventQuery = `subscription { event(id: "1") { id ticketsSold } }`

// The graphql-transport-ws life of one subscription: the current result at once, a result per
// block that changes it (naming that block), nothing for blocks that do not, nothing after
// complete.
func TestTransportWSPushesChangedResultsOnly(t *testing.T) {
	st, sch, url := openStore(t)
	w := &chainWriter{t: t, st: st, sch: sch}
	w.commit(event("1", 0))
	r := startReplica(t, url, sch, subscriptions.Options{})

	c := dial(t, r.url, subscriptions.ProtoTransportWS)
	c.initTransport()
	c.send(map[string]any{"type": "ping", "payload": map[string]any{"n": 7}})
	if m := c.expect("pong", ""); compact(t, m.Payload) != `{"n":7}` {
		t.Fatalf("pong payload %s", m.Payload)
	}
	c.subscribe("a", eventQuery, nil)
	first := c.expectResult("next", "a", `{"event":{"id":"1","ticketsSold":"0"}}`, 1)
	if first.Extensions.Block.Hash != w.blocks[0].Hash.Hex() {
		t.Fatalf("block hash %s, want %s", first.Extensions.Block.Hash, w.blocks[0].Hash.Hex())
	}

	w.commit(event("1", 1))
	c.expectResult("next", "a", `{"event":{"id":"1","ticketsSold":"1"}}`, 2)

	// Another event changes: event 1's subscription does not even run.
	runs := r.metric("echain_indexer_subscriptions_executions_total")
	w.commit(event("2", 9))
	c.quiet(300 * time.Millisecond)
	if got := r.metric("echain_indexer_subscriptions_executions_total"); got != runs {
		t.Fatalf("a change of event 2 executed event 1's subscription (%v -> %v executions)", runs, got)
	}
	// Event 1 is written again with the same values: it runs, the result is the same, nothing is sent.
	w.commit(event("1", 1))
	waitFor(t, "the unchanged execution", patience, func() bool {
		return r.metric("echain_indexer_subscriptions_executions_total", "result", "unchanged") >= 1
	})
	c.quiet(200 * time.Millisecond)

	w.commit(event("1", 5))
	c.expectResult("next", "a", `{"event":{"id":"1","ticketsSold":"5"}}`, 5)

	c.send(map[string]any{"id": "a", "type": "complete"})
	waitFor(t, "the subscription to end", patience, func() bool {
		return r.metric("echain_indexer_subscriptions_active") == 0
	})
	w.commit(event("1", 6))
	c.quiet(300 * time.Millisecond)
	// The id is free again.
	c.subscribe("a", eventQuery, nil)
	c.expectResult("next", "a", `{"event":{"id":"1","ticketsSold":"6"}}`, 6)
}

// A revert pushes the state of the block the store went back to; the new branch's blocks
// then carry their own hashes.
func TestRevertPushesCorrectedResult(t *testing.T) {
	st, sch, url := openStore(t)
	w := &chainWriter{t: t, st: st, sch: sch}
	w.commit(event("1", 0))
	r := startReplica(t, url, sch, subscriptions.Options{})
	c := dial(t, r.url, subscriptions.ProtoTransportWS)
	c.initTransport()
	c.subscribe("x", `subscription { events(where: {ticketsSold_gt: "0"}) { id ticketsSold } }`, nil)
	c.expectResult("next", "x", `{"events":[]}`, 1)
	old := w.commit(event("1", 2))
	c.expectResult("next", "x", `{"events":[{"id":"1","ticketsSold":"2"}]}`, 2)

	to := w.revertTo(1)
	back := c.expectResult("next", "x", `{"events":[]}`, 1)
	if back.Extensions.Block.Hash != to.Hash.Hex() {
		t.Fatalf("revert result names %s, want the ancestor %s", back.Extensions.Block.Hash, to.Hash.Hex())
	}
	nb := w.commit(event("1", 3))
	got := c.expectResult("next", "x", `{"events":[{"id":"1","ticketsSold":"3"}]}`, 2)
	if got.Extensions.Block.Hash != nb.Hash.Hex() || nb.Hash == old.Hash {
		t.Fatalf("new branch result names %s, want %s (old branch %s)", got.Extensions.Block.Hash, nb.Hash.Hex(), old.Hash.Hex())
	}
}

func TestTransportWSProtocolViolations(t *testing.T) {
	st, sch, url := openStore(t)
	w := &chainWriter{t: t, st: st, sch: sch}
	w.commit(event("1", 0))
	r := startReplica(t, url, sch, subscriptions.Options{
		InitTimeout: 3 * time.Second,
		Authorize: func(_ *http.Request, payload json.RawMessage) error {
			var p struct{ Token string }
			_ = json.Unmarshal(payload, &p)
			if p.Token == "bad" {
				return errors.New("bad token")
			}
			return nil
		},
	})
	tr := subscriptions.ProtoTransportWS
	cases := []struct {
		name string
		code int
		run  func(c *wsClient)
	}{
		{"init timeout", subscriptions.CloseInitTimeout, func(c *wsClient) {}},
		{"invalid JSON", subscriptions.CloseBadRequest, func(c *wsClient) { c.sendRaw(`{"type":`) }},
		{"unknown type", subscriptions.CloseBadRequest, func(c *wsClient) { c.initTransport(); c.send(map[string]any{"type": "hello"}) }},
		{"next from the client", subscriptions.CloseBadRequest, func(c *wsClient) {
			c.initTransport()
			c.send(map[string]any{"id": "1", "type": "next", "payload": map[string]any{}})
		}},
		{"subscribe without a query", subscriptions.CloseBadRequest, func(c *wsClient) {
			c.initTransport()
			c.send(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{}})
		}},
		{"subscribe before ack", subscriptions.CloseUnauthorized, func(c *wsClient) { c.subscribe("1", eventQuery, nil) }},
		{"second init", subscriptions.CloseTooManyInitRequest, func(c *wsClient) {
			c.initTransport()
			c.send(map[string]any{"type": "connection_init"})
		}},
		{"duplicate id", subscriptions.CloseSubscriberExists, func(c *wsClient) {
			c.initTransport()
			c.subscribe("dup", eventQuery, nil)
			c.expect("next", "dup")
			c.subscribe("dup", eventQuery, nil)
		}},
		{"refused by Authorize", subscriptions.CloseForbidden, func(c *wsClient) {
			c.send(map[string]any{"type": "connection_init", "payload": map[string]any{"token": "bad"}})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, r.url, tr)
			c.t = t
			tc.run(c)
			reason := c.expectClose(tc.code)
			t.Logf("closed %d %q", tc.code, reason)
		})
	}

	t.Run("no supported subprotocol", func(t *testing.T) {
		d := websocket.Dialer{Subprotocols: []string{"mqtt"}}
		ws, resp, err := d.Dial(r.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		c := newClient(t, ws, true)
		c.expectClose(subscriptions.CloseSubprotocol)
	})

	// Bad subscriptions are refused one by one; the connection stays.
	t.Run("operation errors", func(t *testing.T) {
		c := dial(t, r.url, tr)
		c.initTransport()
		refused := func(id, query, code string) {
			t.Helper()
			c.subscribe(id, query, nil)
			m := c.expect("error", id)
			var errs []wireErr
			if err := json.Unmarshal(m.Payload, &errs); err != nil || len(errs) == 0 {
				t.Fatalf("error payload %s", m.Payload)
			}
			if errs[0].Extensions["code"] != code {
				t.Fatalf("%s: code %v (%s), want %s", query, errs[0].Extensions["code"], errs[0].Message, code)
			}
		}
		refused("1", `subscription { event(id: "1") { nope } }`, "GRAPHQL_VALIDATION")
		refused("2", `query { event(id: "1") { id } }`, "NOT_A_SUBSCRIPTION")
		refused("3", `subscription { event(id: "1") { id } events { id } }`, "GRAPHQL_VALIDATION") // one root field
		refused("4", `subscription($id: ID!) { event(id: $id) { id } }`, "GRAPHQL_VALIDATION")     // missing variable
		// After all that, the same id works.
		c.subscribe("1", eventQuery, nil)
		c.expectResult("next", "1", `{"event":{"id":"1","ticketsSold":"0"}}`, 1)
	})
}

func TestLegacyProtocol(t *testing.T) {
	st, sch, url := openStore(t)
	w := &chainWriter{t: t, st: st, sch: sch}
	w.commit(event("1", 0))
	r := startReplica(t, url, sch, subscriptions.Options{InitTimeout: 3 * time.Second})
	lg := subscriptions.ProtoLegacyWS

	c := dial(t, r.url, lg)
	c.send(map[string]any{"type": "connection_init", "payload": map[string]any{}})
	c.expect("connection_ack", "")
	if m := <-c.msgs; m.Type != "ka" {
		t.Fatalf("after the ack: %s, want ka", m.Type)
	}
	c.sendRaw(`not json`)
	if m := c.expect("error", ""); !strings.Contains(string(m.Payload), "JSON") {
		t.Fatalf("error payload %s", m.Payload)
	}
	c.send(map[string]any{"id": "9", "type": "subscribe"}) // the new protocol's word: unknown here
	c.expect("error", "9")

	c.start("1", eventQuery, nil)
	c.expectResult("data", "1", `{"event":{"id":"1","ticketsSold":"0"}}`, 1)
	w.commit(event("1", 4))
	c.expectResult("data", "1", `{"event":{"id":"1","ticketsSold":"4"}}`, 2)
	c.start("2", `subscription { event(id: "1") { nope } }`, nil)
	c.expect("error", "2")
	c.send(map[string]any{"id": "1", "type": "stop"})
	c.expect("complete", "1")
	w.commit(event("1", 5))
	c.quiet(300 * time.Millisecond)
	c.send(map[string]any{"type": "connection_terminate"})
	c.expectClose(websocket.CloseNormalClosure)

	t.Run("start before init", func(t *testing.T) {
		c := dial(t, r.url, lg)
		c.start("1", eventQuery, nil)
		c.expect("error", "1")
	})
	t.Run("init timeout", func(t *testing.T) {
		c := dial(t, r.url, lg)
		c.expect("connection_error", "")
		c.expectClose(subscriptions.CloseInitTimeout)
	})
}

func TestLimitsAreRefused(t *testing.T) {
	st, sch, url := openStore(t)
	w := &chainWriter{t: t, st: st, sch: sch}
	w.commit(event("1", 0))
	r := startReplica(t, url, sch, subscriptions.Options{MaxConnections: 2, MaxSubscriptionsPerConn: 2, MaxDepth: 3, MaxCost: 500})
	tr := subscriptions.ProtoTransportWS

	a := dial(t, r.url, tr)
	a.initTransport()
	b := dial(t, r.url, tr)
	b.initTransport()
	third := dial(t, r.url, tr)
	if reason := third.expectClose(subscriptions.CloseTryAgainLater); !strings.Contains(reason, "max_connections") {
		t.Fatalf("reason %q", reason)
	}

	code := func(m wsMsg) string {
		var errs []wireErr
		if err := json.Unmarshal(m.Payload, &errs); err != nil || len(errs) == 0 {
			t.Fatalf("error payload %s", m.Payload)
		}
		c, _ := errs[0].Extensions["code"].(string)
		return c
	}
	for _, tc := range []struct{ query, code string }{
		{`subscription { tickets(first: 10) { event { organizer { events(first: 1) { id } } } } }`, "LIMIT_DEPTH"},
		{`subscription { events(first: 100) { tickets(first: 100) { id } } }`, "LIMIT_COST"},
		{`subscription { events { tickets { id } } }`, "LIMIT_COST"}, // first defaults to 100 on both
		{`subscription { events(first: 5000) { id } }`, "LIMIT_FIRST"},
		// issue 20's attacks meet the query API's parse budget at subscribe time
		{`subscription { events(first: 1) { ` + strings.Repeat("id ", 4000) + `} }`, "LIMIT_QUERY_SIZE"},
		{doublingFragments(30), "LIMIT_QUERY_SIZE"},
	} {
		a.subscribe("q", tc.query, nil)
		if got := code(a.expect("error", "q")); got != tc.code {
			t.Fatalf("%s: %s, want %s", tc.query, got, tc.code)
		}
	}
	a.subscribe("1", eventQuery, nil)
	a.expect("next", "1")
	a.subscribe("2", `subscription { events(first: 4) { id } }`, nil)
	a.expect("next", "2")
	a.subscribe("3", `subscription { events(first: 3) { id } }`, nil)
	if got := code(a.expect("error", "3")); got != "LIMIT_SUBSCRIPTIONS" {
		t.Fatalf("third subscription: %s", got)
	}
	// Limits refuse; they do not disconnect.
	a.send(map[string]any{"id": "2", "type": "complete"})
	a.subscribe("3", `subscription { events(first: 3) { id } }`, nil)
	a.expect("next", "3")
	if got := r.metric("echain_indexer_ws_refused_total", "reason", "max_connections"); got != 1 {
		t.Fatalf("refused max_connections = %v", got)
	}
}

// Clients that share a subscription share its execution: one per block, whatever the number
// of clients and protocols.
func TestIdenticalSubscriptionsShareOneExecution(t *testing.T) {
	st, sch, url := openStore(t)
	w := &chainWriter{t: t, st: st, sch: sch}
	w.commit(event("1", 0))
	r := startReplica(t, url, sch, subscriptions.Options{})
	q := `subscription Sold($id: ID!) { event(id: $id) { ticketsSold } }`
	vars := map[string]any{"id": "1"}
	var clients []*wsClient
	for i := range 4 {
		if i == 3 {
			c := dial(t, r.url, subscriptions.ProtoLegacyWS)
			c.initLegacy()
			c.start("s", q, vars)
			c.expect("data", "s")
			clients = append(clients, c)
			continue
		}
		c := dial(t, r.url, subscriptions.ProtoTransportWS)
		c.initTransport()
		c.subscribe(fmt.Sprint("c", i), q, vars)
		c.expect("next", "")
		clients = append(clients, c)
	}
	if got := r.metric("echain_indexer_subscriptions_operations"); got != 1 {
		t.Fatalf("%v operations for 4 identical subscriptions", got)
	}
	before := r.metric("echain_indexer_subscriptions_executions_total")
	w.commit(event("1", 3))
	for i, c := range clients {
		typ := "next"
		if i == 3 {
			typ = "data"
		}
		c.expectResult(typ, "", `{"event":{"ticketsSold":"3"}}`, 2)
	}
	if got := r.metric("echain_indexer_subscriptions_executions_total") - before; got != 1 {
		t.Fatalf("%v executions for one block shared by 4 clients", got)
	}
}

// A client that stops reading is cut (1013, after what it already had) once its send queue is
// full; the other clients keep getting every block on time.
func TestSlowClientIsClosed(t *testing.T) {
	st, sch, url := openStore(t)
	w := &chainWriter{t: t, st: st, sch: sch}
	big := strings.Repeat("x", 100)
	fill := func(sold int64) map[string]map[string]map[string]any {
		evs := map[string]map[string]any{}
		for i := range 100 {
			evs[fmt.Sprint(i)] = map[string]any{"title": big, "ticketsSold": bigInt(sold)}
		}
		return map[string]map[string]map[string]any{"Event": evs}
	}
	w.commit(fill(0))
	r := startReplica(t, url, sch, subscriptions.Options{SendQueue: 2, SendBuffer: 16 << 10})
	q := `subscription { events(first: 100) { id title ticketsSold } }`

	slowWS := smallReadBuffer(t, r.url, subscriptions.ProtoTransportWS)
	slow := newClient(t, slowWS, false)
	slow.send(map[string]any{"type": "connection_init"})
	slow.subscribe("s", q, nil)

	fast := dial(t, r.url, subscriptions.ProtoTransportWS)
	fast.initTransport()
	fast.subscribe("f", q, nil)
	fast.expect("next", "f")
	for n := int64(1); r.metric("echain_indexer_ws_dropped_clients_total") == 0; n++ {
		if n > 200 {
			t.Fatal("the slow client was never dropped")
		}
		t0 := time.Now()
		b := w.commit(fill(n))
		t1 := time.Now()
		m := fast.expect("next", "f")
		_, _ = t0, t1
		if got := decodeResult(t, m).Extensions.Block.Number; got != b.Number {
			t.Fatalf("fast client got block %d, want %d", got, b.Number)
		}
	}
	t.Logf("dropped after %d blocks", len(w.blocks))
	// Reading at last, the slow client finds the close frame after what was on its way.
	_ = slowWS.NetConn().(*net.TCPConn).SetReadBuffer(1 << 20)
	slow.startReading()
	rc := slow
	var n int
	for {
		select {
		case <-rc.msgs:
			n++
			continue
		case <-rc.done:
		case <-time.After(patience):
			t.Fatal("the slow client's connection is still open")
		}
		break
	}
	code, reason := rc.closed(patience)
	if code != subscriptions.CloseTryAgainLater || !strings.Contains(reason, "send queue") {
		t.Fatalf("slow client closed with %d %q", code, reason)
	}
	t.Logf("slow client read %d messages, then %d %q", n, code, reason)
	// The fast one is still served.
	b := w.commit(fill(1000))
	fast.expectResult("next", "f", "", b.Number)
}

func bigInt(n int64) *big.Int { return big.NewInt(n) }

// The LISTEN connection dies: the server reconnects and re-runs everything once, so a block
// committed while it was down still reaches the client.
func TestChangeFeedReconnects(t *testing.T) {
	st, sch, url := openStore(t)
	w := &chainWriter{t: t, st: st, sch: sch}
	w.commit(event("1", 0))
	r := startReplica(t, url, sch, subscriptions.Options{})
	c := dial(t, r.url, subscriptions.ProtoTransportWS)
	c.initTransport()
	c.subscribe("a", eventQuery, nil)
	c.expect("next", "a")

	ctx := context.Background()
	var killed int
	err := st.Pool().QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE application_name = $1 AND datname = current_database()`, subscriptions.ListenerApplicationName).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminated %d listeners: %v", killed, err)
	}
	w.commit(event("1", 8)) // likely while nobody listens
	c.expectResult("next", "a", `{"event":{"id":"1","ticketsSold":"8"}}`, 2)
	waitFor(t, "the reconnect to be counted", patience, func() bool {
		return r.metric("echain_indexer_subscriptions_feed_reconnects_total") >= 1
	})
	w.commit(event("1", 9))
	c.expectResult("next", "a", `{"event":{"id":"1","ticketsSold":"9"}}`, 3)
}

// Shutdown says goodbye with 1001 so clients reconnect elsewhere.
func TestShutdownClosesWithGoingAway(t *testing.T) {
	st, sch, url := openStore(t)
	w := &chainWriter{t: t, st: st, sch: sch}
	w.commit(event("1", 0))
	r := startReplica(t, url, sch, subscriptions.Options{})
	c := dial(t, r.url, subscriptions.ProtoTransportWS)
	c.initTransport()
	c.subscribe("a", eventQuery, nil)
	c.expect("next", "a")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	c.expectClose(websocket.CloseGoingAway)
	if n := r.srv.Connections(); n != 0 {
		t.Fatalf("%d connections after shutdown", n)
	}
}

// Keep-alive: legacy clients get "ka" messages, every client WebSocket pings; a client that
// answers nothing (not even pings) is dropped.
func TestKeepAlive(t *testing.T) {
	st, sch, url := openStore(t)
	w := &chainWriter{t: t, st: st, sch: sch}
	w.commit(event("1", 0))
	r := startReplica(t, url, sch, subscriptions.Options{KeepAlive: 100 * time.Millisecond})

	lg := dialIdle(t, r.url, subscriptions.ProtoLegacyWS)
	var pings atomicCounter
	lg.ws.SetPingHandler(func(data string) error {
		pings.add()
		return lg.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	lg.startReading()
	lg.initLegacy()
	kas := 0
	for deadline := time.After(patience); kas < 3; {
		select {
		case m := <-lg.msgs:
			if m.Type == "ka" {
				kas++
			}
		case <-deadline:
			t.Fatalf("%d ka messages in %v with a 100ms keep-alive", kas, patience)
		}
	}
	waitFor(t, "WebSocket pings", patience, func() bool { return pings.get() >= 2 })

	// A client that never reads never answers pings.
	mute := dialIdle(t, r.url, subscriptions.ProtoTransportWS)
	mute.send(map[string]any{"type": "connection_init"})
	waitFor(t, "the mute client to be dropped", patience, func() bool {
		return r.metric("echain_indexer_ws_dropped_clients_total", "reason", "idle") == 1
	})
	// The answering legacy client is still served.
	lg.start("1", eventQuery, nil)
	lg.expectResult("data", "1", `{"event":{"id":"1","ticketsSold":"0"}}`, 1)
}

type atomicCounter struct {
	mu sync.Mutex
	n  int
}

func (c *atomicCounter) add() { c.mu.Lock(); c.n++; c.mu.Unlock() }
func (c *atomicCounter) get() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// An API replica may start before the indexer has indexed anything: subscriptions wait
// (nothing is sent while there is no state to show) and get their first result with the first
// block.
func TestSubscribeBeforeFirstBlock(t *testing.T) {
	st, sch, url := openStore(t)
	w := &chainWriter{t: t, st: st, sch: sch}
	r := startReplica(t, url, sch, subscriptions.Options{RetryInterval: 50 * time.Millisecond})
	c := dial(t, r.url, subscriptions.ProtoTransportWS)
	c.initTransport()
	c.subscribe("a", eventQuery, nil)
	c.quiet(300 * time.Millisecond)
	if n := r.metric("echain_indexer_subscriptions_executions_total", "result", "retry"); n < 2 {
		t.Fatalf("%v retries while nothing is indexed, want the operation retried", n)
	}
	w.commit(event("1", 2))
	c.expectResult("next", "a", `{"event":{"id":"1","ticketsSold":"2"}}`, 1)
}

// doublingFragments is a subscription whose fragments double at each of levels levels.
func doublingFragments(levels int) string {
	var b strings.Builder
	b.WriteString("subscription { events(first: 1) { ...F1 } }\n")
	for i := 1; i < levels; i++ {
		fmt.Fprintf(&b, "fragment F%d on Event { id ...F%d ...F%d }\n", i, i+1, i+1)
	}
	fmt.Fprintf(&b, "fragment F%d on Event { id }\n", levels)
	return b.String()
}
