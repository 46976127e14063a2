package source

import (
	"context"
	"math"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/echain/echain-indexer/indexer/source/rpcproxy"
)

// TestRequestsPerSecondCap: a provider allowing 5 requests a second refuses a burst of 15 from
// a client without a cap; with Endpoint.RequestsPerSecond at the provider's rate, the same burst
// is spaced out and the provider refuses none of it.
func TestRequestsPerSecondCap(t *testing.T) {
	c := startChain(t)
	ctx := context.Background()
	const rps, calls = 5, 15

	burst := func(t *testing.T, cap float64) (rpcproxy.Usage, *prometheus.Registry, time.Duration) {
		p := newProxy(t, c.HTTPURL)
		p.SetProvider(rpcproxy.Provider{RequestsPerSecond: rps})
		reg := prometheus.NewRegistry()
		s := newSource(t, Config{Endpoints: []Endpoint{{Name: "capped", HTTPURL: p.URL(), RequestsPerSecond: cap}},
			MaxAttempts: 20, BackoffMax: time.Second}, reg)
		start := time.Now()
		var g errgroup.Group
		for i := range calls {
			g.Go(func() error {
				_, err := s.HeaderByNumber(ctx, big.NewInt(int64(i%2)))
				return err
			})
		}
		if err := g.Wait(); err != nil {
			t.Fatal(err)
		}
		return p.Usage(), reg, time.Since(start)
	}

	t.Run("uncapped", func(t *testing.T) {
		u, _, _ := burst(t, 0)
		if u.RateLimited == 0 {
			t.Fatalf("the provider refused none of %d requests sent at once (usage %+v): the test cannot tell the cap works", u.Requests, u)
		}
	})
	t.Run("capped", func(t *testing.T) {
		u, reg, took := burst(t, rps)
		if u.RateLimited != 0 {
			t.Fatalf("%d of %d requests refused with 429 under a cap at the provider's rate", u.RateLimited, u.Requests)
		}
		if u.Requests < calls {
			t.Fatalf("provider saw %d requests, want at least %d", u.Requests, calls)
		}
		// Half a second's requests at once, the rest spaced at 1/rps: a lower bound, which a busy
		// machine only lengthens.
		if min := time.Duration(u.Requests-rps/2) * time.Second / rps; took < min*9/10 {
			t.Fatalf("%d requests took %s, less than their spacing allows (%s)", u.Requests, took, min)
		}
		if w := metricSum(t, reg, "echain_indexer_rpc_rate_limit_wait_seconds_total", map[string]string{"endpoint": "capped"}); w <= 0 {
			t.Fatalf("echain_indexer_rpc_rate_limit_wait_seconds_total = %v, want the time the burst waited", w)
		}
	})
	t.Run("config", func(t *testing.T) {
		for _, v := range []float64{-1, math.Inf(1), math.NaN()} {
			_, err := New(ctx, Config{Endpoints: []Endpoint{{HTTPURL: c.HTTPURL, RequestsPerSecond: v}}}, testLogger(), prometheus.NewRegistry())
			if err == nil || !strings.Contains(err.Error(), "endpoints[0].requests_per_second") {
				t.Errorf("RequestsPerSecond %v: err %v, want one naming endpoints[0].requests_per_second", v, err)
			}
			_, err = New(ctx, Config{Endpoints: []Endpoint{{HTTPURL: c.HTTPURL, CallsPerSecond: v}}}, testLogger(), prometheus.NewRegistry())
			if err == nil || !strings.Contains(err.Error(), "endpoints[0].calls_per_second") {
				t.Errorf("CallsPerSecond %v: err %v, want one naming endpoints[0].calls_per_second", v, err)
			}
		}
	})
}

// TestCallsPerSecondCap: a provider counting each call of a batch (ElementsPerSecond) refuses
// two batches of 30 headers sent at once from a client without a cap; with
// Endpoint.CallsPerSecond at its rate, batches shrink to half a second's calls and are spaced, and
// the provider refuses none.
func TestCallsPerSecondCap(t *testing.T) {
	c := startChain(t)
	ctx := context.Background()
	const cps, calls = 10, 30
	head, err := c.Client().BlockNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	numbers := make([]uint64, calls)
	for i := range numbers {
		numbers[i] = uint64(i) % (head + 1)
	}

	burst := func(t *testing.T, cap float64) (rpcproxy.Usage, *Source) {
		p := newProxy(t, c.HTTPURL)
		p.SetProvider(rpcproxy.Provider{ElementsPerSecond: cps})
		s := newSource(t, Config{Endpoints: []Endpoint{{Name: "capped", HTTPURL: p.URL(), CallsPerSecond: cap}},
			MaxAttempts: 20, BackoffMax: time.Second}, nil)
		var g errgroup.Group
		for range 2 {
			g.Go(func() error {
				hs, err := s.HeadersByNumber(ctx, numbers)
				if err == nil && len(hs) != calls {
					t.Errorf("%d headers for %d numbers", len(hs), calls)
				}
				return err
			})
		}
		if err := g.Wait(); err != nil {
			t.Fatal(err)
		}
		return p.Usage(), s
	}

	t.Run("uncapped", func(t *testing.T) {
		u, _ := burst(t, 0)
		if u.RateLimited == 0 {
			t.Fatalf("the provider refused none of %d calls sent at once (usage %+v): the test cannot tell the cap works", u.Elements, u)
		}
	})
	t.Run("capped", func(t *testing.T) {
		u, s := burst(t, cps)
		if u.RateLimited != 0 {
			t.Fatalf("%d of %d requests refused with 429 under a cap at the provider's rate", u.RateLimited, u.Requests)
		}
		if s.cfg.BatchSize != cps/2 {
			t.Fatalf("batch size %d under a cap of %d calls a second, want half a second's, %d", s.cfg.BatchSize, cps, cps/2)
		}
		if u.Elements < 2*calls || u.Requests < 2*calls/(cps/2) {
			t.Fatalf("provider saw %d requests of %d calls, want at least %d of %d", u.Requests, u.Elements, 2*calls/(cps/2), 2*calls)
		}
	})
}
