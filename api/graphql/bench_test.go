package graphql

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/echain/echain-indexer/api/graphql/internal/gqltest"
	"github.com/echain/echain-indexer/schema"
)

// The frontend's query shapes, as the benchmarks send them.
const (
	benchEventWithTickets = `query EventWithTickets($id: ID!) {
  event(id: $id) {
    id title description category location imageUrl startTime endTime ticketPrice maxTickets ticketsSold revenue status creator
    organizer { id verified }
    tickets(first: 100, orderBy: tokenId) { id tokenId owner isUsed ticketType purchasePrice }
  }
}`
	benchOwnerTickets = `query MyTickets($owner: Bytes!) {
  tickets(where: {owner: $owner}, orderBy: createdAt, orderDirection: desc, first: 50) {
    id tokenId isUsed usedAt purchasePrice
    event { id title startTime location imageUrl status }
    transfers(orderBy: timestamp) { id from to timestamp transactionHash }
  }
}`
	benchEventsPage = `query Events($after: BigInt!, $skip: Int!) {
  events(first: 20, skip: $skip, orderBy: startTime, orderDirection: asc, where: {status: "active", startTime_gt: $after}) {
    id title startTime endTime ticketPrice ticketsSold maxTickets location imageUrl category
    organizer { id verified }
  }
}`
)

// BenchmarkQueries runs the frontend query shapes over HTTP against a store with 10,000 events
// and 1,000,000 tickets (ECHAIN_BENCH_SMALL=1: 1,000 and 100,000), from 1 and from 32 concurrent
// clients, and reports p50/p99 latency and queries per second. Server, PostgreSQL and load
// generator share the machine.
//
//	go test ./api/graphql -run '^$' -bench BenchmarkQueries -benchtime 3000x
func BenchmarkQueries(b *testing.B) {
	sch, err := schema.Load()
	if err != nil {
		b.Fatal(err)
	}
	sz := gqltest.Sizes{Events: 10000, TicketsPerEvent: 100, Owners: 100000, Organizers: 500, ExtraTransferPct: 20, TxsPerEvent: 20}
	if os.Getenv("ECHAIN_BENCH_SMALL") == "1" {
		sz.Events, sz.Owners = 1000, 10000
	}
	ctx := context.Background()
	load := func(pool *pgxpool.Pool) error {
		start := time.Now()
		_, err := gqltest.LoadBulk(ctx, pool, sch, sz)
		b.Logf("loaded %d events, %d tickets in %s", sz.Events, sz.Events*sz.TicketsPerEvent, time.Since(start).Round(time.Millisecond))
		return err
	}
	var pool *pgxpool.Pool
	if os.Getenv("ECHAIN_BENCH_KEEP") == "1" {
		// reuse the dataset across runs (drop the database to rebuild it)
		pool = gqltest.KeptDB(b, sch, fmt.Sprintf("echain_bench_api_%d_%.12s", sz.Events, sch.Fingerprint), load)
	} else {
		_, pool = gqltest.BulkDB(b, sch, load)
	}
	bulk := gqltest.BulkInfo(sz)
	cfg := pool.Config()
	cfg.MaxConns = 8
	apiPool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer apiPool.Close()
	h, err := NewHandler(apiPool, sch, Options{})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128, DisableCompression: true}}

	shapes := []struct {
		name  string
		query string
		vars  func(r *rand.Rand) map[string]any
	}{
		{"event_with_tickets", benchEventWithTickets, func(r *rand.Rand) map[string]any {
			return map[string]any{"id": fmt.Sprint(1 + r.IntN(bulk.Events))}
		}},
		{"owner_tickets", benchOwnerTickets, func(r *rand.Rand) map[string]any {
			return map[string]any{"owner": fmt.Sprintf("0x%x", bulk.Owners[r.IntN(len(bulk.Owners))])}
		}},
		{"events_page", benchEventsPage, func(r *rand.Rand) map[string]any {
			return map[string]any{"after": fmt.Sprint(bulk.StartMin + int64(r.IntN(9_000_000))), "skip": 20 * r.IntN(5)}
		}},
		// the fixed cost of a request: HTTP, parse, validate, snapshot and cursor
		{"meta_only", `query Meta { _meta { block { number hash } } }`, func(*rand.Rand) map[string]any { return nil }},
	}
	for _, sh := range shapes {
		// Check the shape answers before timing it.
		body, _ := json.Marshal(map[string]any{"query": sh.query, "variables": sh.vars(rand.New(rand.NewPCG(1, 1)))})
		resp, err := client.Post(srv.URL, "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || bytes.Contains(raw, []byte(`"errors"`)) || len(raw) < 60 {
			b.Fatalf("%s: %d %s", sh.name, resp.StatusCode, raw)
		}
		for _, clients := range []int{1, 32} {
			b.Run(fmt.Sprintf("%s/clients=%d", sh.name, clients), func(b *testing.B) {
				before := cpuNow(b, apiPool)
				loadgen(b, srv.URL, clients, sh.query, sh.vars)
				// CPU per query, whoever else shares the machine: this process (server and load
				// generator) and the PostgreSQL backends serving the API's connections.
				after := cpuNow(b, apiPool)
				b.ReportMetric(float64(after.self-before.self)/float64(time.Millisecond)/float64(b.N), "go_cpu_ms/q")
				b.ReportMetric(float64(after.pgSince(before))/float64(time.Millisecond)/float64(b.N), "pg_cpu_ms/q")
			})
		}
	}
}

