package indexer_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	gethversion "github.com/ethereum/go-ethereum/version"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/echain/echain-indexer/indexer"
	"github.com/echain/echain-indexer/indexer/source"
	"github.com/echain/echain-indexer/internal/testwait"
	"github.com/echain/echain-indexer/store"
	"github.com/echain/echain-indexer/store/ddl"
	"github.com/echain/echain-indexer/store/storetest"
)

// BenchmarkBackfillGeth backfills benchHistory's pre-built history (ECHAIN_BENCH_BLOCKS blocks)
// from a real geth process, `geth --dev` over a datadir the history was imported into, in
// archive mode (every block's state kept) and full mode (recent state only: calls at old blocks
// fail), where users run it rather than in the test's own process. It reports what issue 21's
// table does: wall time, CPU of geth and of the indexer, the indexer's peak RSS, requests by
// method and bytes answered, and the ratios to two bare walks over the same blocks (every
// block's receipts and transactions; eth_getLogs of the Echain addresses). geth is built from
// the go-ethereum module at go.mod's version and kept in <user cache>/echain-indexer/tools.
func BenchmarkBackfillGeth(b *testing.B) {
	geth := gethBinary(b)
	c := benchHistory(b, 2100)
	dir := b.TempDir()
	genesis, blocks, err := c.ExportForGeth(dir)
	if err != nil {
		b.Fatal(err)
	}
	addrs, head, parent := c.Addresses, c.Head().Number.Uint64(), c.Head().ParentHash
	_ = c.Close() // the in-process node is not what is measured
	for _, mode := range []string{"archive", "full"} {
		b.Run(mode, func(b *testing.B) {
			node := startGeth(b, geth, mode, genesis, blocks, head, parent)
			proxy := newCountingProxy(b, node.url)
			ctx := context.Background()
			src, err := source.New(ctx, source.Config{Endpoints: []source.Endpoint{{HTTPURL: proxy.url}}, LogsTimeout: time.Minute},
				quietLog(), prometheus.NewRegistry())
			if err != nil {
				b.Fatal(err)
			}
			defer src.Close()

			measure := func(fn func()) measured {
				proxy.reset()
				g0, s0 := procCPU(node.pid), procCPU(os.Getpid())
				t0 := time.Now()
				fn()
				w := measured{wall: time.Since(t0).Seconds(), gethCPU: procCPU(node.pid) - g0, selfCPU: procCPU(os.Getpid()) - s0}
				w.calls, w.bytes = proxy.snapshot()
				return w
			}
			// The getLogs walk goes first: a freshly started geth answers its first reads from
			// disk, and the receipts walk is the yardstick the aims are stated against.
			logs := measure(func() {
				sizer := source.NewRangeSizer(source.RangeSizerConfig{Initial: 100, Max: 2000, TargetLogs: 20_000, TargetDuration: 2 * time.Second})
				q := ethereum.FilterQuery{}
				if _, err := source.WalkLogs(ctx, src, q, addrs.StartBlock, head, sizer, nil); err != nil {
					b.Fatal(err)
				}
			})
			var chainLogs, chainTxs int
			rcpt := measure(func() {
				for from := addrs.StartBlock; from <= head; from += 200 {
					contents, err := src.BlockContents(ctx, from, min(from+199, head))
					if err != nil {
						b.Fatal(err)
					}
					for i := range contents {
						chainLogs += len(contents[i].Logs)
						chainTxs += len(contents[i].Txs)
					}
				}
			})

			var run measured
			var rss, rssIndexed, withIndexes, pgCPU, pgCPUIndexed float64
			var sizes []tableSize
			var scans string
			for b.Loop() {
				b.StopTimer()
				s := setup{DB: storetest.NewDB(b), Endpoints: []source.Endpoint{{Name: "geth", HTTPURL: proxy.url}}, Addresses: addrs,
					Config: indexer.Config{FinalityDepth: 64, ProgressInterval: 2 * time.Second}}
				s.Config.BackfillLogSource = os.Getenv("ECHAIN_BENCH_LOG_SOURCE")
				// The benchmark's own sessions are named, so that PostgreSQL's CPU counts only the
				// indexer's backends (and the autovacuum and parallel workers of its database).
				st, err := openStore(ctx, s.DB+"&application_name="+benchAppName)
				if err != nil {
					b.Fatal(err)
				}
				pg := watchBackends(b, s.DB)
				b.StartTimer()
				var cmd *exec.Cmd
				var childCPU float64
				exited := make(chan error, 1)
				began := time.Now()
				run = measure(func() {
					cmd = startChild(b, s)
					go func() { exited <- cmd.Wait() }()
					testwait.For(b, "the indexer to reach geth's head", func() (bool, string) {
						h, err := st.Head(ctx)
						if err != nil {
							b.Fatal(err)
						}
						select {
						case err := <-exited:
							b.Fatalf("indexer exited: %v", err)
						default:
						}
						return h != nil && uint64(h.Number) == head, fmt.Sprintf("at %+v", h)
					})
					childCPU = procCPU(cmd.Process.Pid)
				})
				pgCPU = pg.cpu()
				rss = float64(procStatusKB(cmd.Process.Pid, "VmHWM:")) / 1024
				scans = tableScans(b, st) // before the query indexes' builds read every table
				// The query indexes are built once the head is near (EnsureIndexes): the table's
				// PostgreSQL CPU and storage are with them, as the API serves.
				testwait.For(b, "the query indexes", func() (bool, string) {
					ready, err := st.IndexesReady(ctx)
					if err != nil {
						b.Fatal(err)
					}
					return ready, "building"
				})
				withIndexes = time.Since(began).Seconds()
				pgCPUIndexed = pg.cpu()
				b.StopTimer()
				pg.stop()
				rssIndexed = float64(procStatusKB(cmd.Process.Pid, "VmHWM:")) / 1024
				_ = cmd.Process.Signal(syscall.SIGTERM)
				<-exited
				sizes = entitySizes(b, st)
				st.Close()
				run.selfCPU = childCPU // the indexer's, not the benchmark's
				b.StartTimer()
			}
			b.Logf("geth %s, %d blocks, %d logs, %d transactions; machine shared, load %s", mode, head-addrs.StartBlock+1, chainLogs, chainTxs, loadavg())
			b.Logf("indexer peak RSS %.0f MiB at the head, %.0f MiB with the query indexes built (%.1f s); PostgreSQL CPU %.2f s at the head, %.2f s with the indexes",
				rss, rssIndexed, withIndexes, pgCPU, pgCPUIndexed)
			var total, totalRows int64
			for _, z := range sizes {
				total += z.heap + z.index
				totalRows += z.versions
				b.Logf("%-12s %7d versions (%6d current): table %6.1f MiB %4.0f B/version, indexes %6.1f MiB %4.0f B/version",
					z.typ, z.versions, z.current, float64(z.heap)/(1<<20), float64(z.heap)/float64(max(z.versions, 1)),
					float64(z.index)/(1<<20), float64(z.index)/float64(max(z.versions, 1)))
				b.Logf("%-12s indexes, B/version:%s", z.typ, z.indexes)
			}
			b.Logf("PostgreSQL's reads of the entity tables during the backfill: %s", scans)
			b.Logf("entity tables %.1f MiB for %d versions (%.2fx Ponder's 97 MiB)", float64(total)/(1<<20), totalRows, float64(total)/(97<<20))
			b.ReportMetric(float64(total)/(1<<20), "MiB-entity-tables")
			b.ReportMetric(pgCPUIndexed, "cpu-s-postgres")
			b.ReportMetric(rssIndexed, "MiB-peak-rss-indexed")
			for _, x := range []struct {
				name string
				w    measured
			}{{"indexer backfill", run}, {"bare receipts walk", rcpt}, {"bare getLogs walk", logs}} {
				b.Logf("%-18s wall %6.2f s, geth CPU %6.2f s, client CPU %6.2f s, %7.1f MB answered, requests %s",
					x.name, x.w.wall, x.w.gethCPU, x.w.selfCPU, float64(x.w.bytes)/1e6, formatCalls(x.w.calls))
			}
			b.ReportMetric(run.wall, "s/backfill")
			b.ReportMetric(run.gethCPU, "cpu-s-geth")
			b.ReportMetric(run.selfCPU, "cpu-s-indexer")
			b.ReportMetric(rss, "MiB-peak-rss")
			b.ReportMetric(float64(run.bytes)/1e6, "MB-answered")
			b.ReportMetric(run.wall/rcpt.wall, "x-receipts-walk-time")
			b.ReportMetric(run.gethCPU/rcpt.gethCPU, "x-receipts-walk-geth-cpu")
			b.ReportMetric(run.wall/logs.wall, "x-getLogs-walk-time")
			b.ReportMetric(run.gethCPU/logs.gethCPU, "x-getLogs-walk-geth-cpu")
			b.ReportMetric(float64(run.calls["eth_call"]), "eth_calls")
			if dir := os.Getenv("ECHAIN_BENCH_PONDER"); dir != "" && mode == "archive" {
				// The yardstick of issue 21, after the indexer on the same node (and after its
				// figures, which a failing Ponder run keeps): Ponder reads getEventDetails at
				// historical blocks, which only archive mode serves.
				chainID, err := rpcUint(node.url, "eth_chainId")
				if err != nil {
					b.Fatal(err)
				}
				p := runPonder(b, dir, node, proxy, chainID, addrs, head) // after b.Loop: untimed
				reportPonder(b, p, run, rssIndexed, sizes)
			}
		})
	}
}

