package indexer_test

import (
	"context"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/echain/echain-indexer/devchain"
	"github.com/echain/echain-indexer/indexer/source"
	"github.com/echain/echain-indexer/indexer/source/rpcproxy"
	"github.com/echain/echain-indexer/store/storetest"
)

// TestWrongChainWritesNothing puts the indexer's only endpoint (HTTP and WebSocket on one port)
// behind a TCP proxy that is down at start and then serves another chain (id 5, same seed: the
// same contract addresses, with logs), later the right chain, then the other chain again after a
// reconnection, and the right one once more. Nothing of the other chain may be written: the
// store ends equal to a from-scratch index of the right chain.
func TestWrongChainWritesNothing(t *testing.T) {
	ctx := context.Background()
	right := startChain(t, devchain.Config{})
	other := startChain(t, devchain.Config{ChainID: 5})
	trRight := devchain.NewTraffic(right, devchain.TrafficConfig{TxsPerBlock: 4}, quietLog())
	trOther := devchain.NewTraffic(other, devchain.TrafficConfig{TxsPerBlock: 4}, quietLog())
	steps(t, trRight, 20)
	steps(t, trOther, 40) // longer: its heights pass the right chain's
	hostOf := func(c *devchain.Chain) string { return strings.TrimPrefix(c.HTTPURL, "http://") }
	if hostOf(right) != strings.TrimPrefix(right.WSURL, "ws://") {
		t.Fatalf("dev chain serves HTTP %s and WebSocket %s on different ports", right.HTTPURL, right.WSURL)
	}
	proxy, err := rpcproxy.NewTCP(hostOf(other))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	proxy.Refuse(time.Second) // down at start, then up as the other chain

	s := chainSetup(right, storetest.NewDB(t))
	s.Endpoints = []source.Endpoint{{Name: "node", HTTPURL: "http://" + proxy.Addr(), WSURL: "ws://" + proxy.Addr()}}
	s.Source.ChainID = devchain.ChainID
	s.Source.HealthInterval = 200 * time.Millisecond
	s.Source.ReconnectMax = 500 * time.Millisecond
	s.Config.RetryBackoffMax = time.Second
	in := startIndexer(t, s)

	mismatches := func(transport string) float64 {
		return counter(t, in.reg, "echain_indexer_rpc_chain_mismatch_total", map[string]string{"transport": transport})
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !cond() {
			if err, done := in.runErr(); done {
				t.Fatalf("indexer stopped while waiting for %s: %v", what, err)
			}
			if time.Now().After(deadline) {
				t.Fatalf("waited 60 s for %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitUntil("both transports to find the other chain", func() bool { return mismatches("http") >= 3 && mismatches("ws") >= 1 })
	steps(t, trOther, 5)
	waitUntil("more checks of the other chain", func() bool { return mismatches("http") >= 8 })
	if head, err := in.st.Head(ctx); err != nil || head != nil {
		t.Fatalf("store cursor %+v (err %v) after serving only another chain: want nothing written", head, err)
	}
	if g := counter(t, in.reg, "echain_indexer_rpc_endpoint_wrong_chain", nil); g != 1 {
		t.Fatalf("rpc_endpoint_wrong_chain %v, want 1", g)
	}

	// The right chain comes up behind the same address.
	proxy.SetTarget(hostOf(right))
	proxy.CutAll()
	waitSynced(t, in, right)
	if g := counter(t, in.reg, "echain_indexer_rpc_endpoint_wrong_chain", nil); g != 0 {
		t.Fatalf("rpc_endpoint_wrong_chain %v after the right chain came back, want 0", g)
	}

	// A reconnection lands on the other chain again while both chains grow.
	httpBefore, wsBefore := mismatches("http"), mismatches("ws")
	proxy.SetTarget(hostOf(other))
	proxy.CutAll()
	for i := 0; i < 10; i++ {
		steps(t, trOther, 2)
		steps(t, trRight, 1)
		time.Sleep(50 * time.Millisecond)
	}
	waitUntil("the reconnection to find the other chain", func() bool {
		return mismatches("http") >= httpBefore+3 && mismatches("ws") >= wsBefore+1
	})
	head, err := in.st.Head(ctx)
	if err != nil || head == nil {
		t.Fatalf("store cursor: %v", err)
	}
	if h := right.Client(); h != nil {
		hdr, err := h.HeaderByNumber(ctx, bigInt(head.Number))
		if err != nil || hdr.Hash() != head.Hash {
			t.Fatalf("store cursor %d %s is not the right chain's block (%v)", head.Number, head.Hash, err)
		}
	}

	proxy.SetTarget(hostOf(right))
	proxy.CutAll()
	steps(t, trRight, 3)
	waitSynced(t, in, right)
	in.stop()
	compareStores(t, scratchIndex(t, right), s.DB)
}

func bigInt(n int64) *big.Int { return big.NewInt(n) }

// TestCursorCheckedAfterReconnect: the node behind the endpoint is replaced by a fresh chain of
// the same id (same genesis) that never had the indexed blocks. After the reconnection the cursor
// is not on the node's chain: the follower walks back to the common ancestor and follows the new
// chain; the store ends equal to a from-scratch index of it.
func TestCursorCheckedAfterReconnect(t *testing.T) {
	first := startChain(t, devchain.Config{})
	second := startChain(t, devchain.Config{})
	trFirst := devchain.NewTraffic(first, devchain.TrafficConfig{TxsPerBlock: 4}, quietLog())
	trSecond := devchain.NewTraffic(second, devchain.TrafficConfig{TxsPerBlock: 4, Seed: 7}, quietLog())
	steps(t, trFirst, 20)
	steps(t, trSecond, 30)
	hostOf := func(c *devchain.Chain) string { return strings.TrimPrefix(c.HTTPURL, "http://") }
	proxy, err := rpcproxy.NewTCP(hostOf(first))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	s := chainSetup(first, storetest.NewDB(t))
	s.Endpoints = []source.Endpoint{{Name: "node", HTTPURL: "http://" + proxy.Addr(), WSURL: "ws://" + proxy.Addr()}}
	s.Source.ChainID = devchain.ChainID
	s.Source.ReconnectMax = 500 * time.Millisecond
	s.Config.RetryBackoffMax = time.Second
	in := startIndexer(t, s)
	waitSynced(t, in, first)

	proxy.SetTarget(hostOf(second))
	proxy.CutAll()
	steps(t, trSecond, 3)
	waitSynced(t, in, second)
	if n := counter(t, in.reg, "echain_indexer_reorgs_total", nil); n < 1 {
		t.Fatalf("reorgs_total %v: the store followed the new chain without reverting the old one", n)
	}
	in.stop()
	compareStores(t, scratchIndex(t, second), s.DB)
}
