package indexer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/echain/echain-indexer/devchain"
	"github.com/echain/echain-indexer/internal/cli/clitest"
	"github.com/echain/echain-indexer/internal/testwait"
	"github.com/echain/echain-indexer/store/storetest"
)

// ponderRun is what BenchmarkBackfillGeth measures of the Ponder yardstick (bench/ponder).
type ponderRun struct {
	wall, cpu, pgCPU float64
	gethCPU          float64
	rssMiB           float64 // the process tree's summed peak RSS
	counts           map[string]int64
	tablesMiB        float64 // entity tables with their indexes
	syncMiB          float64 // Ponder's RPC cache (the ponder_sync schema)
	calls            map[string]int
	bytes            int64
}

// ponderSchema is the PostgreSQL schema Ponder writes its tables into (its --schema).
const ponderSchema = "echain"

// ponderTables are bench/ponder/ponder.schema.ts's entity tables, by schema.graphql type.
var ponderTables = []string{"Event", "Ticket", "Transfer", "Transaction", "Organizer", "Listing", "Attendance", "Reward", "Referral"}

// runPonder runs the Ponder app in dir (npm ci done there) against the node behind proxy, on
// a database of its own, from the contracts' start block until Ponder reports head indexed,
// and measures it like the indexer: wall time, CPU of its process tree and of its PostgreSQL
// backends, peak RSS, requests by method and bytes answered, and what it stored.
func runPonder(b *testing.B, dir string, node gethNode, proxy *countingProxy, chainID uint64, addrs devchain.Addresses, head uint64) ponderRun {
	b.Helper()
	dir, err := filepath.Abs(dir)
	if err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(dir, "node_modules", ".bin")
	if _, err := os.Stat(filepath.Join(bin, "ponder")); err != nil {
		b.Fatalf("ECHAIN_BENCH_PONDER=%s: no Ponder installed there (run npm ci in it): %v", dir, err)
	}
	db := storetest.NewDB(b)
	port := freePort(b)
	// The bare binary, not npx or npm run: the process tree measured is Ponder's own. Its
	// node_modules/.bin comes first in PATH for the Node.js 22 that Ponder 0.17 requires.
	cmd := exec.Command(filepath.Join(bin, "ponder"), "start", "--schema", ponderSchema, "--port", strconv.Itoa(port))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"DATABASE_URL="+db,
		"PONDER_TELEMETRY_DISABLED=true",
		"ECHAIN_PONDER_RPC="+proxy.url,
		fmt.Sprintf("ECHAIN_PONDER_CHAIN_ID=%d", chainID),
		fmt.Sprintf("ECHAIN_PONDER_START_BLOCK=%d", addrs.StartBlock),
		"ECHAIN_PONDER_EVENT_FACTORY="+addrs.EventFactory.Hex(),
		"ECHAIN_PONDER_MARKETPLACE="+addrs.Marketplace.Hex(),
		"ECHAIN_PONDER_POAP_ATTENDANCE="+addrs.POAPAttendance.Hex(),
		"ECHAIN_PONDER_INCENTIVE_MANAGER="+addrs.IncentiveManager.Hex(),
	)
	var out bytes.Buffer
	cmd.Stdout = &syncWriter{w: &out}
	cmd.Stderr = cmd.Stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its own group: the tree is measured and stopped whole
	pg := watchBackends(b, db)
	proxy.reset()
	g0 := procCPU(node.pid)
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatalf("start ponder: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() { clitest.StopGroup(cmd.Process.Pid, exited, 30*time.Second) }
	var stopOnce sync.Once
	b.Cleanup(func() { stopOnce.Do(stop) })
	tree := watchTree(cmd.Process.Pid)
	defer tree.stop()

	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	// Ponder takes minutes where the indexer takes seconds (13 on this machine at load 11):
	// more than testwait's bound for a benchmark.
	testwait.ForUntil(b, time.Now().Add(45*time.Minute), "Ponder to index up to geth's head", func() (bool, string) {
		select {
		case err := <-exited:
			b.Fatalf("ponder exited: %v\n%s", err, tail(out.Bytes()))
		default:
		}
		// /ready answers 200 once the historical backfill is done; /status names the latest
		// block indexed, which must be the head (the last blocks may go through realtime sync).
		// Ponder answers on the event loop that indexes: asked every 200 ms, not every 10.
		time.Sleep(200 * time.Millisecond)
		ready, err := http.Get(base + "/ready")
		if err != nil {
			return false, err.Error()
		}
		_ = ready.Body.Close()
		at, status := ponderBlock(base)
		return ready.StatusCode == http.StatusOK && at == head, fmt.Sprintf("ready %d, status %s; log %s", ready.StatusCode, status, tail(out.Bytes()))
	})
	r := ponderRun{wall: time.Since(t0).Seconds(), gethCPU: procCPU(node.pid) - g0}
	r.cpu, r.rssMiB = tree.sample()
	r.pgCPU = pg.cpu()
	pg.stop()
	r.calls, r.bytes = proxy.snapshot()
	stopOnce.Do(stop)

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db+"&application_name="+benchAppName)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	r.counts = map[string]int64{}
	for _, typ := range ponderTables {
		var n, size int64
		table := pgx.Identifier{ponderSchema, strings.ToLower(typ)}.Sanitize()
		if err := conn.QueryRow(ctx, "SELECT count(*), pg_total_relation_size($1::regclass) FROM "+table, table).Scan(&n, &size); err != nil {
			b.Fatalf("count ponder's %s: %v", typ, err)
		}
		r.counts[typ] = n
		r.tablesMiB += float64(size) / (1 << 20)
	}
	var sync int64
	if err := conn.QueryRow(ctx, `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'ponder_sync' AND c.relkind IN ('r', 'm')`).Scan(&sync); err != nil {
		b.Fatal(err)
	}
	r.syncMiB = float64(sync) / (1 << 20)
	return r
}

