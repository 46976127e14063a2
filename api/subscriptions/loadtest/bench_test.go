package loadtest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/echain/echain-indexer/api"
	"github.com/echain/echain-indexer/api/graphql"
	"github.com/echain/echain-indexer/api/subscriptions"
	"github.com/echain/echain-indexer/schema"
	"github.com/echain/echain-indexer/store"
	"github.com/echain/echain-indexer/store/storetest"
)

func TestMain(m *testing.M) {
	if os.Getenv(clientEnv) != "" {
		os.Exit(clientMain())
	}
	os.Exit(storetest.Run(m))
}

// benchConfig is the load's shape (from the environment, see doc.go).
type benchConfig struct {
	URL      string
	Clients  int
	Ops      int
	Blocks   int
	Interval time.Duration
	Proto    string
	First    int64 // number of the first block the clients are told about
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func loadConfig() benchConfig {
	c := benchConfig{
		Clients: envInt("ECHAIN_BENCH_CLIENTS", 10000),
		Ops:     envInt("ECHAIN_BENCH_OPS", 100),
		Blocks:  envInt("ECHAIN_BENCH_BLOCKS", 20),
		Proto:   subscriptions.ProtoTransportWS,
	}
	c.Interval = 500 * time.Millisecond
	if d, err := time.ParseDuration(os.Getenv("ECHAIN_BENCH_INTERVAL")); err == nil && d >= 0 {
		c.Interval = d
	}
	if p := os.Getenv("ECHAIN_BENCH_PROTO"); p != "" {
		c.Proto = p
	}
	return c
}

// raiseNoFile lifts the open-file limit to its hard maximum: 10,000 sockets need it.
func raiseNoFile() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	l.Cur = l.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	return l.Cur, nil
}

type memSample struct {
	heap, stack, rss uint64
	goroutines       int
}

func measure() memSample {
	for range 2 {
		runtime.GC()
	}
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memSample{heap: ms.HeapInuse, stack: ms.StackInuse, rss: rss(), goroutines: runtime.NumGoroutine()}
}