// measured is one client's run against geth: a bare walk or the indexer's backfill.
type measured struct {
	wall, gethCPU, selfCPU float64
	calls                  map[string]int
	bytes                  int64
}

// gethBinary builds geth from the go-ethereum module at go.mod's version (go install, so that
// its own go.sum applies) once per version and returns its path.
func gethBinary(b *testing.B) string {
	b.Helper()
	// The linked go-ethereum is go.mod's (a test binary's build info lists no modules).
	version := fmt.Sprintf("v%d.%d.%d", gethversion.Major, gethversion.Minor, gethversion.Patch)
	cache, err := os.UserCacheDir()
	if err != nil {
		b.Fatal(err)
	}
	dir := filepath.Join(cache, "echain-indexer", "tools", "geth-"+version)
	bin := filepath.Join(dir, "geth")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	b.Logf("building geth %s into %s (once)", version, dir)
	cmd := exec.Command("go", "install", "github.com/ethereum/go-ethereum/cmd/geth@"+version)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=")
	cmd.Dir = os.TempDir() // outside this module: cmd/geth's dependencies are not in our go.sum
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build geth: %v\n%s", err, out)
	}
	return bin
}

type gethNode struct {
	url string
	pid int
}

// startGeth initialises a datadir from the exported genesis, imports the history and serves it
// with geth --dev (HTTP on a free port), until the benchmark ends.
func startGeth(b *testing.B, bin, mode, genesis, blocks string, head uint64, parent common.Hash) gethNode {
	b.Helper()
	dir := b.TempDir()
	scheme := "path" // geth's default; full mode keeps the state of the last 128 blocks
	if mode == "archive" {
		scheme = "hash"
	}
	initFlags := []string{"--datadir", dir, "--state.scheme", scheme}
	common := append(initFlags[:len(initFlags):len(initFlags)], "--gcmode", mode, "--cache", "256")
	gethRun := func(command, file string) {
		flags := common
		if command == "init" {
			flags = initFlags // init takes no --gcmode or --cache
		}
		args := append(append([]string{command}, flags...), file) // flags before the file: cli stops at it
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			b.Fatalf("geth %s: %v\n%s", command, err, tail(out))
		}
	}
	// An imported datadir is kept per history and mode: the import re-executes every block,
	// minutes on a busy machine, and the benchmark measures serving, not importing.
	cached, err := importedDatadir(bin, mode, genesis, head, parent)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cached, "done")); err == nil {
		if out, err := exec.Command("cp", "-a", cached+"/.", dir).CombinedOutput(); err != nil {
			b.Fatalf("copy the cached datadir: %v\n%s", err, out)
		}
	} else {
		gethRun("init", genesis)
		gethRun("import", blocks)
		_ = os.RemoveAll(cached)
		if err := os.MkdirAll(cached, 0o755); err != nil {
			b.Fatal(err)
		}
		// Copied before the node starts on it: the cache holds exactly the imported chain.
		if out, err := exec.Command("cp", "-a", dir+"/.", cached).CombinedOutput(); err != nil {
			b.Fatalf("cache the datadir: %v\n%s", err, out)
		}
		if err := os.WriteFile(filepath.Join(cached, "done"), nil, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	port := freePort(b)
	cmd := exec.Command(bin, append([]string{"--dev", "--dev.period", "0", "--nodiscover", "--maxpeers", "0", "--port", "0",
		"--authrpc.port", fmt.Sprint(freePort(b)), "--ipcdisable", "--http", "--http.addr", "127.0.0.1",
		"--http.port", fmt.Sprint(port), "--http.api", "eth,net,web3", "--verbosity", "2"}, common...)...)
	var logBuf bytes.Buffer
	cmd.Stderr = &syncWriter{w: &logBuf}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	u := fmt.Sprintf("http://127.0.0.1:%d", port)
	testwait.For(b, "geth to serve the imported history", func() (bool, string) {
		n, err := blockNumber(u)
		return err == nil && n >= head, fmt.Sprintf("block %d, %v; log %s", n, err, tail(logBuf.Bytes()))
	})
	return gethNode{url: u, pid: cmd.Process.Pid}
}

// importedDatadir is where the datadir that geth imports the history into is cached: a
// directory named by the geth binary's version, the mode, the genesis and the head's number and
// parent, under the user cache beside the geth binary. Not by the blocks file: the in-process
// node seals an empty head block after importing the cached history, with a random prevRandao
// (go-ethereum's simulated beacon), so the file's last block differs from run to run while
// everything an entity is made of stays the same.
func importedDatadir(bin, mode, genesis string, head uint64, parent common.Hash) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%d\x00%x\x00", filepath.Base(filepath.Dir(bin)), mode, head, parent)
	data, err := os.ReadFile(genesis)
	if err != nil {
		return "", err
	}
	h.Write(data)
	return filepath.Join(filepath.Dir(filepath.Dir(bin)), "geth-datadirs", fmt.Sprintf("%s-%x", mode, h.Sum(nil)[:8])), nil
}

