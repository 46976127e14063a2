package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
)

func start(t *testing.T, o Options) (*Server, string) {
	t.Helper()
	o.Listen = "127.0.0.1:0"
	o.Log = slog.New(slog.DiscardHandler)
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	s, err := Listen(o)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, "http://" + s.Addr()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestRoutes(t *testing.T) {
	reg := prometheus.NewRegistry()
	var healthErr error
	var mu sync.Mutex
	rd := Readiness{Ready: true, ChainHead: 100, Indexed: 99, LagBlocks: 1, MaxLag: 10}
	_, base := start(t, Options{
		Registerer: reg,
		GraphQL: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"data":{"path":"`+r.URL.Path+`"}}`)
		}),
		Webhook: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) }),
		Health: func(context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			return healthErr
		},
		Ready: func(context.Context) Readiness {
			mu.Lock()
			defer mu.Unlock()
			return rd
		},
	})

	for _, p := range []string{PathGraphQL, PathSubgraph} {
		if code, body := get(t, base+p); code != 200 || !strings.Contains(body, p) {
			t.Errorf("%s: %d %s", p, code, body)
		}
	}
	resp, err := http.Post(base+PathWebhook, "application/json", strings.NewReader("{}"))
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("webhook: %v %v", err, resp)
	}
	resp.Body.Close()
	if code, _ := get(t, base+"/nope"); code != 404 {
		t.Errorf("unknown path: %d", code)
	}

	if code, body := get(t, base+PathHealth); code != 200 || !strings.Contains(body, `"ok"`) {
		t.Errorf("healthz: %d %s", code, body)
	}
	mu.Lock()
	healthErr = errors.New("database: connection refused")
	mu.Unlock()
	if code, body := get(t, base+PathHealth); code != 503 || !strings.Contains(body, "connection refused") {
		t.Errorf("healthz failing: %d %s", code, body)
	}

	code, body := get(t, base+PathReady)
	var got Readiness
	if err := json.Unmarshal([]byte(body), &got); err != nil || code != 200 || got != rd {
		t.Errorf("readyz: %d %s %v", code, body, err)
	}
	mu.Lock()
	rd = Readiness{Ready: false, ChainHead: 100, Indexed: 50, LagBlocks: 50, MaxLag: 10, Reason: "50 blocks behind"}
	mu.Unlock()
	if code, body := get(t, base+PathReady); code != 503 || !strings.Contains(body, "50 blocks behind") {
		t.Errorf("readyz lagging: %d %s", code, body)
	}

	if n := counter(t, reg, "graphql", "200"); n != 2 {
		t.Errorf("graphql requests counted %v, want 2", n)
	}
	if n := counter(t, reg, "healthz", "503"); n != 1 {
		t.Errorf("failing health checks counted %v, want 1", n)
	}
}

// counter reads echain_indexer_http_requests_total{handler,code} from reg.
func counter(t *testing.T, reg *prometheus.Registry, handler, code string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "echain_indexer_http_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			if labels["handler"] == handler && labels["code"] == code {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no echain_indexer_http_requests_total{handler=%q,code=%q}", handler, code)
	return 0
}

// TestShutdownClosesWebSockets: a WebSocket upgrade goes to the subscription handler, and
// Shutdown runs its hook, which sends the close frame the client sees, before returning.
func TestShutdownClosesWebSockets(t *testing.T) {
	up := websocket.Upgrader{}
	var mu sync.Mutex
	var conns []*websocket.Conn
	subs := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	})
	hook := func(ctx context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			msg := websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down")
			if err := c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second)); err != nil {
				return err
			}
		}
		return nil
	}
	s, err := Listen(Options{Listen: "127.0.0.1:0", Log: slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry(),
		GraphQL: http.NotFoundHandler(), Subscriptions: subs, OnShutdown: []func(context.Context) error{hook}})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()

	client, _, err := websocket.DefaultDialer.Dial("ws://"+s.Addr()+PathGraphQL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	for {
		mu.Lock()
		n := len(conns)
		mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err = client.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Fatalf("client read %v, want a going-away close frame", err)
	}
	if _, err := http.Get("http://" + s.Addr() + PathHealth); err == nil {
		t.Error("server still accepts connections after Shutdown")
	}
}

func TestMetricsServer(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "echain_indexer_test_things_total", Help: "t"})
	reg.MustRegister(c)
	c.Add(3)
	status := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"mode":"realtime"}`) })
	m, err := ListenMetrics("127.0.0.1:0", reg, status, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	go m.Serve()
	defer m.Shutdown(context.Background())
	code, body := get(t, "http://"+m.Addr()+"/metrics")
	if code != 200 || !strings.Contains(body, "echain_indexer_test_things_total 3") {
		t.Errorf("%d %s", code, body)
	}
	if code, body := get(t, "http://"+m.Addr()+"/status"); code != 200 || body != `{"mode":"realtime"}` {
		t.Errorf("/status: %d %s", code, body)
	}
	if _, err := ListenMetrics(m.Addr(), reg, nil, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), m.Addr()) {
		t.Errorf("second listener on a taken port: %v", err)
	}
}
