package indexer_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/echain/echain-indexer/devchain"
)

// BenchmarkBusyBackfill is BenchmarkProxyBackfill (rpcproxy.ProductionLike: 50±10 ms, 25
// requests/s, a 10,000-block eth_getLogs cap) on a busy history, Base-like: every block carries
// 40 unrelated ERC-20/ERC-721 Transfer logs, one block in 50 carries 4 Echain transactions.
// ECHAIN_BUSY_BLOCKS sets its length: default 20,000 (built in about 7 minutes on a shared 2-core
// machine the first time, then imported from ECHAIN_BENCH_CACHE); the target is 200,000,
// whose first build takes over an hour, past make bench's 60-minute timeout: run it with go test
// -timeout 3h the first time.
func BenchmarkBusyBackfill(b *testing.B) {
	blocks := 20_000
	if v, err := strconv.Atoi(os.Getenv("ECHAIN_BUSY_BLOCKS")); err == nil && v > 0 {
		blocks = v
	}
	cache := os.Getenv("ECHAIN_BENCH_CACHE")
	if cache == "" {
		cache = filepath.Join(os.TempDir(), "echain-indexer-bench")
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		b.Fatal(err)
	}
	c, err := devchain.StartWithHistory(context.Background(), devchain.Config{MetadataAddr: "off", DataDir: b.TempDir()},
		devchain.HistoryConfig{Blocks: blocks, CacheDir: cache, Busy: &devchain.BusyConfig{}}, quietLog())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	backfillThroughProvider(b, c)
}