func blockNumber(u string) (uint64, error) { return rpcUint(u, "eth_blockNumber") }

// rpcUint calls a JSON-RPC method without parameters that answers a hex quantity.
func rpcUint(u, method string) (uint64, error) {
	resp, err := http.Post(u, "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"`+method+`","params":[]}`))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var r struct{ Result string }
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, err
	}
	var n uint64
	_, err = fmt.Sscanf(r.Result, "0x%x", &n)
	return n, err
}

func freePort(b *testing.B) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func tail(out []byte) string {
	if len(out) > 2000 {
		out = out[len(out)-2000:]
	}
	return string(out)
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// countingProxy forwards JSON-RPC to the node and counts calls by method (batch elements each)
// and the bytes of the answers.
type countingProxy struct {
	url   string
	mu    sync.Mutex
	calls map[string]int
	bytes int64
}

var methodRE = regexp.MustCompile(`"method"\s*:\s*"([^"]+)"`)

func newCountingProxy(b *testing.B, target string) *countingProxy {
	t, err := url.Parse(target)
	if err != nil {
		b.Fatal(err)
	}
	p := &countingProxy{calls: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(t)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		p.mu.Lock()
		for _, m := range methodRE.FindAllSubmatch(body, -1) {
			p.calls[string(m[1])]++
		}
		p.mu.Unlock()
		cw := &countWriter{ResponseWriter: w}
		rp.ServeHTTP(cw, r)
		p.mu.Lock()
		p.bytes += cw.n
		p.mu.Unlock()
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close() })
	p.url = "http://" + ln.Addr().String()
	return p
}

