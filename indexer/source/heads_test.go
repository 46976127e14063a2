package source

import (
	"context"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/echain/echain-indexer/devchain"
	"github.com/echain/echain-indexer/indexer/source/rpcproxy"
	"github.com/echain/echain-indexer/internal/testwait"
)

// gapFiller consumes heads the way the follower does: on each head it fetches every block from
// its cursor up to the head, so heads may skip numbers without a block being missed.
type gapFiller struct {
	mu     sync.Mutex
	cursor uint64
	seen   map[uint64]common.Hash
	heads  int
	done   chan struct{}
}

func fillGaps(ctx context.Context, t *testing.T, s *Source, heads <-chan *types.Header, from uint64) *gapFiller {
	g := &gapFiller{cursor: from, seen: map[uint64]common.Hash{}, done: make(chan struct{})}
	go func() {
		defer close(g.done)
		for h := range heads {
			g.mu.Lock()
			g.heads++
			cursor := g.cursor
			g.mu.Unlock()
			for n := cursor + 1; n <= h.Number.Uint64(); n++ {
				hd, err := s.HeaderByNumber(ctx, new(big.Int).SetUint64(n))
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("gap fill %d: %v", n, err)
					}
					return
				}
				g.mu.Lock()
				g.seen[n] = hd.Hash()
				g.cursor = n
				g.mu.Unlock()
			}
		}
	}()
	return g
}

func (g *gapFiller) at() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cursor
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.Until(t, what, cond)
}

func commit(t *testing.T, c *devchain.Chain) uint64 {
	t.Helper()
	if _, err := c.Commit(); err != nil {
		t.Fatal(err)
	}
	return c.Head().Number.Uint64()
}

// checkCanonical asserts the filler saw every block in (from, to] with the chain's hashes.
func checkCanonical(t *testing.T, c *devchain.Chain, g *gapFiller, from, to uint64) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	for n := from + 1; n <= to; n++ {
		want, err := c.Client().HeaderByNumber(context.Background(), new(big.Int).SetUint64(n))
		if err != nil {
			t.Fatal(err)
		}
		if g.seen[n] != want.Hash() {
			t.Fatalf("block %d: saw %s, chain has %s", n, g.seen[n], want.Hash())
		}
	}
}

func headsSetup(t *testing.T, c *devchain.Chain, withWS bool, headTimeout time.Duration) (*Source, *rpcproxy.TCPProxy, *prometheus.Registry) {
	t.Helper()
	ep := Endpoint{Name: "node", HTTPURL: c.HTTPURL}
	var tcp *rpcproxy.TCPProxy
	if withWS {
		var err error
		tcp, err = rpcproxy.NewTCP(hostPort(t, c.WSURL))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(tcp.Close)
		ep.WSURL = "ws://" + tcp.Addr()
	}
	reg := prometheus.NewRegistry()
	s := newSource(t, Config{
		Endpoints:    []Endpoint{ep},
		HeadTimeout:  headTimeout,
		PollInterval: 50 * time.Millisecond,
		ReconnectMin: 50 * time.Millisecond,
		ReconnectMax: 200 * time.Millisecond,
	}, reg)
	return s, tcp, reg
}

