package indexer_test

import (
	"context"
	"fmt"
	"math"
	"math/big"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/echain/echain-indexer/devchain"
	"github.com/echain/echain-indexer/indexer/echain"
	"github.com/echain/echain-indexer/indexer/echain/echaintest"
	"github.com/echain/echain-indexer/indexer/source"
	"github.com/echain/echain-indexer/indexer/source/rpcproxy"
	"github.com/echain/echain-indexer/store/storetest"
)

// BenchmarkProxyBackfill backfills the pre-built history (benchHistory: ECHAIN_BENCH_BLOCKS,
// ECHAIN_BENCH_CACHE) through the proxy playing the production provider (rpcproxy.ProductionLike:
// 50±10 ms, 25 requests/s, a 10,000-block eth_getLogs cap, batches of 100) and reports what a
// per-request bill would count: requests and batch elements per 1,000 Echain logs, bytes
// received, 429s met, and the wall time against the ideal: the least requests that fetch the
// same data (the logs in 10,000-block or 10,000-log answers; the handled transactions' data in
// batches of 100, by block or by transaction as idealTxCalls says; the event-details calls
// calldata cannot replace, in batches of 100) at the allowed rate, plus one round trip.
// The indexer caps its requests at the provider's rate, as an operator sets
// rpc.requests_per_second to the plan's; ECHAIN_BENCH_RPS overrides the cap (0: none, to see
// what the provider's 429s cost).
func BenchmarkProxyBackfill(b *testing.B) {
	backfillThroughProvider(b, benchHistory(b, 2100))
}

// backfillThroughProvider is BenchmarkProxyBackfill's measurement, on any chain.
func backfillThroughProvider(b *testing.B, c *devchain.Chain) {
	head := c.Head().Number.Int64()
	prof := rpcproxy.ProductionLike()
	proxy, err := rpcproxy.New(c.HTTPURL)
	if err != nil {
		b.Fatal(err)
	}
	defer proxy.Close()

	rps := prof.RequestsPerSecond
	if v := os.Getenv("ECHAIN_BENCH_RPS"); v != "" {
		if rps, err = strconv.ParseFloat(v, 64); err != nil {
			b.Fatalf("ECHAIN_BENCH_RPS: %v", err)
		}
	}

	var wall time.Duration
	var use rpcproxy.Usage
	var logs, blocksWithLogs, events, rss, rssGrowth float64
	var txElems, indirect float64
	for b.Loop() {
		b.StopTimer()
		s := chainSetup(c, storetest.NewDB(b))
		s.Endpoints = []source.Endpoint{{Name: "provider", HTTPURL: proxy.URL(), WSURL: c.WSURL, RequestsPerSecond: rps}}
		s.Config.FinalityDepth = 64
		s.Config.ProgressInterval = 2 * time.Second
		proxy.SetProvider(prof)
		rss0 := resetPeakRSS(b)
		b.StartTimer()
		began := time.Now()
		in := startIndexer(b, s)
		waitSynced(b, in, c)
		wall = time.Since(began)
		b.StopTimer()
		rss = float64(procStatusKB(os.Getpid(), "VmHWM:")) / 1024
		rssGrowth = rss - rss0
		use = proxy.Usage()
		logs = counter(b, in.reg, "echain_indexer_logs_indexed_total", nil)
		st := readState(b, s.DB)
		events = float64(st.Count("Event"))
		txElems, indirect = idealTxCalls(b, c, st)
		seen := map[string]bool{}
		for _, tx := range st["Transaction"] {
			seen[fmt.Sprint(tx["blockNumber"])] = true
		}
		blocksWithLogs = float64(len(seen))
		in.stop()
		b.StartTimer()
	}
	blocks := float64(head - int64(c.Addresses.StartBlock) + 1)
	getLogs := math.Ceil(max(blocks/float64(prof.MaxLogsRange), logs/float64(prof.MaxLogs)))
	ideal := getLogs + math.Ceil(txElems/float64(prof.MaxBatch)) + math.Ceil(indirect/float64(prof.MaxBatch))
	idealSecs := ideal/prof.RequestsPerSecond + prof.Latency.Seconds()
	// The floor without the rule against unrelated receipts: every block with handled logs by
	// its receipts and body, every event by a call (the ideal of the first measurements).
	floor := getLogs + math.Ceil(2*blocksWithLogs/float64(prof.MaxBatch)) + math.Ceil(events/float64(prof.MaxBatch))
	per := func(v int64) float64 { return float64(v) / max(logs, 1) * 1000 }
	b.ReportMetric(wall.Seconds(), "wall-s")
	b.ReportMetric(per(use.Requests), "requests/1k-logs")
	b.ReportMetric(per(use.Elements), "elements/1k-logs")
	b.ReportMetric(float64(use.BytesSent)/(1<<20), "MiB-received")
	b.ReportMetric(ideal, "ideal-requests")
	b.ReportMetric(floor, "floor-requests")
	b.ReportMetric(float64(use.BytesSent)/max(logs, 1)*1000/1024, "KiB-received/1k-logs")
	b.ReportMetric(idealSecs, "ideal-s")
	b.ReportMetric(wall.Seconds()/idealSecs, "x-ideal")
	b.ReportMetric(rss, "MB-peak-rss-all")
	b.ReportMetric(rssGrowth, "MB-peak-rss-growth")
	b.Logf("%.0f blocks, %.0f Echain logs, %.0f events, %.0f blocks with handled logs; provider saw %d requests (%d elements, %d answered 429, %d refused by caps), methods %v",
		blocks, logs, events, blocksWithLogs, use.Requests, use.Elements, use.RateLimited, use.CapRefused, use.Methods)
}