func (p *countingProxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls, p.bytes = map[string]int{}, 0
}

func (p *countingProxy) snapshot() (map[string]int, int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.calls))
	for k, v := range p.calls {
		out[k] = v
	}
	return out, p.bytes
}

type countWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

func formatCalls(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&sb, "%s %d, ", k, m[k])
	}
	return strings.TrimSuffix(sb.String(), ", ")
}

// procCPU is a process's user+system CPU seconds so far.
func procCPU(pid int) float64 { return sampleCPU(pid).child }

func loadavg() string {
	f, err := os.Open("/proc/loadavg")
	if err != nil {
		return "?"
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	return strings.Join(strings.Fields(line)[:3], " ")
}

// benchAppName names the benchmark's own PostgreSQL sessions.
const benchAppName = "echain-bench"

// backendWatch sums the CPU of a database's PostgreSQL backends other than the benchmark's:
// it lists them every 200 ms and keeps each one's last CPU reading, so a backend that exits
// loses at most its last 200 ms. Server-wide processes (WAL writer, checkpointer) serve every
// database on the shared server and are not counted.
type backendWatch struct {
	mu    sync.Mutex
	last  map[int]float64
	done  chan struct{}
	ended chan struct{}
}

func watchBackends(b *testing.B, dbURL string) *backendWatch {
	b.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL+"&application_name="+benchAppName)
	if err != nil {
		b.Fatal(err)
	}
	w := &backendWatch{last: map[int]float64{}, done: make(chan struct{}), ended: make(chan struct{})}
	go func() {
		defer close(w.ended)
		defer conn.Close(context.Background())
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			w.sample(ctx, conn)
			select {
			case <-w.done:
				return
			case <-t.C:
			}
		}
	}()
	b.Cleanup(w.stop)
	return w
}

