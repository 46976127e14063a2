package webhook

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkWebhookServer is a load generator against the handler behind a real HTTP server on
// loopback: keep-alive clients POST distinct, signed onchain.activity.detected deliveries and it
// reports requests/s and latency percentiles to the 2xx. "max" is closed-loop (as fast as 8 clients
// go); "rate5000" paces requests at 5,000/s and measures each latency from the moment the request
// was due, so a stall is charged to every request that waited behind it.
//
//	go test -run '^$' -bench WebhookServer -benchtime 30000x ./api/webhook
func BenchmarkWebhookServer(b *testing.B) {
	b.Run("max", func(b *testing.B) { benchWebhook(b, 0) })
	b.Run("rate5000", func(b *testing.B) { benchWebhook(b, 5000) })
}

func benchWebhook(b *testing.B, rate float64) {
	const clients = 8
	var forwarded atomic.Int64
	sink := SinkFunc(func(ctx context.Context, h Hint) error { forwarded.Add(1); return nil })
	h, err := New(Config{Secrets: []string{"old-secret", "bench-secret"}, Networks: []string{"base-sepolia"}, QueueSize: 4096},
		sink, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = h.Run(ctx) }()
	// The default per-source limit would (rightly) stop one client at 100/s; Coinbase delivers from
	// a handful of addresses, so the benchmark spreads its clients over sources.
	h.cfg.ClientIP = func(r *http.Request) string { return r.Header.Get("X-Bench-Client") }
	h.limiter = nil
	srv := httptest.NewServer(h)
	defer srv.Close()

	type req struct {
		body []byte
		sig  string
		id   string
	}
	reqs := make([]req, b.N)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	for i := range reqs {
		body := fmt.Appendf(nil, `{"block_number":%d,"contract_address":"0xc8cd32F0b2a6EE43f465a3f88BC52955A805043C","event_name":"Transfer","event_signature":"Transfer(address,address,uint256)","log_index":%d,"network":"base-sepolia","parameters":{"from":"0x0000000000000000000000000000000000000000","to":"0x61040E143A77F165Ba44543AF4A079F2C809D14b","tokenId":"%d"},"timestamp":"2026-05-19T21:22:10Z","transaction_from":"0x3E16D476D8Df15e3E776EAa5A46f37EC44C830cD","transaction_hash":"0x%064x","transaction_to":"0xc8cd32F0b2a6EE43f465a3f88BC52955A805043C"}`, 1000+i/10, i%10, i, i)
		id := fmt.Sprintf("evt-%d", i)
		hl := "content-type x-event-id x-event-type"
		v0 := SignV0([]byte("bench-secret"), ts, body)
		v1 := SignV1([]byte("bench-secret"), ts, hl, []string{"application/json", id, "onchain.activity.detected"}, body)
		reqs[i] = req{body: body, sig: fmt.Sprintf("t=%s,v0=%x,h=%s,v1=%x", ts, v0, hl, v1), id: id}
	}
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= b.N {
					return
				}
				t0 := time.Now()
				if rate > 0 {
					t0 = start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
					time.Sleep(time.Until(t0))
				}
				r, _ := http.NewRequest(http.MethodPost, srv.URL+"/webhooks/coinbase", bytes.NewReader(reqs[i].body))
				r.Header.Set("Content-Type", "application/json")
				r.Header.Set(HeaderEventID, reqs[i].id)
				r.Header.Set(HeaderEventType, "onchain.activity.detected")
				r.Header.Set(HeaderHook0Signature, reqs[i].sig)
				r.Header.Set("X-Bench-Client", strconv.Itoa(c))
				resp, err := client.Do(r)
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat[i] = time.Since(t0)
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d requests failed", n)
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(1), "max-ms")
}
