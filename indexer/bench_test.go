package indexer_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/echain/echain-indexer/devchain"
	"github.com/echain/echain-indexer/indexer/source"
	"github.com/echain/echain-indexer/store"
	"github.com/echain/echain-indexer/store/storetest"
)

// benchHistory starts a dev chain holding a pre-built history. ECHAIN_BENCH_BLOCKS sets its
// length (default 2100: about 200,000 Echain logs), ECHAIN_BENCH_CACHE where built histories
// are kept (the first run builds it, which takes minutes).
func benchHistory(b *testing.B, defaultBlocks int) *devchain.Chain {
	b.Helper()
	blocks := defaultBlocks
	if v, err := strconv.Atoi(os.Getenv("ECHAIN_BENCH_BLOCKS")); err == nil && v > 0 {
		blocks = v
	}
	cache, err := devchain.BenchCacheDir()
	if err != nil {
		b.Fatal(err)
	}
	// On disk: the in-memory node's freezer would spend ~12 s of CPU about a minute after the
	// start (see devchain.Config.DataDir), in the middle of a measurement.
	c, err := devchain.StartWithHistory(context.Background(), devchain.Config{MetadataAddr: "off", DataDir: b.TempDir()},
		devchain.HistoryConfig{Blocks: blocks, CacheDir: cache}, quietLog())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	return c
}

