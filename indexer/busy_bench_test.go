package indexer_test

import (
	"context"
	"os"
	"strconv"
	"testing"

	"github.com/echain/echain-indexer/devchain"
)

// BenchmarkBusyBackfill is BenchmarkProxyBackfill (rpcproxy.ProductionLike: 50±10 ms, 25
// requests/s, a 10,000-block eth_getLogs cap) on a busy history, Base-like: every block carries
// 40 unrelated ERC-20/ERC-721 Transfer logs, one block in 50 carries 4 Echain transactions.
// ECHAIN_BUSY_BLOCKS sets its length: default 20,000 (built directly, about 7 ms of CPU a block,
// the first time, then imported from ECHAIN_BENCH_CACHE); the target is 200,000, whose
// first build takes about 25 minutes of CPU (over an hour on a shared, loaded 2-core machine,
// past make bench's 60-minute timeout: run it with go test -timeout 3h the first time).
func BenchmarkBusyBackfill(b *testing.B) {
	blocks := 20_000
	if v, err := strconv.Atoi(os.Getenv("ECHAIN_BUSY_BLOCKS")); err == nil && v > 0 {
		blocks = v
	}
	cache, err := devchain.BenchCacheDir()
	if err != nil {
		b.Fatal(err)
	}
	// A provider's node keeps a log index: without one, eth_getLogs scans every block's bloom,
	// and the range sizer keeps answers of a 10,000-block range under its time target by
	// shrinking them.
	c, err := devchain.StartWithHistory(context.Background(), devchain.Config{MetadataAddr: "off", DataDir: b.TempDir(), LogIndex: true},
		devchain.HistoryConfig{Blocks: blocks, CacheDir: cache, Busy: &devchain.BusyConfig{}}, quietLog())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	if err := c.WaitLogIndex(context.Background()); err != nil {
		b.Fatal(err)
	}
	backfillThroughProvider(b, c)
}
