package api

// Hostile clients against the real server: the GraphQL engine and the subscription server over a
// real (empty, migrated) store. Each test asserts its bound from the server's own counters
// (bytes in flight, refusals, open connections) and the process heap, and that a normal query is
// answered while the attack runs.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/echain/echain-indexer/api/graphql"
	"github.com/echain/echain-indexer/api/subscriptions"
	"github.com/echain/echain-indexer/schema"
	"github.com/echain/echain-indexer/store"
	"github.com/echain/echain-indexer/store/storetest"
)

type hostileEnv struct {
	srv  *Server
	base string
	addr string
	reg  *prometheus.Registry
}

// hostileServer serves the real GraphQL engine and subscriptions over a fresh store.
func hostileServer(t *testing.T, lim Limits) *hostileEnv {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	sch, err := schema.Load()
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, storetest.NewDB(t), sch, store.Options{MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	// One (empty) block indexed, so that queries answer data rather than NOT_STARTED.
	head := store.BlockPtr{Number: 1, Hash: common.Hash{1}, Timestamp: time.Now().Unix()}
	if err := st.Commit(ctx, st.NewBatch(), store.Commit{Head: head, Finalized: 1}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	log := slog.New(slog.DiscardHandler)
	gql, err := graphql.NewHandler(st.Pool(), sch, graphql.Options{Logger: log, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	lim.defaults()
	budget := NewInFlight(lim.MaxInFlightBytes)
	subs, err := subscriptions.New(st.Pool(), gql.Engine(), subscriptions.Options{
		Logger: log, Registerer: reg, MessageTimeout: lim.ReadBodyTimeout,
		AcquireBytes: budget.Acquire, ReleaseBytes: budget.Release,
	})
	if err != nil {
		t.Fatal(err)
	}
	subsDone := make(chan struct{})
	go func() { defer close(subsDone); _ = subs.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-subsDone })
	s, base := start(t, Options{
		GraphQL: gql, Subscriptions: subs, OnShutdown: []func(context.Context) error{subs.Shutdown},
		Limits: lim, InFlight: budget, Registerer: reg,
	})
	return &hostileEnv{srv: s, base: base, addr: s.Addr(), reg: reg}
}

// metric reads one series of the server's registry ("name" or "name{label=value}").
func (h *hostileEnv) metric(t *testing.T, series string) float64 {
	t.Helper()
	name, label, _ := strings.Cut(strings.TrimSuffix(series, "}"), "{")
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range mf.GetMetric() {
			match := label == ""
			for _, lp := range m.GetLabel() {
				if lp.GetName()+"="+lp.GetValue() == label {
					match = true
				}
			}
			if !match {
				continue
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			}
		}
		return sum
	}
	return 0 // a vector with no series yet
}

// normalQuery is what a well-behaved frontend sends; it must be answered during every attack.
func (h *hostileEnv) normalQuery(t *testing.T) {
	t.Helper()
	resp, err := http.Post(h.base+PathGraphQL, "application/json", strings.NewReader(`{"query":"{ events(first: 5) { id title } }"}`))
	if err != nil {
		t.Fatalf("normal query during the attack: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"events":[]`) {
		t.Fatalf("normal query during the attack: %d %s", resp.StatusCode, b)
	}
}

func pollUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// heapInUse is the process's live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// openPost connects and sends a POST's headers announcing contentLength bytes of body.
func openPost(t *testing.T, addr string, contentLength int64) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", contentLength)
	return c
}

// readStatus reads the status line the server answers on c, or "" when it closed without one.
func readStatus(c net.Conn) string {
	_ = c.SetReadDeadline(time.Now().Add(time.Minute))
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line)
}

// TestHostileHeaderOnlyFlood: connections that announce a megabyte and send nothing held that
// megabyte each (Content-Length sized the buffer: 3,000 of them took 3.09 GB). Now they hold
// almost nothing, and the body deadline closes them.
func TestHostileHeaderOnlyFlood(t *testing.T) {
	// Long enough that every connection is open before the first one's body deadline, even on a
	// busy machine.
	h := hostileServer(t, Limits{ReadBodyTimeout: 15 * time.Second})
	const n = 400
	before := heapInUse()
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = openPost(t, h.addr, 1_000_000)
		// One byte, so that the in-flight gauge shows every handler reading its body.
		if _, err := conns[i].Write([]byte("{")); err != nil {
			t.Fatal(err)
		}
	}
	pollUntil(t, time.Minute, "every attacking request to be reading its body", func() bool {
		return h.metric(t, "echain_indexer_http_request_bytes_in_flight") == n
	})
	h.normalQuery(t)
	grew := int64(heapInUse()) - int64(before)
	t.Logf("%d connections announcing 1 MB each: heap grew %.1f MB", n, float64(grew)/1e6)
	if limit := int64(n) * 64 << 10; grew > limit { // announced: n MB; allowed: 64 KiB each
		t.Errorf("heap grew %d bytes for %d header-only connections, more than %d: the announced size is allocated", grew, n, limit)
	}
	pollUntil(t, 2*time.Minute, "the body deadline to refuse every attacking connection", func() bool {
		return h.metric(t, "echain_indexer_http_refused_total{reason=body_timeout}") >= n
	})
	for _, c := range conns[:10] {
		if st := readStatus(c); !strings.Contains(st, "408") {
			t.Errorf("a timed-out body got %q, want 408", st)
		}
	}
}

