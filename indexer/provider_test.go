package indexer_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/echain/echain-indexer/devchain"
	"github.com/echain/echain-indexer/indexer/source"
	"github.com/echain/echain-indexer/indexer/source/rpcproxy"
	"github.com/echain/echain-indexer/store/storetest"
)

// TestThroughProvider backfills and follows the head through the proxy playing a hosted
// provider: added latency with jitter, a request rate low enough for 429 storms, 5xx answers, a
// getLogs range cap in each provider's words in turn (Chainstack, QuickNode, Alchemy, Infura),
// and WebSocket connections cut while following. No block is lost or doubled, and the store
// equals a from-scratch index of the same chain.
func TestThroughProvider(t *testing.T) {
	c := startChain(t, devchain.Config{})
	tr := devchain.NewTraffic(c, devchain.TrafficConfig{TxsPerBlock: 5}, quietLog())
	steps(t, tr, 200)
	proxy, tcp := httpProxy(t, c), wsProxy(t, c)
	styles := []rpcproxy.HintStyle{rpcproxy.Chainstack, rpcproxy.QuickNode, rpcproxy.Alchemy, rpcproxy.Infura}
	// Each style caps lower than the one before, so that the range the follower learned under
	// one is refused again under the next.
	caps := map[rpcproxy.HintStyle]uint64{rpcproxy.Chainstack: 16, rpcproxy.QuickNode: 13, rpcproxy.Alchemy: 10, rpcproxy.Infura: 7}
	profile := func(style rpcproxy.HintStyle) rpcproxy.Provider {
		// 8 requests/s: the backfill's concurrent ranges burst past it (429 storms).
		return rpcproxy.Provider{Latency: 20 * time.Millisecond, Jitter: 10 * time.Millisecond, RequestsPerSecond: 8,
			ServerErrors: 0.03, MaxLogsRange: caps[style], MaxBatch: 50, Style: style, Seed: uint64(style) + 1}
	}
	var total rpcproxy.Usage
	add := func(u rpcproxy.Usage) {
		total.Requests += u.Requests
		total.RateLimited += u.RateLimited
		total.ServerErrors += u.ServerErrors
		total.CapRefused += u.CapRefused
	}
	refusedBy := map[rpcproxy.HintStyle]int64{}
	style := 0
	proxy.SetProvider(profile(styles[style]))

	s := chainSetup(c, storetest.NewDB(t))
	s.Endpoints = []source.Endpoint{{Name: "provider", HTTPURL: proxy.URL(), WSURL: "ws://" + tcp.Addr()}}
	s.Source.HeadTimeout = time.Second
	s.Source.ReconnectMax = 500 * time.Millisecond
	s.Config.FinalityDepth = 8
	s.Config.BackfillMinBlocks = 16
	s.Config.Range = source.RangeSizerConfig{Initial: 64, Max: 128}
	in := startIndexer(t, s)

	// Every style in turn, each until it refused some ranges; the chain keeps moving, and the
	// WebSocket is cut now and then.
	for i := 0; style < len(styles) || i < 60; i++ {
		if style < len(styles) {
			if u := proxy.Usage(); u.CapRefused >= 1 {
				refusedBy[styles[style]] = u.CapRefused
				add(u)
				style++
				if style < len(styles) {
					proxy.SetProvider(profile(styles[style]))
				} else {
					// The rest of the run: a 429 storm and 5xx answers often enough that they are
					// met whatever share of the styles' few requests drew one. The follower asks
					// about one request per block and the loop seals blocks faster than 2 a second.
					proxy.SetProvider(rpcproxy.Provider{Latency: 20 * time.Millisecond, Jitter: 10 * time.Millisecond, RequestsPerSecond: 2, ServerErrors: 0.1, Seed: 99})
				}
				// A fresh backfill range for the next style: the head moves on by more than the cap
				// while the provider answers only 503, so that the follower (which keeps up with the
				// head at a request per block) falls far enough behind to backfill again.
				hold := proxy.Add(rpcproxy.Rule{Status: http.StatusServiceUnavailable})
				steps(t, tr, 40)
				hold()
			}
		}
		if i%20 == 19 {
			tcp.CutAll()
		}
		steps(t, tr, 1)
		time.Sleep(20 * time.Millisecond)
		if err, done := in.runErr(); done {
			t.Fatalf("indexer stopped: %v", err)
		}
		if i > 3000 {
			t.Fatalf("the provider refused ranges only in %v styles", refusedBy)
		}
	}
	waitSynced(t, in, c)
	add(proxy.Usage())
	t.Logf("through the provider: %+v; refusals per style %v; websocket connections %d", total, refusedBy, tcp.Accepted())
	if total.RateLimited == 0 || total.ServerErrors == 0 {
		t.Errorf("no 429 storm or no 5xx met: %+v", total)
	}
	// The counter moves just after the store's commit: wait for it, then it must be exact.
	want := float64(c.Head().Number.Int64() - in.fl.StartBlock() + 1)
	for deadline := time.Now().Add(time.Minute); counter(t, in.reg, "echain_indexer_blocks_indexed_total", nil) < want && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if blocks := counter(t, in.reg, "echain_indexer_blocks_indexed_total", nil); blocks != want {
		t.Errorf("committed %v blocks, want %v: a block was missed or doubled", blocks, want)
	}
	in.stop()
	compareStores(t, scratchIndex(t, c), s.DB)
}