// rss is the process's resident set in bytes (Linux).
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// eventsBlock is a block that sets every event's ticketsSold to sold: every subscription's
// result changes.
func eventsRows(sch *schema.Schema, ops int, sold int64) [][]any {
	et := sch.Type("Event")
	rows := make([][]any, 0, ops)
	for i := 1; i <= ops; i++ {
		row := make([]any, len(et.Columns))
		for j, f := range et.Columns {
			switch {
			case j == 0:
				row[j] = strconv.Itoa(i)
			case f.Name == "ticketsSold":
				row[j] = big.NewInt(sold)
			case !f.NonNull:
			case f.List:
				row[j] = []any{}
			case f.Kind == schema.KindBoolean:
				row[j] = false
			case f.Kind == schema.KindInt:
				row[j] = int32(0)
			case f.Kind == schema.KindInt8 || f.Kind == schema.KindTimestamp:
				row[j] = int64(0)
			case f.Kind == schema.KindBigInt:
				row[j] = big.NewInt(0)
			case f.Kind == schema.KindBigDecimal:
				row[j] = "0"
			case f.Kind == schema.KindBytes:
				row[j] = []byte{}
			default:
				row[j] = "event " + strconv.Itoa(i)
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// BenchmarkSubscriptionFanout: see doc.go. It runs once whatever b.N (the load is set by the
// environment); use -benchtime 1x.
func BenchmarkSubscriptionFanout(b *testing.B) {
	cfg := loadConfig()
	limit, err := raiseNoFile()
	if err != nil {
		b.Fatal(err)
	}
	if limit < uint64(cfg.Clients)+1000 {
		b.Fatalf("open-file limit %d is too low for %d clients: raise the hard limit (ulimit -Hn)", limit, cfg.Clients)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sch, err := schema.Load()
	if err != nil {
		b.Fatal(err)
	}
	dbURL := storetest.NewDB(b)
	st, err := store.Open(ctx, dbURL, sch, store.Options{Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	var parent common.Hash
	commit := func(n int64) time.Time {
		ptr := store.BlockPtr{Number: n, ParentHash: parent, Timestamp: 1_700_000_000 + n,
			Hash: crypto.Keccak256Hash([]byte(fmt.Sprint("bench block ", n)))}
		batch := st.NewBatch()
		batch.StartBlock(ptr)
		for _, row := range eventsRows(sch, cfg.Ops, n) {
			batch.Set("Event", row)
		}
		if err := st.Commit(ctx, batch, store.Commit{Head: ptr, Window: []store.BlockPtr{ptr}, Finalized: n - 1}); err != nil {
			b.Fatal(err)
		}
		parent = ptr.Hash
		return time.Now()
	}
	commit(1)

	// The API side, as `echain-indexer serve` runs it: its own pool, query engine, subscriptions.
	pcfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		b.Fatal(err)
	}
	pcfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	reg := prometheus.NewRegistry()
	gql, err := graphql.NewHandler(pool, sch, graphql.Options{Logger: log, Registerer: reg, MaxConcurrent: 8})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := subscriptions.New(pool, gql.Engine(), subscriptions.Options{Logger: log, Registerer: reg,
		MaxConnections: cfg.Clients + 100, Workers: 4})
	if err != nil {
		b.Fatal(err)
	}
	hs, err := api.Listen(api.Options{Listen: "127.0.0.1:0", GraphQL: gql, Subscriptions: srv,
		OnShutdown: []func(context.Context) error{srv.Shutdown}, Log: log, Registerer: reg})
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = hs.Serve() }()
	runDone := make(chan struct{})
	go func() { defer close(runDone); _ = srv.Run(ctx) }()
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		_ = hs.Shutdown(sctx)
		cancel()
		<-runDone
	}()
	for deadline := time.Now().Add(10 * time.Second); gauge(reg, "echain_indexer_subscriptions_feed_connected") != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("the change feed did not connect")
		}
	}
	// The first block is processed (its results exist before any client arrives).
	time.Sleep(200 * time.Millisecond)

	before := measure()
	cfg.URL = "ws://" + hs.Addr() + api.PathGraphQL
	cfg.First = 2
	child, stdin, lines := startClients(b, cfg)
	defer func() { _ = child.Process.Kill(); _ = child.Wait() }()
	connectStart := time.Now()
	ready := expectLine(b, lines, "ready", 5*time.Minute)
	connectTook := time.Since(connectStart)
	time.Sleep(2 * time.Second) // let connection set-up garbage settle
	idle := measure()
	if n := srv.Connections(); n != cfg.Clients {
		b.Fatalf("%d connections open, want %d", n, cfg.Clients)
	}

	b.ResetTimer()
	for i := range cfg.Blocks {
		n := cfg.First + int64(i)
		t0 := commit(n)
		fmt.Fprintf(stdin, "block %d %d\n", n, t0.UnixNano())
		done := expectLine(b, lines, "done", 30*time.Second)
		if got := strings.Fields(done); len(got) != 3 || got[1] != strconv.FormatInt(n, 10) || got[2] != strconv.Itoa(cfg.Clients) {
			b.Fatalf("block %d: clients answered %q, want every one of %d to have it", n, done, cfg.Clients)
		}
		time.Sleep(cfg.Interval)
	}
	b.StopTimer()
	fmt.Fprintln(stdin, "end")
	var rep report
	if err := json.Unmarshal([]byte(strings.TrimPrefix(expectLine(b, lines, "report", time.Minute), "report ")), &rep); err != nil {
		b.Fatal(err)
	}
	if d := counter(reg, "echain_indexer_ws_dropped_clients_total"); d != 0 {
		b.Fatalf("%v clients were dropped", d)
	}

	heapPer := (float64(idle.heap+idle.stack) - float64(before.heap+before.stack)) / float64(cfg.Clients)
	rssPer := (float64(idle.rss) - float64(before.rss)) / float64(cfg.Clients)
	b.ReportMetric(rep.FirstP50, "first-p50-ms")
	b.ReportMetric(rep.LastP99, "last-p99-ms")
	b.ReportMetric(rep.DeliveryP99, "delivery-p99-ms")
	b.ReportMetric(heapPer, "heap+stack-B/conn")
	b.ReportMetric(rssPer, "rss-B/conn")
	b.Logf("%d clients (%s), %d distinct subscriptions, %d blocks %v apart; connect+subscribe %v (%s)",
		cfg.Clients, cfg.Proto, cfg.Ops, cfg.Blocks, cfg.Interval, connectTook.Round(time.Millisecond), ready)
	b.Logf("commit -> first delivery: p50 %.1f ms, max %.1f ms; commit -> last delivery: p50 %.1f ms, p99 %.1f ms, max %.1f ms; all deliveries p50 %.1f ms, p99 %.1f ms",
		rep.FirstP50, rep.FirstMax, rep.LastP50, rep.LastP99, rep.LastMax, rep.DeliveryP50, rep.DeliveryP99)
	b.Logf("server memory for %d idle subscribed connections: heap+stacks %+.1f MB (%.0f B/conn), RSS %+.1f MB (%.0f B/conn), goroutines %d -> %d",
		cfg.Clients, (float64(idle.heap+idle.stack)-float64(before.heap+before.stack))/1e6, heapPer,
		(float64(idle.rss)-float64(before.rss))/1e6, rssPer, before.goroutines, idle.goroutines)
	b.Logf("server: %v executions, %v messages sent, delivery histogram count %v",
		counter(reg, "echain_indexer_subscriptions_executions_total"), counter(reg, "echain_indexer_ws_messages_sent_total"),
		counter(reg, "echain_indexer_subscriptions_delivery_seconds"))
}

func gauge(reg *prometheus.Registry, name string) float64 { return counter(reg, name) }

// counter sums a metric's samples (histograms count observations).
func counter(reg *prometheus.Registry, name string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		return -1
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
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

// startClients runs the clients in a child process (this test binary) so that the server's
// memory and CPU figures are its own.
func startClients(b *testing.B, cfg benchConfig) (*exec.Cmd, io.Writer, <-chan string) {
	js, err := json.Marshal(cfg)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), clientEnv+"="+string(js))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	return cmd, stdin, lines
}

func expectLine(b *testing.B, lines <-chan string, prefix string, d time.Duration) string {
	b.Helper()
	select {
	case l, ok := <-lines:
		if !ok {
			b.Fatalf("the client process exited while the benchmark waited for %q", prefix)
		}
		if !strings.HasPrefix(l, prefix) {
			b.Fatalf("client process: %q, want %q", l, prefix)
		}
		return l
	case <-time.After(d):
		b.Fatalf("no %q from the client process within %v", prefix, d)
	}
	return ""
}

// report is what the client process measured, in milliseconds from each block's commit.
type report struct {
	FirstP50, FirstMax            float64
	LastP50, LastP99, LastMax     float64
	DeliveryP50, DeliveryP99      float64
	PerBlockFirst, PerBlockLast   []float64
	Deliveries, MissingDeliveries int
}

// percentile is the nearest-rank percentile of sorted values.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.999999) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

func sorted(v []float64) []float64 {
	out := append([]float64(nil), v...)
	sort.Float64s(out)
	return out
}