// BenchmarkBackfill indexes a pre-built history from scratch into PostgreSQL with the indexer in
// a child process (so its peak RSS is its own, not the node's), and reports handled logs per
// second end to end, the peak RSS over the first and the second half of the run (flat when
// memory does not grow with chain length), and the bare eth_getLogs walk of the same range.
func BenchmarkBackfill(b *testing.B) {
	c := benchHistory(b, 2100)
	ctx := context.Background()
	head := c.Head().Number.Int64()

	// The yardstick: the node's bare getLogs walk over the same blocks and contracts' logs.
	reg := prometheus.NewRegistry()
	src, err := source.New(ctx, source.Config{Endpoints: []source.Endpoint{{HTTPURL: c.HTTPURL}}, LogsTimeout: time.Minute}, quietLog(), reg)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	sizer := source.NewRangeSizer(source.RangeSizerConfig{Initial: 100, Max: 2000, TargetLogs: 20_000, TargetDuration: 2 * time.Second})
	walkCPU := sampleCPU(0)
	walk, err := source.WalkLogs(ctx, src, ethereum.FilterQuery{}, c.Addresses.StartBlock, uint64(head), sizer, nil)
	if err != nil {
		b.Fatal(err)
	}
	walkCPU = sampleCPU(0).sub(walkCPU)
	b.Logf("bare getLogs walk %.2f s; CPU s: machine %.1f of %.1f, this process (node and walker) %.1f",
		walk.Duration.Seconds(), walkCPU.busy, walkCPU.total, walkCPU.self)
	// A second yardstick for the data the indexer needs beyond the logs (the Transaction
	// entity's gasUsed, effectiveGasPrice and value): every block's receipts and transactions,
	// the node's work in receipts mode, with nothing stored.
	rcptCPU := sampleCPU(0)
	rcptBegan := time.Now()
	rcptLogs := 0
	for from := c.Addresses.StartBlock; from <= uint64(head); from += 200 {
		contents, err := src.BlockContents(ctx, from, min(from+199, uint64(head)))
		if err != nil {
			b.Fatal(err)
		}
		for i := range contents {
			rcptLogs += len(contents[i].Logs)
		}
	}
	rcptWalk := time.Since(rcptBegan)
	rcptCPU = sampleCPU(0).sub(rcptCPU)
	b.Logf("bare receipts walk %.2f s (%d logs); CPU s: machine %.1f of %.1f, this process (node and walker) %.1f",
		rcptWalk.Seconds(), rcptLogs, rcptCPU.busy, rcptCPU.total, rcptCPU.self)

	var secs, withIndexes, logsPerSec, rss1, rss2 float64
	var cpu cpuSample
	for b.Loop() {
		b.StopTimer()
		s := chainSetup(c, storetest.NewDB(b))
		s.Config.FinalityDepth = 64
		if v, err := strconv.Atoi(os.Getenv("ECHAIN_BENCH_CONCURRENCY")); err == nil {
			s.Config.BackfillConcurrency = v
		}
		if v, err := strconv.Atoi(os.Getenv("ECHAIN_BENCH_TARGET_LOGS")); err == nil {
			s.Config.Range.TargetLogs = v
		}
		s.Config.BackfillLogSource = os.Getenv("ECHAIN_BENCH_LOG_SOURCE") // auto, logs, receipts
		s.Config.ProgressInterval = 2 * time.Second
		st, err := openStore(ctx, s.DB)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		began := time.Now()
		cpu0 := sampleCPU(0)
		stopProfile := profileNode(b)
		cmd := startChild(b, s)
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		reaped := false
		b.Cleanup(func() { // before startChild's own cleanup, which must not race this Wait
			if !reaped {
				_ = cmd.Process.Kill()
				<-exited
			}
		})
		// VmHWM (peak RSS since exec) at the half-way block and at the end: flat when memory does
		// not grow with chain length. (rusage's maxrss would count the forking parent.)
		half := (head + int64(c.Addresses.StartBlock)) / 2
		rss1 = 0
		for {
			h, err := st.Head(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if rss1 == 0 && h != nil && h.Number >= half {
				rss1 = float64(procStatusKB(cmd.Process.Pid, "VmHWM:")) / 1024
			}
			if h != nil && h.Number == head {
				break
			}
			select {
			case err := <-exited:
				reaped = true
				b.Fatalf("indexer exited: %v", err)
			default:
			}
			time.Sleep(100 * time.Millisecond)
		}
		took := time.Since(began)
		cpu = sampleCPU(cmd.Process.Pid).sub(cpu0)
		stopProfile()
		b.Logf("backfill %.2f s, %.0f logs/s; CPU s: machine %.1f of %.1f, node %.1f, indexer %.1f, rest (PostgreSQL, others) %.1f",
			took.Seconds(), float64(walk.Logs)/took.Seconds(), cpu.busy, cpu.total, cpu.self, cpu.child, cpu.busy-cpu.self-cpu.child)
		// Query indexes are built concurrently once the head is near; report when they are in.
		for {
			ready, err := st.IndexesReady(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if ready {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		withIndexes = time.Since(began).Seconds()
		b.StopTimer()
		rss2 = float64(procStatusKB(cmd.Process.Pid, "VmHWM:")) / 1024
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-exited
		reaped = true
		st.Close()
		secs = took.Seconds()
		logsPerSec = float64(walk.Logs) / secs
		b.StartTimer()
	}
	b.ReportMetric(logsPerSec, "logs/s")
	b.ReportMetric(secs, "s/backfill")
	b.ReportMetric(withIndexes, "s/with-indexes")
	b.ReportMetric(float64(walk.Logs), "logs")
	b.ReportMetric(rss1, "MB-peak-rss-at-half")
	b.ReportMetric(rss2, "MB-peak-rss")
	b.ReportMetric(walk.Duration.Seconds(), "s/bare-getLogs-walk")
	b.ReportMetric(cpu.self, "cpu-s-node")
	b.ReportMetric(cpu.child, "cpu-s-indexer")
	b.ReportMetric(cpu.busy-cpu.self-cpu.child, "cpu-s-rest")
	b.ReportMetric(cpu.total-cpu.busy, "cpu-s-idle")
	b.ReportMetric(secs/walk.Duration.Seconds(), "x-walk-time")
	b.ReportMetric(rcptWalk.Seconds(), "s/bare-receipts-walk")
	b.ReportMetric(secs/rcptWalk.Seconds(), "x-receipts-walk-time")
}

// profileNode writes a CPU profile of this process (the node) over the backfill to the file
// ECHAIN_BENCH_NODE_CPUPROFILE names (ECHAIN_CHILD_CPUPROFILE profiles the indexer).
func profileNode(b *testing.B) (stop func()) {
	name := os.Getenv("ECHAIN_BENCH_NODE_CPUPROFILE")
	if name == "" {
		return func() {}
	}
	f, err := os.Create(name)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// cpuSample is CPU time in seconds: the machine's busy and total (all cores), this process (the
// node) and one child process (the indexer).
type cpuSample struct{ busy, total, self, child float64 }

func (a cpuSample) sub(b cpuSample) cpuSample {
	return cpuSample{a.busy - b.busy, a.total - b.total, a.self - b.self, a.child - b.child}
}

// procStat is /proc/<pid>/stat's fields after the command's closing parenthesis (pgrp is the
// 3rd; utime, stime, cutime and cstime the 12th to 15th, in clock ticks); nil when the process
// is gone.
func procStat(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return strings.Fields(rest)
}

// sampleCPU reads /proc (clock ticks of 1/100 s); child 0 means none.
func sampleCPU(child int) cpuSample {
	const tick = 100.0
	var s cpuSample
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		for i, v := range f[1:] {
			n, _ := strconv.ParseFloat(v, 64)
			s.total += n / tick
			if i != 3 && i != 4 { // idle, iowait
				s.busy += n / tick
			}
		}
	}
	proc := func(pid int) float64 {
		f := procStat(pid)
		if len(f) < 13 {
			return 0
		}
		u, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		return (u + st) / tick
	}
	s.self = proc(os.Getpid())
	if child > 0 {
		s.child = proc(child)
	}
	return s
}

// procStatusKB reads a kB field of /proc/<pid>/status.
func procStatusKB(pid int, field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// commitTimes records when each block's commit notification arrived.
type commitTimes struct {
	ch chan [2]int64 // block, unix nanos
}

func listenCommits(b testing.TB, url string) *commitTimes {
	ctx, cancel := context.WithCancel(context.Background())
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+store.NotifyChannel); err != nil {
		b.Fatal(err)
	}
	ct := &commitTimes{ch: make(chan [2]int64, 4096)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			n, err := conn.WaitForNotification(ctx)
			if err != nil {
				return
			}
			now := time.Now().UnixNano()
			c, err := store.ParseChange(n.Payload)
			if err != nil || c.Revert {
				continue
			}
			ct.ch <- [2]int64{c.Block, now}
		}
	}()
	b.Cleanup(func() { cancel(); <-done; conn.Close(context.Background()) })
	return ct
}

// wait returns when the commit of block n (or a later one) arrives.
func (ct *commitTimes) wait(b testing.TB, n int64, timeout time.Duration) time.Time {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case x := <-ct.ch:
			if x[0] >= n {
				return time.Unix(0, x[1])
			}
		case <-t.C:
			b.Fatalf("block %d not committed within %s", n, timeout)
		}
	}
}

// BenchmarkRealtime measures block sealed on the node → its rows committed (the commit's
// notification received), per block of traffic, as p50 and p99.
func BenchmarkRealtime(b *testing.B) {
	c := startChain(b, devchain.Config{})
	tr := devchain.NewTraffic(c, devchain.TrafficConfig{TxsPerBlock: 8}, quietLog())
	steps(b, tr, 30)
	s := chainSetup(c, storetest.NewDB(b))
	if os.Getenv("ECHAIN_BENCH_ASYNC_COMMIT") != "" {
		s.DB += "&synchronous_commit=off"
	}
	in := startIndexer(b, s)
	waitSynced(b, in, c)
	ct := listenCommits(b, s.DB)
	var lat []time.Duration
	for b.Loop() {
		res, err := tr.Step(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		sealed := time.Now()
		at := ct.wait(b, int64(res.Head), 10*time.Second)
		lat = append(lat, at.Sub(sealed))
		b.StopTimer()
		time.Sleep(20 * time.Millisecond)
		b.StartTimer()
	}
	p50, p99 := percentile(lat, 50), percentile(lat, 99)
	b.ReportMetric(float64(p50.Microseconds())/1000, "ms-p50")
	b.ReportMetric(float64(p99.Microseconds())/1000, "ms-p99")
}

// BenchmarkReorg10 measures a reorganisation of depth 10: from the new branch being sealed on
// the node to the store holding it (revert and re-apply committed), and the follower's own
// detection-to-reverted time.
func BenchmarkReorg10(b *testing.B) {
	c := startChain(b, devchain.Config{MaxReorgDepth: 10})
	tr := devchain.NewTraffic(c, devchain.TrafficConfig{TxsPerBlock: 8}, quietLog())
	steps(b, tr, 30)
	s := chainSetup(c, storetest.NewDB(b))
	in := startIndexer(b, s)
	waitSynced(b, in, c)
	ct := listenCommits(b, s.DB)
	var lat []time.Duration
	for b.Loop() {
		b.StopTimer()
		steps(b, tr, 12)
		waitSynced(b, in, c)
		for len(ct.ch) > 0 {
			<-ct.ch
		}
		b.StartTimer()
		res, err := tr.Reorg(context.Background(), 10)
		if err != nil {
			b.Fatal(err)
		}
		sealed := time.Now()
		at := ct.wait(b, int64(res.Head), 10*time.Second)
		lat = append(lat, at.Sub(sealed))
	}
	revert := histogramMean(b, in.reg, "echain_indexer_reorg_revert_seconds")
	b.ReportMetric(float64(percentile(lat, 50).Microseconds())/1000, "ms-p50-sealed-to-consistent")
	b.ReportMetric(float64(percentile(lat, 100).Microseconds())/1000, "ms-max-sealed-to-consistent")
	b.ReportMetric(revert*1000, "ms-mean-detect-to-reverted")
}

func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[min(max(i-1, 0), len(s)-1)]
}

func histogramMean(b testing.TB, reg *prometheus.Registry, name string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				if h := m.GetHistogram(); h != nil && h.GetSampleCount() > 0 {
					return h.GetSampleSum() / float64(h.GetSampleCount())
				}
			}
		}
	}
	return 0
}
