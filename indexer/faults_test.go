package indexer_test

import (
	"testing"
	"time"

	"github.com/echain/echain-indexer/devchain"
	"github.com/echain/echain-indexer/indexer"
	"github.com/echain/echain-indexer/indexer/source"
	"github.com/echain/echain-indexer/indexer/source/rpcproxy"
	"github.com/echain/echain-indexer/store/storetest"
)

// TestWebSocketDrops follows the head through a TCP proxy that cuts every WebSocket connection
// every few blocks, refuses reconnections for a while and freezes a connection (a silent
// subscription): no block may be missed or committed twice.
func TestWebSocketDrops(t *testing.T) {
	c := startChain(t, devchain.Config{})
	tr := devchain.NewTraffic(c, devchain.TrafficConfig{TxsPerBlock: 4}, quietLog())
	steps(t, tr, 20)
	tcp := wsProxy(t, c)
	s := chainSetup(c, storetest.NewDB(t))
	s.Endpoints = []source.Endpoint{{Name: "dev", HTTPURL: c.HTTPURL, WSURL: "ws://" + tcp.Addr()}}
	s.Source.HeadTimeout = time.Second
	s.Source.ReconnectMax = 500 * time.Millisecond
	in := startIndexer(t, s)
	waitSynced(t, in, c)

	for i := 1; i <= 200; i++ {
		steps(t, tr, 1)
		switch {
		case i == 100:
			tcp.Refuse(time.Second)
			tcp.CutAll()
		case i == 150:
			tcp.Freeze()
		case i%25 == 0:
			tcp.CutAll()
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitSynced(t, in, c)
	t.Logf("websocket connections accepted %d, refused %d", tcp.Accepted(), tcp.Refused())
	if tcp.Accepted() < 5 {
		t.Fatalf("only %d websocket connections: the drops did not happen", tcp.Accepted())
	}
	blocks := counter(t, in.reg, "echain_indexer_blocks_indexed_total", nil)
	if want := c.Head().Number.Int64() - in.fl.StartBlock() + 1; int64(blocks) != want {
		t.Fatalf("committed %v blocks, want %d: a block was missed or doubled", blocks, want)
	}
	in.stop()
	compareStores(t, scratchIndex(t, c), s.DB)
}

// TestProviderFaults backfills and follows the head through a fault-injecting JSON-RPC proxy:
// range-too-large refusals with and without a suggested range, a provider's address limit,
// 429s with Retry-After, timeouts, and a second endpoint that lags behind (preferred first).
func TestProviderFaults(t *testing.T) {
	c := startChain(t, devchain.Config{})
	tr := devchain.NewTraffic(c, devchain.TrafficConfig{TxsPerBlock: 6}, quietLog())
	steps(t, tr, 250)

	lagging, err := rpcproxy.New(c.HTTPURL)
	if err != nil {
		t.Fatal(err)
	}
	defer lagging.Close()
	lagging.SetLag(3)
	faulty, err := rpcproxy.New(c.HTTPURL)
	if err != nil {
		t.Fatal(err)
	}
	defer faulty.Close()
	// Both endpoints refuse the same way (the lagging one is preferred, so it serves most of
	// the backfill); the faulty one also rate-limits and stalls.
	both := func(r rpcproxy.Rule) func() {
		a, b := lagging.Add(r), faulty.Add(r)
		return func() { a(); b() }
	}
	faulty.Add(rpcproxy.Rule{Status: 429, RetryAfter: "1", Times: 4})
	both(rpcproxy.MaxAddresses(20))
	removeHinted := both(rpcproxy.MaxLogsRange(12, rpcproxy.Infura))
	faulty.Add(rpcproxy.Rule{Method: "eth_getBlockByNumber", Delay: 3 * time.Second, Times: 2})

	s := chainSetup(c, storetest.NewDB(t))
	s.Endpoints = []source.Endpoint{
		{Name: "lagging", HTTPURL: lagging.URL()},
		{Name: "faulty", HTTPURL: faulty.URL(), WSURL: c.WSURL},
	}
	s.Source.RequestTimeout = time.Second
	s.Config.FinalityDepth = 16
	s.Config.BackfillMinBlocks = 20
	s.Config.Range = source.RangeSizerConfig{Initial: 64, Max: 128}
	// The refusals are eth_getLogs's: auto would read this dense chain from block receipts.
	s.Config.BackfillLogSource = indexer.LogSourceLogs
	in := startIndexer(t, s)

	// Switch to refusals without a hint once the first part is done, and keep the chain moving.
	for i := 0; i < 40; i++ {
		if i == 10 {
			removeHinted()
			both(rpcproxy.MaxLogsRange(9, rpcproxy.NoHint))
			faulty.Add(rpcproxy.Rule{Method: "eth_getLogs", Status: 429, RetryAfter: "1", Times: 2})
		}
		steps(t, tr, 1)
		time.Sleep(50 * time.Millisecond)
	}
	waitSynced(t, in, c)
	splits := counter(t, in.reg, "echain_indexer_getlogs_range_splits_total", nil)
	refused := lagging.Faults("eth_getLogs") + faulty.Faults("eth_getLogs")
	t.Logf("range splits %v; faults answered by the proxies: eth_getLogs %d, eth_getBlockByNumber %d", splits,
		refused, faulty.Faults("eth_getBlockByNumber"))
	if splits < 3 || refused < 10 {
		t.Fatalf("too few refusals were met (splits %v, refused getLogs %d)", splits, refused)
	}
	in.stop()
	compareStores(t, scratchIndex(t, c), s.DB)
}