// ponderBlock is the latest block Ponder's /status says it indexed, with the answer.
func ponderBlock(base string) (uint64, string) {
	resp, err := http.Get(base + "/status")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var st map[string]struct {
		Block *struct{ Number uint64 }
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return 0, string(body)
	}
	for _, c := range st {
		if c.Block != nil {
			return c.Block.Number, string(body)
		}
	}
	return 0, string(body)
}

// treeWatch follows a process group: every 200 ms it reads each member's CPU, its own and its
// waited children's (a member that exited and was waited for is counted by its parent), and
// peak RSS.
type treeWatch struct {
	pgid  int
	mu    sync.Mutex
	cpu   float64 // seconds, summed over the members of the latest reading
	rssKB float64 // the members' summed peak RSS, at the latest reading
	done  chan struct{}
	ended chan struct{}
}

func watchTree(pgid int) *treeWatch {
	w := &treeWatch{pgid: pgid, done: make(chan struct{}), ended: make(chan struct{})}
	go func() {
		defer close(w.ended)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			w.read()
			select {
			case <-w.done:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

func (w *treeWatch) read() {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	var cpu, rss float64
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f := procStat(pid)
		if len(f) < 15 || f[2] != strconv.Itoa(w.pgid) {
			continue
		}
		for _, v := range f[11:15] {
			n, _ := strconv.ParseFloat(v, 64)
			cpu += n / 100
		}
		rss += float64(procStatusKB(pid, "VmHWM:"))
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if cpu >= w.cpu { // a member exiting between two reads of /proc can make one reading short
		w.cpu = cpu
	}
	w.rssKB = max(w.rssKB, rss)
}

// sample reads the group now and returns its CPU seconds so far and its members' summed peak
// RSS in MiB.
func (w *treeWatch) sample() (cpu, rssMiB float64) {
	w.read()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cpu, w.rssKB / 1024
}

func (w *treeWatch) stop() {
	select {
	case <-w.done:
	default:
		close(w.done)
	}
	<-w.ended
}

// reportPonder logs and reports Ponder's figures beside the indexer's run on the same node,
// and fails when the two hold different numbers of current entities of any type.
func reportPonder(b *testing.B, p ponderRun, run measured, rssMiB float64, sizes []tableSize) {
	b.Helper()
	b.Logf("Ponder            wall %6.2f s (%.2fx the indexer's), geth CPU %6.2f s, client CPU %6.2f s (%.2fx), PostgreSQL CPU %.2f s, peak RSS %.0f MiB (%.2fx), %7.1f MB answered, requests %s",
		p.wall, p.wall/run.wall, p.gethCPU, p.cpu, p.cpu/run.selfCPU, p.pgCPU, p.rssMiB, p.rssMiB/rssMiB, float64(p.bytes)/1e6, formatCalls(p.calls))
	b.Logf("Ponder            entity tables %.1f MiB, RPC cache (ponder_sync) %.1f MiB", p.tablesMiB, p.syncMiB)
	var mismatch []string
	for _, z := range sizes {
		if n, ok := p.counts[z.typ]; !ok || n != z.current {
			mismatch = append(mismatch, fmt.Sprintf("%s: indexer %d, Ponder %d", z.typ, z.current, n))
		}
	}
	b.Logf("Ponder            entities: %v", p.counts)
	if len(mismatch) > 0 || len(sizes) != len(p.counts) {
		b.Errorf("entity counts differ between the indexer and Ponder (%d types against %d): %s", len(sizes), len(p.counts), strings.Join(mismatch, "; "))
	}
	b.ReportMetric(p.wall, "s/ponder")
	b.ReportMetric(p.wall/run.wall, "x-ponder-time")
	b.ReportMetric(p.cpu, "cpu-s-ponder")
	b.ReportMetric(p.rssMiB, "MiB-peak-rss-ponder")
}