func (w *backendWatch) sample(ctx context.Context, conn *pgx.Conn) {
	rows, err := conn.Query(ctx, `SELECT pid FROM pg_stat_activity
WHERE datname = current_database() AND application_name IS DISTINCT FROM $1 AND pid <> pg_backend_pid()`, benchAppName)
	if err != nil {
		return
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range pids {
		if c := procCPU(int(p)); c > 0 {
			w.last[int(p)] = c
		}
	}
}

func (w *backendWatch) cpu() float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	var sum float64
	for _, c := range w.last {
		sum += c
	}
	return sum
}

func (w *backendWatch) stop() {
	select {
	case <-w.done:
	default:
		close(w.done)
	}
	<-w.ended
}

// tableSize is an entity table's storage after a backfill.
type tableSize struct {
	typ               string
	versions, current int64
	heap, index       int64  // bytes: table with TOAST, and all its indexes
	indexes           string // each index's bytes per version
}

func entitySizes(b *testing.B, st *store.Store) []tableSize {
	b.Helper()
	ctx := context.Background()
	var out []tableSize
	for _, t := range st.Layout().Tables {
		z := tableSize{typ: t.Type.Name}
		var err error
		if z.versions, z.current, err = store.CountVersions(ctx, st.Pool(), t); err != nil {
			b.Fatal(err)
		}
		if err := st.Pool().QueryRow(ctx, "SELECT pg_table_size($1::regclass), pg_indexes_size($1::regclass)", t.Name).Scan(&z.heap, &z.index); err != nil {
			b.Fatal(err)
		}
		rows, err := st.Pool().Query(ctx, `SELECT c.relname, pg_relation_size(c.oid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = $1::regclass ORDER BY 2 DESC`, t.Name)
		if err != nil {
			b.Fatal(err)
		}
		for rows.Next() {
			var n string
			var sz int64
			if err := rows.Scan(&n, &sz); err != nil {
				b.Fatal(err)
			}
			z.indexes += fmt.Sprintf(" %s=%.0f", n, float64(sz)/float64(max(z.versions, 1)))
		}
		rows.Close()
		out = append(out, z)
	}
	return out
}

// tableScans says how the writer read the entity tables (PostgreSQL's statistics, flushed
// within a second of each transaction): a sequential scan there is a whole table read per
// commit, what an index lookup planned on a table without statistics can turn into.
func tableScans(b *testing.B, st *store.Store) string {
	b.Helper()
	ctx := context.Background()
	rows, err := st.Pool().Query(ctx, `SELECT relname, coalesce(seq_scan, 0), coalesce(seq_tup_read, 0), coalesce(idx_scan, 0), n_tup_upd
FROM pg_stat_user_tables WHERE schemaname = $1 ORDER BY relname`, ddl.EntitySchema)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var sb strings.Builder
	for rows.Next() {
		var name string
		var seq, seqRows, idx, upd int64
		if err := rows.Scan(&name, &seq, &seqRows, &idx, &upd); err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(&sb, "%s %d seq scans (%d rows), %d index scans, %d updates; ", name, seq, seqRows, idx, upd)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	return strings.TrimSuffix(sb.String(), "; ")
}