func TestNewHeadsSurviveConnectionCuts(t *testing.T) {
	c := startChain(t)
	s, tcp, reg := headsSetup(t, c, true, 10*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := c.Head().Number.Uint64()
	heads, err := s.SubscribeNewHeads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	g := fillGaps(ctx, t, s, heads, start)
	waitFor(t, "websocket mode", func() bool { return s.HeadState().Mode == ModeWebSocket })

	var head uint64
	for range 3 {
		head = commit(t, c)
	}
	waitFor(t, "heads over websocket", func() bool { return g.at() == head })
	viaWS := metricSum(t, reg, "echain_indexer_rpc_heads_total", map[string]string{"via": ModeWebSocket})
	if viaWS < 1 {
		t.Fatalf("no head arrived over the websocket")
	}

	// Cut every connection and refuse new ones for a while: heads keep coming by polling.
	tcp.Refuse(time.Second)
	if tcp.CutAll() == 0 {
		t.Fatal("no websocket connection to cut")
	}
	waitFor(t, "polling mode", func() bool { return s.HeadState().Mode == ModePolling })
	polled := metricSum(t, reg, "echain_indexer_rpc_heads_total", map[string]string{"via": ModePolling})
	for range 3 {
		head = commit(t, c)
		time.Sleep(60 * time.Millisecond)
	}
	waitFor(t, "heads by polling during the outage", func() bool { return g.at() == head })
	if s.HeadState().Mode != ModePolling {
		t.Fatalf("mode %q during the refusal", s.HeadState().Mode)
	}
	if v := metricSum(t, reg, "echain_indexer_rpc_heads_total", map[string]string{"via": ModePolling}); v <= polled {
		t.Fatal("polling delivered no head during the outage")
	}

	// After the refusal the subscription comes back by itself.
	waitFor(t, "websocket again", func() bool { return s.HeadState().Mode == ModeWebSocket })
	if tcp.Refused() == 0 {
		t.Fatal("no reconnect attempt hit the refusal")
	}
	if v := metricSum(t, reg, "echain_indexer_rpc_subscription_reconnects_total", map[string]string{"reason": "dropped"}); v < 1 {
		t.Fatalf("dropped reconnects %v", v)
	}
	if s.HeadState().Reconnects < 2 {
		t.Fatalf("reconnects %d, want the drop and the refused dials", s.HeadState().Reconnects)
	}
	for range 3 {
		head = commit(t, c)
	}
	waitFor(t, "heads after reconnecting", func() bool { return g.at() == head })
	if v := metricSum(t, reg, "echain_indexer_rpc_heads_total", map[string]string{"via": ModeWebSocket}); v <= viaWS {
		t.Fatal("no websocket head after reconnecting")
	}
	checkCanonical(t, c, g, start, head)

	cancel()
	select {
	case <-g.done:
	case <-testwait.After(t):
		t.Fatal("heads channel not closed after cancel")
	}
	waitFor(t, "stopped mode", func() bool { return s.HeadState().Mode == ModeStopped })
}

func TestNewHeadsSilentSubscription(t *testing.T) {
	c := startChain(t)
	s, tcp, reg := headsSetup(t, c, true, 300*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := c.Head().Number.Uint64()
	heads, err := s.SubscribeNewHeads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	g := fillGaps(ctx, t, s, heads, start)
	waitFor(t, "websocket mode", func() bool { return s.HeadState().Mode == ModeWebSocket })

	// A quiet chain is not a quiet subscription.
	time.Sleep(time.Second)
	if v := metricSum(t, reg, "echain_indexer_rpc_subscription_reconnects_total", nil); v != 0 {
		t.Fatalf("resubscribed %v times while the chain was idle", v)
	}

	// The connection stays up but carries nothing.
	if tcp.Freeze() == 0 {
		t.Fatal("nothing to freeze")
	}
	var head uint64
	for range 2 {
		head = commit(t, c)
	}
	waitFor(t, "heads despite the silent subscription", func() bool { return g.at() == head })
	waitFor(t, "silent detection", func() bool {
		return metricSum(t, reg, "echain_indexer_rpc_subscription_reconnects_total", map[string]string{"reason": "silent"}) >= 1
	})
	waitFor(t, "resubscribed", func() bool { return s.HeadState().Mode == ModeWebSocket && tcp.Accepted() >= 2 })
	viaWS := metricSum(t, reg, "echain_indexer_rpc_heads_total", map[string]string{"via": ModeWebSocket})
	head = commit(t, c)
	waitFor(t, "a head on the new subscription", func() bool {
		return metricSum(t, reg, "echain_indexer_rpc_heads_total", map[string]string{"via": ModeWebSocket}) > viaWS
	})
	waitFor(t, "gap fill", func() bool { return g.at() == head })
	checkCanonical(t, c, g, start, head)
}

func TestNewHeadsPollingWithoutWebSocket(t *testing.T) {
	c := startChain(t)
	s, _, _ := headsSetup(t, c, false, time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := c.Head().Number.Uint64()
	heads, err := s.SubscribeNewHeads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	g := fillGaps(ctx, t, s, heads, start)
	var head uint64
	for range 4 {
		head = commit(t, c)
	}
	waitFor(t, "polled heads", func() bool { return g.at() == head })
	if s.HeadState().Mode != ModePolling {
		t.Fatalf("mode %q", s.HeadState().Mode)
	}
	checkCanonical(t, c, g, start, head)
	s.Close() // closing the source ends the subscription
	select {
	case <-g.done:
	case <-testwait.After(t):
		t.Fatal("heads channel not closed by Close")
	}
}
