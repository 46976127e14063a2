package indexer_test

import (
	"context"
	"math/big"
	"testing"

	"github.com/echain/echain-indexer/devchain"
	"github.com/echain/echain-indexer/indexer"
	"github.com/echain/echain-indexer/indexer/source"
	"github.com/echain/echain-indexer/store/storetest"
)

// TestBackfillLogSources backfills one history three ways: eth_getLogs only, block receipts
// only, and auto. The history opens with blocks crowded by transactions that are not Echain's
// (as on Base) and goes on with blocks that are nearly all Echain's, two in five of them empty
// (as on the chain of issue 21, where auto never switched), so auto must start with eth_getLogs
// and switch to receipts. A fourth run takes eth_getLogs in merged mode. All stores must be equal.
func TestBackfillLogSources(t *testing.T) {
	ctx := context.Background()
	c := startChain(t, devchain.Config{})
	tr := devchain.NewTraffic(c, devchain.TrafficConfig{TxsPerBlock: 4}, quietLog())
	for i := 0; i < 60; i++ {
		for j := 0; j < 24; j++ { // plain transfers: no logs, sealed with the step's block
			if _, err := c.SendETH(ctx, c.Deployer(), c.Treasury().Address, big.NewInt(1)); err != nil {
				t.Fatal(err)
			}
		}
		steps(t, tr, 1)
	}
	for i := 0; i < 120; i++ {
		steps(t, tr, 1)
		if i%3 != 0 {
			if _, err := c.Commit(); err != nil { // an empty block
				t.Fatal(err)
			}
		}
	}

	var headerReqs float64 // single eth_getBlockByNumber requests of the last index
	index := func(mode string, addressChunk int) (string, map[string]float64) {
		t.Helper()
		db := storetest.NewDB(t)
		s := chainSetup(c, db)
		s.Config.FinalityDepth = 16
		s.Config.Range = source.RangeSizerConfig{Initial: 8, Max: 12}
		s.Config.BackfillLogSource = mode
		s.Config.AddressChunk = addressChunk
		in := startIndexer(t, s)
		waitSynced(t, in, c)
		ranges := map[string]float64{}
		for _, src := range []string{indexer.LogSourceLogs, indexer.LogSourceReceipts} {
			ranges[src] = counter(t, in.reg, "echain_indexer_backfill_ranges_total", map[string]string{"source": src})
		}
		headerReqs = counter(t, in.reg, "echain_indexer_rpc_requests_total", map[string]string{"method": "eth_getBlockByNumber"})
		in.stop()
		t.Logf("%s: backfill ranges %v, %.0f single header requests", mode, ranges, headerReqs)
		return db, ranges
	}

	logsDB, r := index(indexer.LogSourceLogs, 0)
	if r[indexer.LogSourceLogs] == 0 || r[indexer.LogSourceReceipts] != 0 {
		t.Fatalf("logs mode fetched ranges %v: want eth_getLogs only", r)
	}
	// A range's last header comes in its eth_getLogs batch (the endpoint's check that it has the
	// range): it is not asked for again. The follower's own head checks make the rest.
	if headerReqs >= r[indexer.LogSourceLogs]/2 {
		t.Fatalf("logs mode: %.0f eth_getBlockByNumber requests for %.0f ranges: the ranges' last headers were fetched again", headerReqs, r[indexer.LogSourceLogs])
	}
	rcptDB, r := index(indexer.LogSourceReceipts, 0)
	if r[indexer.LogSourceReceipts] == 0 || r[indexer.LogSourceLogs] != 0 {
		t.Fatalf("receipts mode fetched ranges %v: want receipts only", r)
	}
	compareStores(t, logsDB, rcptDB)

	autoDB, r := index(indexer.LogSourceAuto, 0)
	if r[indexer.LogSourceLogs] < 2 || r[indexer.LogSourceReceipts] < 2 {
		t.Fatalf("auto mode fetched ranges %v: want eth_getLogs over the crowded blocks, then receipts", r)
	}
	compareStores(t, logsDB, autoDB)

	// More ticket contracts than half an address chunk: one eth_getLogs for every handled topic
	// (merged mode), decided by a probe whose answer the range keeps rather than fetches again.
	mergedDB, _ := index(indexer.LogSourceLogs, 2)
	compareStores(t, logsDB, mergedDB)
}
