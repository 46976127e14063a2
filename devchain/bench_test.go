package devchain

import (
	"context"
	"fmt"
	"math/big"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"

	"github.com/echain/echain-indexer/abis"
)

// BenchmarkPrebuild measures how fast dense history is made (no cache): blocks/s and Echain
// logs/s. Run: go test -run '^$' -bench Prebuild -benchtime 1x ./devchain/
func BenchmarkPrebuild(b *testing.B) {
	ctx := context.Background()
	const blocks = 300
	for i := 0; i < b.N; i++ {
		start := time.Now()
		c, err := StartWithHistory(ctx, Config{}, HistoryConfig{Blocks: blocks}, testLogger(b))
		if err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		logs, err := c.Client().FilterLogs(ctx, ethereum.FilterQuery{FromBlock: big.NewInt(0), ToBlock: c.Head().Number})
		c.Close()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(blocks)/took.Seconds(), "blocks/s")
		b.ReportMetric(float64(len(logs))/took.Seconds(), "logs/s")
	}
}

// BenchmarkGetLogs measures a full eth_getLogs pass over the default pre-built history (2,100
// blocks, cached in DefaultCacheDir; the first run builds it), in 500-block windows with every
// SPEC topic0 in one request, without and with geth's log index.
// Run: go test -run '^$' -bench GetLogs -benchtime 3x -timeout 30m ./devchain/
func BenchmarkGetLogs(b *testing.B) {
	ctx := context.Background()
	dir, err := DefaultCacheDir()
	if err != nil {
		b.Fatal(err)
	}
	var topics []common.Hash
	for contract, evs := range specEvents {
		a, err := abis.Echain(contract)
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range evs {
			topics = append(topics, a.Events[e].ID)
		}
	}
	for _, indexed := range []bool{false, true} {
		// Start outside b.Run: the framework calls the function once per b.N it tries.
		start := time.Now()
		c, err := StartWithHistory(ctx, Config{LogIndex: indexed}, HistoryConfig{CacheDir: dir}, testLogger(b))
		if err != nil {
			b.Fatal(err)
		}
		if indexed {
			if err := c.WaitLogIndex(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.Logf("logindex=%v: history ready in %v (head %d)", indexed, time.Since(start).Round(time.Millisecond), c.Head().Number)
		cl := dial(b, c.HTTPURL)
		head := c.Head().Number.Uint64()
		b.Run(fmt.Sprintf("logindex=%v", indexed), func(b *testing.B) {
			total := 0
			for i := 0; i < b.N; i++ {
				total = 0
				for from := uint64(1); from <= head; from += 500 {
					logs, err := cl.FilterLogs(ctx, ethereum.FilterQuery{
						FromBlock: new(big.Int).SetUint64(from), ToBlock: new(big.Int).SetUint64(min(from+499, head)),
						Topics: [][]common.Hash{topics},
					})
					if err != nil {
						b.Fatal(err)
					}
					total += len(logs)
				}
			}
			b.ReportMetric(float64(total), "logs/pass")
		})
		c.Close()
	}
}

// BenchmarkBusyPrebuild measures how fast a busy history is made (no cache): blocks/s.
// ECHAIN_BUSY_PREBUILD_BLOCKS sets its length (default 1,000).
// Run: go test -run '^$' -bench BusyPrebuild -benchtime 1x ./devchain/
func BenchmarkBusyPrebuild(b *testing.B) {
	ctx := context.Background()
	blocks := 1000
	if v, err := strconv.Atoi(os.Getenv("ECHAIN_BUSY_PREBUILD_BLOCKS")); err == nil && v > 0 {
		blocks = v
	}
	for i := 0; i < b.N; i++ {
		start := time.Now()
		c, err := StartWithHistory(ctx, Config{MetadataAddr: "off", DataDir: b.TempDir()},
			HistoryConfig{Blocks: blocks, Busy: &BusyConfig{}}, testLogger(b))
		if err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		c.Close()
		b.ReportMetric(float64(blocks)/took.Seconds(), "blocks/s")
	}
}