// TestHostileSlowBodies: 1,000 bodies of 999,000 bytes trickling their last byte every 3 s held
// 1 GB and were never closed. Now the process holds at most max_inflight_bytes of them, refuses
// the rest with 503, and the body deadline closes the slow ones.
func TestHostileSlowBodies(t *testing.T) {
	const maxBytes = 4 << 20
	h := hostileServer(t, Limits{ReadBodyTimeout: 4 * time.Second, MaxInFlightBytes: maxBytes})
	const n, sent = 60, 200_000 // 12 MB sent, three times the cap
	chunk := []byte(`{"query":"` + strings.Repeat("x", sent-10))
	before := heapInUse()
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[string]int{}
	var peak float64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(5 * time.Millisecond):
			}
			mu.Lock()
			peak = max(peak, h.metric(t, "echain_indexer_http_request_bytes_in_flight"))
			mu.Unlock()
		}
	}()
	for range n {
		c := openPost(t, h.addr, 1_000_000)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Write(chunk); err != nil {
				return // refused and closed while sending: counted by the server
			}
			for range 10 {
				time.Sleep(500 * time.Millisecond)
				if _, err := c.Write([]byte("x")); err != nil {
					break
				}
			}
			st := readStatus(c)
			mu.Lock()
			statuses[st]++
			mu.Unlock()
		}()
	}
	pollUntil(t, time.Minute, "the attack to reach the in-flight cap", func() bool {
		return h.metric(t, "echain_indexer_http_refused_total{reason=inflight_bytes}") > 0
	})
	h.normalQuery(t)
	grew := int64(heapInUse()) - int64(before)
	wg.Wait()
	close(stopSampling)
	<-sampled
	t.Logf("statuses %v, in-flight peak %.0f bytes, heap grew %.1f MB", statuses, peak, float64(grew)/1e6)
	if peak > maxBytes {
		t.Errorf("bytes in flight peaked at %.0f, above the cap %d", peak, maxBytes)
	}
	if limit := int64(3 * maxBytes); grew > limit {
		t.Errorf("heap grew %d bytes under the attack, more than %d", grew, limit)
	}
	if got := h.metric(t, "echain_indexer_http_refused_total{reason=body_timeout}"); got == 0 {
		t.Error("no slow body was cut by the body deadline")
	}
	pollUntil(t, time.Minute, "the bytes in flight to return to zero", func() bool {
		return h.metric(t, "echain_indexer_http_request_bytes_in_flight") == 0
	})
	h.normalQuery(t)
}

// TestHostileHugeContentLength: an announced body over max_body_bytes is refused before a byte
// of it is read, and so is a chunked one once it passes the limit.
func TestHostileHugeContentLength(t *testing.T) {
	h := hostileServer(t, Limits{})
	before := heapInUse()
	for range 20 {
		c := openPost(t, h.addr, 1<<40)
		if st := readStatus(c); !strings.Contains(st, "413") {
			t.Fatalf("Content-Length 1 TB: %q, want 413", st)
		}
	}
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
	go func() {
		blob := strings.Repeat("x", 64<<10)
		for range 40 { // 2.5 MB, over the 1 MiB default
			if _, err := fmt.Fprintf(c, "%x\r\n%s\r\n", len(blob), blob); err != nil {
				return
			}
		}
	}()
	if st := readStatus(c); !strings.Contains(st, "413") {
		t.Fatalf("chunked body over the limit: %q, want 413", st)
	}
	if grew := int64(heapInUse()) - int64(before); grew > 16<<20 {
		t.Errorf("heap grew %d bytes refusing huge bodies", grew)
	}
	h.normalQuery(t)
}

type gqlError struct {
	Errors []struct {
		Message    string `json:"message"`
		Extensions struct {
			Code string `json:"code"`
		} `json:"extensions"`
	} `json:"errors"`
}

func postQuery(t *testing.T, client *http.Client, url string, hdr map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(`{"query":"{ events(first: 1) { id } }"}`))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusTooManyRequests {
		var ge gqlError
		if err := json.Unmarshal(b, &ge); err != nil || len(ge.Errors) != 1 || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("a 429 that is not one GraphQL error with Retry-After: %s", b)
		}
		return resp.StatusCode, ge.Errors[0].Extensions.Code
	}
	return resp.StatusCode, string(b)
}