// loadgen sends b.N requests from `clients` goroutines and reports latency percentiles and
// throughput. It shares the two cores with the server and PostgreSQL, so it is lean: each client
// keeps one HTTP/1.1 connection and writes the request and reads the response itself (status
// line, Content-Length, body into a reused buffer) instead of going through net/http's client,
// which cost about a tenth of the CPU of a query.
func loadgen(b *testing.B, url string, clients int, query string, vars func(*rand.Rand) map[string]any) (p50ms float64) {
	host := strings.TrimPrefix(url, "http://")
	prefix, _ := json.Marshal(query)
	prefix = append([]byte(`{"query":`), prefix...)
	var next atomic.Int64
	lat := make([][]time.Duration, clients)
	var failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(c), 99))
			conn, err := net.Dial("tcp", host)
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
				failed.Add(1)
				return
			}
			defer conn.Close()
			br := bufio.NewReaderSize(conn, 64<<10)
			var req, body, resp []byte
			lat[c] = make([]time.Duration, 0, b.N/clients+1)
			for next.Add(1) <= int64(b.N) {
				v, _ := json.Marshal(vars(r))
				body = append(append(append(append(body[:0], prefix...), `,"variables":`...), v...), '}')
				req = fmt.Appendf(req[:0], "POST / HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", host, len(body))
				req = append(req, body...)
				t0 := time.Now()
				if _, err := conn.Write(req); err != nil {
					firstErr.CompareAndSwap(nil, err)
					failed.Add(1)
					return
				}
				var status int
				if status, resp, err = readResponse(br, resp); err != nil {
					firstErr.CompareAndSwap(nil, err)
					failed.Add(1)
					return
				}
				lat[c] = append(lat[c], time.Since(t0))
				if status != 200 || bytes.Contains(resp, []byte(`"errors"`)) {
					firstErr.CompareAndSwap(nil, fmt.Errorf("status %d: %.300s", status, resp))
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) == 0 {
		b.Fatalf("no requests completed: %v", firstErr.Load())
	}
	slices.Sort(all)
	pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50_ms")
	b.ReportMetric(pct(0.99), "p99_ms")
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "queries/s")
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d of %d requests failed; first: %v", f, b.N, firstErr.Load())
	}
	return pct(0.50)
}

