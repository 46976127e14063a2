package source

import (
	"context"
	"io"
	"log/slog"
	"math/big"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/echain/echain-indexer/devchain"
	"github.com/echain/echain-indexer/internal/testwait"
)

// testLogger discards unless ECHAIN_TEST_LOG is set: background goroutines may log after a
// test's t.Log is gone.
func testLogger() *slog.Logger {
	if os.Getenv("ECHAIN_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func startChain(t testing.TB) *devchain.Chain {
	t.Helper()
	ctx := testwait.Context(t)
	var err error
	for range 3 { // devchain's deploy sometimes seals before its txs are in (reported in STATUS)
		var c *devchain.Chain
		c, err = devchain.Start(ctx, devchain.Config{MetadataAddr: "off"}, testLogger())
		if err == nil {
			t.Cleanup(func() { _ = c.Close() })
			return c
		}
	}
	t.Fatalf("devchain: %v", err)
	return nil
}

// newSource builds a Source with fast test timings; reg may be nil.
func newSource(t testing.TB, cfg Config, reg *prometheus.Registry) *Source {
	t.Helper()
	if cfg.BackoffBase == 0 {
		cfg.BackoffBase = 20 * time.Millisecond
	}
	if cfg.BackoffMax == 0 {
		cfg.BackoffMax = 200 * time.Millisecond
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 5 * time.Second
	}
	if cfg.HealthInterval == 0 {
		cfg.HealthInterval = -1
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	s, err := New(context.Background(), cfg, testLogger(), reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func hostPort(t testing.TB, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// minedBlock is a block of test traffic.
type minedBlock struct {
	Number uint64
	Hash   common.Hash
	Txs    []common.Hash // transactions that emitted logs
}

// traffic is an event with a ticket clone and blocks of ticket purchases (each purchase emits
// logs) plus a plain value transfer per block (no logs).
type traffic struct {
	Ticket common.Address
	Blocks []minedBlock
}

func makeTraffic(t testing.TB, c *devchain.Chain, blocks, buysPerBlock int) traffic {
	t.Helper()
	ctx := context.Background()
	org := c.User(0)
	must := func(h common.Hash, err error) common.Hash {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	// mine seals until every tx is in a block (devchain may seal before the pool has them) and
	// returns the block of the first.
	mine := func(txs ...common.Hash) common.Hash {
		t.Helper()
		if rs, err := c.Mine(ctx, txs...); err == nil {
			return rs[0].BlockHash
		}
		for range 5 {
			if _, err := c.Commit(); err != nil {
				t.Fatal(err)
			}
			var first common.Hash
			all := true
			for i, h := range txs {
				r, err := c.Receipt(ctx, h)
				if err != nil {
					all = false
					break
				}
				if i == 0 {
					first = r.BlockHash
				}
			}
			if all {
				return first
			}
		}
		t.Fatal("transactions never mined")
		return common.Hash{}
	}
	mine(must(c.VerifyOrganizer(ctx, org)))
	start := uint64(time.Now().Add(30 * 24 * time.Hour).Unix())
	mine(must(c.CreateEvent(ctx, org, devchain.EventParams{
		Name: "source test", MetadataURI: "ipfs://x", TicketPrice: big.NewInt(1000),
		MaxTickets: 1_000_000, StartTime: start, EndTime: start + 3600,
	})))
	det, err := c.EventDetails(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	tr := traffic{Ticket: det.TicketContract}
	users := c.Users()
	for b := range blocks {
		var txs []common.Hash
		for i := range buysPerBlock {
			buyer := users[1+(b*buysPerBlock+i)%(len(users)-1)]
			txs = append(txs, must(c.BuyTickets(ctx, buyer, det.TicketContract, 1+i%3)))
		}
		value := must(c.SendETH(ctx, users[1], users[2].Address, big.NewInt(int64(7+b))))
		mine(append(txs, value)...)
		// Group by the block each landed in: a retried seal may split them.
		for _, h := range txs {
			r, err := c.Receipt(ctx, h)
			if err != nil {
				t.Fatal(err)
			}
			n := r.BlockNumber.Uint64()
			if k := len(tr.Blocks); k == 0 || tr.Blocks[k-1].Hash != r.BlockHash {
				tr.Blocks = append(tr.Blocks, minedBlock{Number: n, Hash: r.BlockHash})
			}
			tr.Blocks[len(tr.Blocks)-1].Txs = append(tr.Blocks[len(tr.Blocks)-1].Txs, h)
		}
	}
	return tr
}

// metricSum adds up the samples of a counter or gauge family whose labels include want.
func metricSum(t testing.TB, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue metrics
				}
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum
}