// TestHostilePerClientConnections: one address holding max_conns_per_client connections gets
// 429 on the next one; once it lets go it is served again. Exempt addresses are not counted.
func TestHostilePerClientConnections(t *testing.T) {
	// Held connections send nothing: the header deadline must not close them during the test.
	h := hostileServer(t, Limits{MaxConnsPerClient: 5, ReadHeaderTimeout: 5 * time.Minute})
	held := make([]net.Conn, 5)
	for i := range held {
		c, err := net.Dial("tcp", h.addr)
		if err != nil {
			t.Fatal(err)
		}
		held[i] = c
	}
	pollUntil(t, time.Minute, "the server to count the held connections", func() bool {
		return h.metric(t, "echain_indexer_http_connections") >= 5
	})
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	if code, errCode := postQuery(t, fresh, h.base+PathGraphQL, nil); code != 429 || errCode != "LIMIT_CLIENT_CONNECTIONS" {
		t.Fatalf("6th connection: %d %s, want 429 LIMIT_CLIENT_CONNECTIONS", code, errCode)
	}
	// A WebSocket upgrade is a connection too.
	if _, resp, err := websocket.DefaultDialer.Dial("ws://"+h.addr+PathGraphQL, nil); err == nil || resp == nil || resp.StatusCode != 429 {
		t.Fatalf("WebSocket over the limit: %v %v, want 429", err, resp)
	}
	if got := h.metric(t, "echain_indexer_http_refused_total{reason=client_connections}"); got < 2 {
		t.Errorf("refusals counted: %v, want 2", got)
	}
	for _, c := range held {
		c.Close()
	}
	pollUntil(t, time.Minute, "the address to be served again once it closed its connections", func() bool {
		code, _ := postQuery(t, fresh, h.base+PathGraphQL, nil)
		return code == 200
	})

	ex := hostileServer(t, Limits{MaxConnsPerClient: 1, Exempt: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	c, err := net.Dial("tcp", ex.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if code, body := postQuery(t, fresh, ex.base+PathGraphQL, nil); code != 200 {
		t.Fatalf("exempt loopback refused: %d %s", code, body)
	}
}

// TestHostilePerClientRate: requests past client_rate/client_burst get 429 LIMIT_CLIENT_RATE;
// behind a trusted proxy each X-Forwarded-For client has its own budget, and an untrusted peer's
// X-Forwarded-For is ignored.
func TestHostilePerClientRate(t *testing.T) {
	h := hostileServer(t, Limits{ClientRate: 0.01, ClientBurst: 3})
	client := &http.Client{}
	var ok, limited int
	for range 10 {
		code, body := postQuery(t, client, h.base+PathGraphQL, map[string]string{"X-Forwarded-For": fmt.Sprint("198.51.100.", ok+limited)})
		switch {
		case code == 200:
			ok++
		case code == 429 && body == "LIMIT_CLIENT_RATE":
			limited++
		default:
			t.Fatalf("%d %s", code, body)
		}
	}
	if ok != 3 || limited != 7 {
		t.Errorf("10 requests at burst 3 from an untrusted peer: %d answered, %d limited; want 3, 7", ok, limited)
	}
	if got := h.metric(t, "echain_indexer_http_refused_total{reason=client_rate}"); got != 7 {
		t.Errorf("client_rate refusals counted: %v, want 7", got)
	}
	if code, _ := get(t, h.base+PathHealth); code != 200 {
		t.Errorf("/healthz is not rate limited, got %d", code)
	}

	px := hostileServer(t, Limits{ClientRate: 0.01, ClientBurst: 1, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	for _, ip := range []string{"203.0.113.1", "203.0.113.2"} {
		if code, body := postQuery(t, client, px.base+PathGraphQL, map[string]string{"X-Forwarded-For": ip}); code != 200 {
			t.Fatalf("first request of %s behind the proxy: %d %s", ip, code, body)
		}
	}
	if code, body := postQuery(t, client, px.base+PathGraphQL, map[string]string{"X-Forwarded-For": "203.0.113.1, 127.0.0.1"}); code != 429 {
		t.Fatalf("second request of 203.0.113.1 behind the proxy: %d %s", code, body)
	}
}

// TestHostileWebSocketTrickle: a WebSocket message trickled a byte at a time is cut by the
// message deadline, even though the connection would otherwise count as alive.
func TestHostileWebSocketTrickle(t *testing.T) {
	h := hostileServer(t, Limits{ReadBodyTimeout: time.Second})
	d := websocket.Dialer{Subprotocols: []string{subscriptions.ProtoTransportWS}}
	ws, _, err := d.Dial("ws://"+h.addr+PathGraphQL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	raw := ws.NetConn()
	// A masked text frame announcing 100,000 bytes; a zero mask key leaves the payload as is.
	hdr := []byte{0x81, 0x80 | 127, 0, 0, 0, 0, 0, 0x01, 0x86, 0xa0, 0, 0, 0, 0}
	if _, err := raw.Write(append(hdr, strings.Repeat(" ", 1000)...)); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		for {
			time.Sleep(200 * time.Millisecond)
			if _, err := raw.Write([]byte(" ")); err != nil {
				return
			}
		}
	}()
	pollUntil(t, time.Minute, "the message deadline to drop the trickling client", func() bool {
		return h.metric(t, "echain_indexer_ws_dropped_clients_total{reason=message_timeout}") == 1
	})
	h.normalQuery(t)
	raw.Close()
	<-closed
	pollUntil(t, time.Minute, "the bytes in flight to return to zero", func() bool {
		return h.metric(t, "echain_indexer_http_request_bytes_in_flight") == 0
	})
}