// idealTxCalls is the least calls that fetch the handled transactions' data without what the
// rule of a busy chain forbids (receipts of unrelated transactions): per block, its receipts
// and body (2 calls) where the handled transactions are most of it, else each one's receipt
// and transaction (2 calls each); and the event-details calls that calldata cannot replace,
// one per event created by a transaction whose calldata names no createEvent call to the
// factory (echain.CalldataCreates: neither a direct call nor a smart wallet's execute of one).
// The block sizes and calldata are read from the node directly, not through the proxy.
func idealTxCalls(b *testing.B, c *devchain.Chain, st echaintest.State) (elems, indirect float64) {
	ctx := context.Background()
	factory := c.Addresses.EventFactory
	perBlock := map[string]int{}
	for id, tx := range st["Transaction"] {
		perBlock[fmt.Sprint(tx["blockNumber"])]++
		if tx["transactionType"] != "event_created" || strings.EqualFold(fmt.Sprint(tx["to"]), factory.Hex()) {
			continue
		}
		t, _, err := c.Client().TransactionByHash(ctx, common.HexToHash(id))
		if err != nil {
			b.Fatalf("transaction %s: %v", id, err)
		}
		n, err := echain.CalldataCreates(factory, t.To(), t.Data())
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			indirect++
		}
	}
	for num, n := range perBlock {
		bn, ok := new(big.Int).SetString(num, 10)
		if !ok {
			b.Fatalf("transaction block number %q", num)
		}
		blk, err := c.Client().BlockByNumber(ctx, bn)
		if err != nil {
			b.Fatalf("block %s: %v", num, err)
		}
		if 2*n <= len(blk.Transactions()) {
			elems += float64(2 * n)
		} else {
			elems += 2
		}
	}
	return elems, indirect
}

// resetPeakRSS resets this process's VmHWM to its current RSS (Linux clear_refs 5) and returns
// that, in MB. The indexer runs in this process with the node and the proxy, so the peak over a
// run is theirs together; its growth over the start is what the run added.
func resetPeakRSS(b *testing.B) float64 {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Fatalf("reset peak RSS: %v", err)
	}
	return float64(procStatusKB(os.Getpid(), "VmRSS:")) / 1024
}

// BenchmarkRealtimeProvider measures block sealed → its rows committed (the commit's
// notification received) through the proxy playing the production provider
// (rpcproxy.ProductionLike: 50±10 ms per HTTP round trip, 25 requests/s), on a chain sealing a
// block of Echain traffic every ECHAIN_BENCH_RT_INTERVAL (default 1s; Base seals every 2s) for
// ECHAIN_BENCH_RT_BLOCKS blocks (default 100). The aim is p99 under the provider's latency plus
// 100 ms. Heads arrive over the node's WebSocket without added latency (a provider's
// notification travels one way: about half a round trip more in production). It also reports
// the HTTP round trips and batch elements per block, where the time goes.
func BenchmarkRealtimeProvider(b *testing.B) {
	blocks := 100
	if v, err := strconv.Atoi(os.Getenv("ECHAIN_BENCH_RT_BLOCKS")); err == nil && v > 0 {
		blocks = v
	}
	interval := time.Second
	if v := os.Getenv("ECHAIN_BENCH_RT_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("ECHAIN_BENCH_RT_INTERVAL: %v", err)
		}
		interval = d
	}
	c := startChain(b, devchain.Config{})
	tr := devchain.NewTraffic(c, devchain.TrafficConfig{TxsPerBlock: 8}, quietLog())
	steps(b, tr, 30)
	prof := rpcproxy.ProductionLike()
	proxy, err := rpcproxy.New(c.HTTPURL)
	if err != nil {
		b.Fatal(err)
	}
	defer proxy.Close()
	proxy.SetProvider(prof)
	s := chainSetup(c, storetest.NewDB(b))
	s.Endpoints = []source.Endpoint{{Name: "provider", HTTPURL: proxy.URL(), WSURL: c.WSURL, RequestsPerSecond: prof.RequestsPerSecond}}
	in := startIndexer(b, s)
	waitSynced(b, in, c)
	ct := listenCommits(b, s.DB)

	var lat []time.Duration
	var use rpcproxy.Usage
	var load float64
	for b.Loop() {
		lat = lat[:0]
		proxy.SetProvider(prof) // counts from here
		next := time.Now()
		for range blocks {
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
			next = time.Now().Add(interval)
			res, err := tr.Step(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			sealed := time.Now()
			at := ct.wait(b, int64(res.Head), time.Minute)
			lat = append(lat, at.Sub(sealed))
		}
		use = proxy.Usage()
		load = loadAverage(b)
	}
	per := func(v int64) float64 { return float64(v) / float64(blocks) }
	b.ReportMetric(float64(percentile(lat, 50).Microseconds())/1000, "ms-p50")
	b.ReportMetric(float64(percentile(lat, 99).Microseconds())/1000, "ms-p99")
	b.ReportMetric(float64(prof.Latency.Milliseconds()+100), "ms-aim-p99")
	b.ReportMetric(per(use.Requests), "requests/block")
	b.ReportMetric(per(use.Elements), "elements/block")
	b.ReportMetric(load, "load1")
	b.Logf("%d blocks, one every %s; provider saw %d requests (%d elements, %d answered 429), methods %v",
		blocks, interval, use.Requests, use.Elements, use.RateLimited, use.Methods)
}

// loadAverage is the 1-minute load average, reported next to timings on a shared machine.
func loadAverage(b testing.TB) float64 {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		b.Fatalf("load average: %v", err)
	}
	var l float64
	if _, err := fmt.Sscan(string(raw), &l); err != nil {
		b.Fatalf("load average %q: %v", raw, err)
	}
	return l
}