// readResponse reads one HTTP/1.1 response with a Content-Length (the API sets it on every
// uncompressed answer) into buf.
func readResponse(br *bufio.Reader, buf []byte) (int, []byte, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, buf, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, buf, fmt.Errorf("bad status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, buf, fmt.Errorf("bad status line %q", line)
	}
	n := -1
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return 0, buf, err
		}
		if len(line) <= 2 {
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && strings.EqualFold(string(k), "Content-Length") {
			if n, err = strconv.Atoi(string(bytes.TrimSpace(v))); err != nil {
				return 0, buf, fmt.Errorf("bad Content-Length %q", v)
			}
		}
	}
	if n < 0 {
		return 0, buf, fmt.Errorf("response without Content-Length")
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	_, err = io.ReadFull(br, buf)
	return status, buf, err
}

// BenchmarkExecute runs the same shapes through Engine.Execute, without HTTP or a load generator:
// the executor's own cost (wall time includes the PostgreSQL round trips), once with the fast
// path and once with graphql-go's executor only (Options.DisableFastPath), so the two
// executors are compared on the same data, queries and variables.
//
//	ECHAIN_BENCH_KEEP=1 go test ./api/graphql -run '^$' -bench BenchmarkExecute -benchmem
func BenchmarkExecute(b *testing.B) {
	sch, err := schema.Load()
	if err != nil {
		b.Fatal(err)
	}
	sz := gqltest.Sizes{Events: 1000, TicketsPerEvent: 100, Owners: 10000, Organizers: 500, ExtraTransferPct: 20, TxsPerEvent: 20}
	ctx := context.Background()
	pool := gqltest.KeptDB(b, sch, fmt.Sprintf("echain_bench_api_%d_%.12s", sz.Events, sch.Fingerprint), func(pool *pgxpool.Pool) error {
		_, err := gqltest.LoadBulk(ctx, pool, sch, sz)
		return err
	})
	bulk := gqltest.BulkInfo(sz)
	for _, ex := range []struct {
		name string
		opts Options
	}{{"fast", Options{}}, {"graphql-go", Options{DisableFastPath: true}}} {
		h, err := NewHandler(pool, sch, ex.opts)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(ex.name, func(b *testing.B) { benchShapes(b, h, bulk) })
	}
}

func benchShapes(b *testing.B, h *Handler, bulk *gqltest.Bulk) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(1, 1))
	for _, sh := range []struct {
		name, query string
		vars        func() map[string]any
	}{
		{"event_with_tickets", benchEventWithTickets, func() map[string]any { return map[string]any{"id": fmt.Sprint(1 + r.IntN(bulk.Events))} }},
		{"owner_tickets", benchOwnerTickets, func() map[string]any {
			return map[string]any{"owner": fmt.Sprintf("0x%x", bulk.Owners[r.IntN(len(bulk.Owners))])}
		}},
		{"events_page", benchEventsPage, func() map[string]any {
			return map[string]any{"after": fmt.Sprint(bulk.StartMin + int64(r.IntN(9_000_000))), "skip": float64(20 * r.IntN(5))}
		}},
	} {
		b.Run(sh.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				res := h.Engine().Execute(ctx, Request{Query: sh.query, Variables: sh.vars()}, ExecOptions{})
				if len(res.Errors) > 0 {
					b.Fatal(res.Errors)
				}
			}
		})
	}
}

// cpuSample is CPU time used so far by this process and by each PostgreSQL backend of a pool.
type cpuSample struct {
	self time.Duration
	pg   map[int]time.Duration
}

// pg is the backends' CPU since an earlier sample (backends started since count whole).
func (c cpuSample) pgSince(before cpuSample) time.Duration {
	var d time.Duration
	for pid, t := range c.pg {
		d += t - before.pg[pid]
	}
	return d
}

func cpuNow(b *testing.B, pool *pgxpool.Pool) cpuSample {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	s := cpuSample{self: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), pg: map[int]time.Duration{}}
	rows, err := pool.Query(context.Background(), "SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var pid int
		if rows.Scan(&pid) == nil {
			s.pg[pid] = procCPU(pid)
		}
	}
	return s
}

// procCPU reads a process's user+system time from /proc (clock ticks of 10 ms); 0 when unknown.
func procCPU(pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// the command may contain spaces: fields start after the closing parenthesis
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+2:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}
