package indexer_test

import (
	"testing"

	"github.com/echain/echain-indexer/devchain"
	"github.com/echain/echain-indexer/indexer/source"
	"github.com/echain/echain-indexer/indexer/source/rpcproxy"
	"github.com/echain/echain-indexer/store/storetest"
)

// TestHeadBlockRequests: following the head, a block whose header bloom rules out Echain logs
// costs no request, and a block with Echain traffic is read whole by hash in one batch (block
// receipts and transactions): no eth_getLogs, no transaction lookups. The store equals a
// from-scratch index.
func TestHeadBlockRequests(t *testing.T) {
	c := startChain(t, devchain.Config{})
	tr := devchain.NewTraffic(c, devchain.TrafficConfig{TxsPerBlock: 5}, quietLog())
	steps(t, tr, 20)
	proxy, err := rpcproxy.New(c.HTTPURL)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	s := chainSetup(c, storetest.NewDB(t))
	s.Endpoints = []source.Endpoint{{Name: "proxy", HTTPURL: proxy.URL(), WSURL: c.WSURL}}
	in := startIndexer(t, s)
	waitSynced(t, in, c)

	proxy.SetProvider(rpcproxy.Provider{}) // no limits: only the counts, from here
	traffic, empty := 0, 0
	for i := range 30 {
		if i%2 == 0 {
			steps(t, tr, 1)
			traffic++
		} else {
			if _, err := c.Commit(); err != nil {
				t.Fatal(err)
			}
			empty++
		}
		waitSynced(t, in, c) // one block at a time: none shares a batch with another
	}
	u := proxy.Usage()
	t.Logf("%d traffic blocks, %d empty: %d requests, methods %v", traffic, empty, u.Requests, u.Methods)
	for _, m := range []string{"eth_getLogs", "eth_getTransactionByHash", "eth_getTransactionReceipt"} {
		if n := u.Methods[m]; n != 0 {
			t.Errorf("%d %s calls following the head, want 0", n, m)
		}
	}
	// Empty blocks have an empty bloom: only traffic blocks can be fetched.
	if n := u.Methods["eth_getBlockReceipts"]; n < int64(traffic)/2 || n > int64(traffic) {
		t.Errorf("%d blocks' receipts fetched for %d traffic blocks and %d empty ones", n, traffic, empty)
	}
	in.stop()
	compareStores(t, scratchIndex(t, c), s.DB)
}
