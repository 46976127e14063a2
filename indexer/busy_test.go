package indexer_test

import (
	"testing"
	"time"

	"github.com/echain/echain-indexer/devchain"
	"github.com/echain/echain-indexer/indexer/source"
	"github.com/echain/echain-indexer/indexer/source/rpcproxy"
	"github.com/echain/echain-indexer/internal/testwait"
	"github.com/echain/echain-indexer/store/storetest"
)

// busyRun is what one backfill of a busy history cost through the proxy.
type busyRun struct {
	logs     float64 // Echain logs indexed
	use      rpcproxy.Usage
	receipts int64 // receipt calls (block or transaction)
	blocks   int64 // blocks in the history
}

func (r busyRun) perK(v int64) float64 { return float64(v) / max(r.logs, 1) * 1000 }

// backfillBusy builds a busy history with the given unrelated transfers per block, backfills it
// through the proxy (backfill.log_source auto), checks the store equals a from-scratch index of
// the chain, and returns what the provider counted.
func backfillBusy(t *testing.T, unrelated int) busyRun {
	t.Helper()
	c, err := devchain.StartWithHistory(testwait.Context(t), devchain.Config{MetadataAddr: "off"},
		devchain.HistoryConfig{Blocks: 150, Busy: &devchain.BusyConfig{Unrelated: unrelated, EchainEvery: 10, EchainTxs: 6}}, quietLog())
	if err != nil {
		t.Fatalf("busy history: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	proxy, err := rpcproxy.New(c.HTTPURL)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	prof := rpcproxy.ProductionLike()
	prof.Latency, prof.Jitter, prof.RequestsPerSecond = time.Millisecond, 0, 0 // the caps, not the wait
	proxy.SetProvider(prof)

	db := storetest.NewDB(t)
	s := chainSetup(c, db)
	s.Endpoints = []source.Endpoint{{Name: "provider", HTTPURL: proxy.URL(), WSURL: c.WSURL}}
	s.Config.FinalityDepth = 8
	in := startIndexer(t, s)
	waitSynced(t, in, c)
	r := busyRun{use: proxy.Usage(), logs: counter(t, in.reg, "echain_indexer_logs_indexed_total", nil),
		blocks: c.Head().Number.Int64() - int64(c.Addresses.StartBlock) + 1}
	in.stop()
	r.receipts = r.use.Methods["eth_getBlockReceipts"] + r.use.Methods["eth_getTransactionReceipt"]
	if r.logs == 0 {
		t.Fatal("no Echain log indexed")
	}
	if r.use.Methods["eth_getLogs"] == 0 {
		t.Fatalf("backfill never called eth_getLogs: methods %v", r.use.Methods)
	}
	compareStores(t, scratchIndex(t, c), db)
	t.Logf("%d unrelated transfers per block: %d blocks, %.0f Echain logs; %d requests (%.1f per 1,000 logs), %d elements, %d receipt calls, %.1f MiB; methods %v",
		unrelated, r.blocks, r.logs, r.use.Requests, r.perK(r.use.Requests), r.use.Elements, r.receipts,
		float64(r.use.BytesSent)/(1<<20), r.use.Methods)
	return r
}

// TestBusyBackfillThroughProvider indexes two busy histories that differ only in how many
// unrelated token transfers each block carries, through the provider proxy: each store equals
// a from-scratch index, and the requests and bytes per 1,000 Echain logs do not grow with the
// unrelated share (backfill.log_source auto stays on eth_getLogs, and only Echain's
// transactions have their receipts fetched).
func TestBusyBackfillThroughProvider(t *testing.T) {
	quiet := backfillBusy(t, 2)
	busy := backfillBusy(t, 40)
	// Slack of a tenth, and at least 3 requests: range sizing and the head's catch-up react to
	// timings on a shared machine (seen: 14 requests against 16). Growth with the unrelated
	// traffic would be per block, and there are 150 of them.
	if q, b := quiet.perK(quiet.use.Requests), busy.perK(busy.use.Requests); b > max(q*1.1, quiet.perK(quiet.use.Requests+3)) {
		t.Errorf("requests per 1,000 Echain logs grew with the unrelated traffic: %.1f with 2 transfers per block, %.1f with 40", q, b)
	}
	// What is downloaded does not grow with it either: receipts of unrelated transactions are
	// never fetched (a tenth of slack for the few headers the range sizing adds).
	if q, b := quiet.perK(quiet.use.BytesSent), busy.perK(busy.use.BytesSent); b > q*1.1+4096 {
		t.Errorf("bytes received per 1,000 Echain logs grew with the unrelated traffic: %.0f with 2 transfers per block, %.0f with 40", q, b)
	}
	// In the busy blocks Echain's 6 transactions are a small share: their receipts are fetched
	// one by one, never the block's (only the deployment blocks, all Echain's, may be).
	if n := busy.use.Methods["eth_getBlockReceipts"]; n > 3 {
		t.Errorf("%d eth_getBlockReceipts calls on the busy chain: unrelated transactions' receipts were fetched", n)
	}
	// Blocks with Echain traffic are one in ten: receipts are fetched for their Echain
	// transactions only.
	if limit := 6*(busy.blocks/10+3) + 3; busy.receipts > limit {
		t.Errorf("%d receipt calls for %d blocks of which about %d hold Echain logs: unrelated transactions' receipts were fetched", busy.receipts, busy.blocks, busy.blocks/10)
	}
}
