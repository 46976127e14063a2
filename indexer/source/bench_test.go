package source

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/echain/echain-indexer/devchain"
)

// benchChain starts the pre-built history benchmarks run on. ECHAIN_BENCH_BLOCKS sets its length
// (default 300; 2100 is the ~200,000-log chain of the backfill benchmark), ECHAIN_BENCH_CACHE
// where built histories are kept.
func benchChain(b *testing.B, cfg Config) (*devchain.Chain, *Source) {
	b.Helper()
	blocks := 300
	if v, err := strconv.Atoi(os.Getenv("ECHAIN_BENCH_BLOCKS")); err == nil && v > 0 {
		blocks = v
	}
	cache, err := devchain.BenchCacheDir()
	if err != nil {
		b.Fatal(err)
	}
	c, err := devchain.StartWithHistory(context.Background(), devchain.Config{MetadataAddr: "off"},
		devchain.HistoryConfig{Blocks: blocks, CacheDir: cache}, testLogger())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	cfg.Endpoints = []Endpoint{{HTTPURL: c.HTTPURL}}
	return c, newSource(b, cfg, nil)
}

// BenchmarkLogsWalk measures the bare eth_getLogs walk over a pre-built dev-chain history: the
// node's own speed limit, the yardstick for the follower's backfill.
func BenchmarkLogsWalk(b *testing.B) {
	c, s := benchChain(b, Config{LogsTimeout: time.Minute})
	ctx := context.Background()
	var err error
	head := c.Head().Number.Uint64()
	var st WalkStats
	for b.Loop() {
		sizer := NewRangeSizer(RangeSizerConfig{Initial: 100, Max: 2000, TargetLogs: 20_000, TargetDuration: 2 * time.Second})
		st, err = WalkLogs(ctx, s, ethereum.FilterQuery{}, 0, head, sizer, nil)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(st.LogsPerSecond(), "logs/s")
	b.ReportMetric(float64(st.Logs), "logs")
	b.ReportMetric(float64(st.Blocks), "blocks")
	b.ReportMetric(float64(st.Requests), "requests")
}

// BenchmarkTxsMany fetches the Tx of every log-emitting transaction of the history in block
// windows of 100, as the backfill does.
func BenchmarkTxsMany(b *testing.B) {
	for _, mode := range []ReceiptsMode{ReceiptsBlock, ReceiptsTx} {
		b.Run(string(mode), func(b *testing.B) {
			c, s := benchChain(b, Config{Receipts: mode})
			var windows [][]TxRequest
			var cur []TxRequest
			var lastBlock uint64
			_, err := WalkLogs(context.Background(), s, ethereum.FilterQuery{}, 0, c.Head().Number.Uint64(), NewRangeSizer(RangeSizerConfig{}), func(logs []types.Log) error {
				for _, l := range logs {
					if len(cur) > 0 && l.BlockNumber/100 != lastBlock/100 {
						windows = append(windows, cur)
						cur = nil
					}
					lastBlock = l.BlockNumber
					if len(cur) == 0 || cur[len(cur)-1].Block != l.BlockHash {
						cur = append(cur, TxRequest{Block: l.BlockHash})
					}
					r := &cur[len(cur)-1]
					if len(r.Hashes) == 0 || r.Hashes[len(r.Hashes)-1] != l.TxHash {
						r.Hashes = append(r.Hashes, l.TxHash)
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			windows = append(windows, cur)
			n := 0
			start := time.Now()
			for b.Loop() {
				n = 0
				for _, w := range windows {
					txs, err := s.TxsMany(context.Background(), w)
					if err != nil {
						b.Fatal(err)
					}
					n += len(txs)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/time.Since(start).Seconds(), "txs/s")
		})
	}
}
