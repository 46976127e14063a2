package source

import (
	"context"
	"errors"
	"math/big"
	"net"
	"reflect"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/echain/echain-indexer/indexer/source/rpcproxy"
)

func newProxy(t testing.TB, target string) *rpcproxy.Proxy {
	t.Helper()
	p, err := rpcproxy.New(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// deadURL is an HTTP URL where nothing listens.
func deadURL(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return "http://" + addr
}

func TestFailoverBetweenEndpoints(t *testing.T) {
	c := startChain(t)
	ctx := context.Background()
	head, _ := c.Client().BlockNumber(ctx)

	t.Run("primary answers 502", func(t *testing.T) {
		bad := newProxy(t, c.HTTPURL)
		bad.Add(rpcproxy.Rule{Status: 502})
		good := newProxy(t, c.HTTPURL)
		reg := prometheus.NewRegistry()
		s := newSource(t, Config{Endpoints: []Endpoint{{Name: "bad", HTTPURL: bad.URL()}, {Name: "good", HTTPURL: good.URL()}}}, reg)
		for range 5 {
			n, err := s.BlockNumber(ctx)
			if err != nil || n != head {
				t.Fatalf("BlockNumber = %d, %v", n, err)
			}
		}
		st := s.Endpoints()
		if st[0].Errors == 0 || st[0].LastError == "" || st[1].Errors != 0 || st[1].Requests < 5 {
			t.Fatalf("accounting: %+v", st)
		}
		// The failing primary cools down, so it is not asked before every call.
		if bad.Calls("eth_blockNumber") >= 5 {
			t.Fatalf("bad endpoint asked %d times in 5 calls", bad.Calls("eth_blockNumber"))
		}
		if v := metricSum(t, reg, "echain_indexer_rpc_errors_total", map[string]string{"endpoint": "bad", "kind": kindServer}); v < 1 {
			t.Fatalf("errors metric %v", v)
		}
		if v := metricSum(t, reg, "echain_indexer_rpc_request_duration_seconds", map[string]string{"endpoint": "good", "method": "eth_blockNumber"}); v < 5 {
			t.Fatalf("latency histogram count %v", v)
		}
	})
	t.Run("primary refuses connections", func(t *testing.T) {
		s := newSource(t, Config{Endpoints: []Endpoint{{Name: "dead", HTTPURL: deadURL(t)}, {Name: "node", HTTPURL: c.HTTPURL}}}, nil)
		h, err := s.HeaderByNumber(ctx, nil)
		if err != nil || h.Number.Uint64() != head {
			t.Fatalf("header %v, %v", h, err)
		}
		if st := s.Endpoints(); st[0].Errors != 1 {
			t.Fatalf("dead endpoint errors %d", st[0].Errors)
		}
	})
	t.Run("primary recovers and is preferred again", func(t *testing.T) {
		flaky := newProxy(t, c.HTTPURL)
		remove := flaky.Add(rpcproxy.Rule{Status: 503})
		other := newProxy(t, c.HTTPURL)
		s := newSource(t, Config{Endpoints: []Endpoint{{Name: "flaky", HTTPURL: flaky.URL()}, {Name: "other", HTTPURL: other.URL()}}, BackoffBase: time.Millisecond, BackoffMax: time.Millisecond}, nil)
		if _, err := s.BlockNumber(ctx); err != nil {
			t.Fatal(err)
		}
		remove()
		time.Sleep(5 * time.Millisecond) // past the cooldown
		before := other.Calls("eth_blockNumber")
		if _, err := s.BlockNumber(ctx); err != nil {
			t.Fatal(err)
		}
		if other.Calls("eth_blockNumber") != before {
			t.Fatal("recovered primary not preferred")
		}
	})
}

func TestRetriesTransientErrors(t *testing.T) {
	c := startChain(t)
	ctx := context.Background()

	t.Run("429 honours Retry-After", func(t *testing.T) {
		p := newProxy(t, c.HTTPURL)
		p.Add(rpcproxy.Rule{Method: "eth_blockNumber", Times: 2, Status: 429, RetryAfter: "1"})
		s := newSource(t, Config{Endpoints: []Endpoint{{HTTPURL: p.URL()}}}, nil)
		start := time.Now()
		if _, err := s.BlockNumber(ctx); err != nil {
			t.Fatal(err)
		}
		// Two refusals asking for 1s each: the backoff alone (20ms base) would be far shorter.
		if el := time.Since(start); el < 2*time.Second {
			t.Fatalf("retried after %s, before the Retry-After of 2×1s", el)
		}
		if p.Calls("eth_blockNumber") != 3 {
			t.Fatalf("calls %d, want 3", p.Calls("eth_blockNumber"))
		}
	})
	t.Run("5xx, resets and indexing", func(t *testing.T) {
		p := newProxy(t, c.HTTPURL)
		p.Add(rpcproxy.Rule{Method: "eth_getBlockByNumber", Times: 1, Status: 500})
		p.Add(rpcproxy.Rule{Method: "eth_getBlockByNumber", Times: 1, Status: 504})
		p.Add(rpcproxy.Rule{Method: "eth_getBlockByNumber", Times: 1, Drop: true})
		p.Add(rpcproxy.Rule{Method: "eth_getBlockByNumber", Times: 1, Error: &rpcproxy.RPCError{Code: -32603, Message: "internal error"}})
		s := newSource(t, Config{Endpoints: []Endpoint{{HTTPURL: p.URL()}}}, nil)
		h, err := s.HeaderByNumber(ctx, big.NewInt(1))
		if err != nil || h.Number.Uint64() != 1 {
			t.Fatalf("header %v, %v", h, err)
		}
		if p.Faults("eth_getBlockByNumber") != 4 || p.Calls("eth_getBlockByNumber") != 5 {
			t.Fatalf("faults %d calls %d", p.Faults("eth_getBlockByNumber"), p.Calls("eth_getBlockByNumber"))
		}
	})
	t.Run("timeout then success", func(t *testing.T) {
		p := newProxy(t, c.HTTPURL)
		p.Add(rpcproxy.Rule{Method: "eth_blockNumber", Times: 1, Delay: 2 * time.Second})
		s := newSource(t, Config{Endpoints: []Endpoint{{HTTPURL: p.URL()}}, RequestTimeout: 200 * time.Millisecond}, nil)
		if _, err := s.BlockNumber(ctx); err != nil {
			t.Fatal(err)
		}
		if p.Calls("eth_blockNumber") != 2 {
			t.Fatalf("calls %d", p.Calls("eth_blockNumber"))
		}
	})
	t.Run("gives up loudly", func(t *testing.T) {
		p := newProxy(t, c.HTTPURL)
		p.Add(rpcproxy.Rule{Status: 503})
		reg := prometheus.NewRegistry()
		s := newSource(t, Config{Endpoints: []Endpoint{{HTTPURL: p.URL()}}, MaxAttempts: 3}, reg)
		_, err := s.BlockNumber(ctx)
		if !errors.Is(err, ErrRetriesExhausted) {
			t.Fatalf("got %v, want ErrRetriesExhausted", err)
		}
		if p.Calls("eth_blockNumber") != 3 {
			t.Fatalf("calls %d, want 3", p.Calls("eth_blockNumber"))
		}
		if v := metricSum(t, reg, "echain_indexer_rpc_giveups_total", map[string]string{"method": "eth_blockNumber"}); v != 1 {
			t.Fatalf("giveups %v", v)
		}
	})
	t.Run("retry budget bounds a long Retry-After", func(t *testing.T) {
		p := newProxy(t, c.HTTPURL)
		p.Add(rpcproxy.Rule{Status: 429, RetryAfter: "30"})
		s := newSource(t, Config{Endpoints: []Endpoint{{HTTPURL: p.URL()}}, RetryBudget: 500 * time.Millisecond}, nil)
		start := time.Now()
		_, err := s.BlockNumber(ctx)
		if !errors.Is(err, ErrRetriesExhausted) || time.Since(start) > 25*time.Second {
			t.Fatalf("got %v after %s", err, time.Since(start))
		}
	})
	t.Run("caller's cancellation ends retries", func(t *testing.T) {
		p := newProxy(t, c.HTTPURL)
		p.Add(rpcproxy.Rule{Status: 503})
		s := newSource(t, Config{Endpoints: []Endpoint{{HTTPURL: p.URL()}}, BackoffBase: time.Second, BackoffMax: time.Second}, nil)
		cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		_, err := s.BlockNumber(cctx)
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrRetriesExhausted) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestLogsRangeErrors(t *testing.T) {
	c := startChain(t)
	tr := makeTraffic(t, c, 3, 2)
	ctx := context.Background()
	head := tr.Blocks[len(tr.Blocks)-1].Number
	q := ethereum.FilterQuery{FromBlock: big.NewInt(0), ToBlock: new(big.Int).SetUint64(head)}
	cases := []struct {
		name           string
		rule           rpcproxy.Rule
		sugFrom, sugTo uint64
	}{
		{"infura", rpcproxy.MaxLogsRange(2, rpcproxy.Infura), 0, 1},
		{"alchemy", rpcproxy.MaxLogsRange(3, rpcproxy.Alchemy), 0, 2},
		{"alchemy without hint", rpcproxy.MaxLogsRange(3, rpcproxy.AlchemyNoHint), 0, 0},
		{"infura without hint", rpcproxy.MaxLogsRange(3, rpcproxy.NoHint), 0, 0},
		{"geth range cap", rpcproxy.MaxLogsRange(3, rpcproxy.Geth), 0, 2},
		{"query timeout", rpcproxy.MaxLogsRange(3, rpcproxy.Timeout), 0, 0},
		{"http 413", rpcproxy.Rule{Method: "eth_getLogs", Status: 413}, 0, 0},
		{"response too large", rpcproxy.Rule{Method: "eth_getLogs", Error: rpcproxy.ResponseTooLarge()}, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newProxy(t, c.HTTPURL)
			p.Add(tc.rule)
			s := newSource(t, Config{Endpoints: []Endpoint{{HTTPURL: p.URL()}}}, nil)
			_, err := s.Logs(ctx, q)
			var rte *RangeTooLargeError
			if !errors.As(err, &rte) {
				t.Fatalf("got %v, want RangeTooLargeError", err)
			}
			if rte.From != 0 || rte.To != head || rte.SuggestedFrom != tc.sugFrom || rte.SuggestedTo != tc.sugTo {
				t.Fatalf("got %d..%d suggesting %d..%d", rte.From, rte.To, rte.SuggestedFrom, rte.SuggestedTo)
			}
			if p.Calls("eth_getLogs") != 1 {
				t.Fatalf("a too-large range was retried: %d calls", p.Calls("eth_getLogs"))
			}
		})
	}
	t.Run("slow answer past LogsTimeout", func(t *testing.T) {
		p := newProxy(t, c.HTTPURL)
		p.Add(rpcproxy.Rule{Method: "eth_getLogs", Delay: 2 * time.Second})
		s := newSource(t, Config{Endpoints: []Endpoint{{HTTPURL: p.URL()}}, LogsTimeout: 200 * time.Millisecond}, nil)
		var rte *RangeTooLargeError
		if _, err := s.Logs(ctx, q); !errors.As(err, &rte) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("answer above MaxResponseBytes", func(t *testing.T) {
		s := newSource(t, Config{Endpoints: []Endpoint{{HTTPURL: c.HTTPURL}}, MaxResponseBytes: 2048}, nil)
		var rte *RangeTooLargeError
		if _, err := s.Logs(ctx, q); !errors.As(err, &rte) || !errors.Is(err, errResponseTooLarge) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("address limit", func(t *testing.T) {
		p := newProxy(t, c.HTTPURL)
		p.Add(rpcproxy.MaxAddresses(2))
		s := newSource(t, Config{Endpoints: []Endpoint{{HTTPURL: p.URL()}}}, nil)
		q3 := q
		q3.Addresses = []common.Address{{1}, {2}, {3}}
		_, err := s.Logs(ctx, q3)
		var ale *AddressLimitError
		if !errors.As(err, &ale) || ale.Addresses != 3 || !errors.Is(err, ErrTooManyAddresses) {
			t.Fatalf("got %v", err)
		}
		q3.Addresses = q3.Addresses[:2]
		if _, err := s.Logs(ctx, q3); err != nil {
			t.Fatalf("two addresses: %v", err)
		}
	})
}

func TestWalkLogsThroughRangeLimits(t *testing.T) {
	c := startChain(t)
	tr := makeTraffic(t, c, 12, 2)
	ctx := context.Background()
	head := tr.Blocks[len(tr.Blocks)-1].Number
	q := ethereum.FilterQuery{Addresses: []common.Address{tr.Ticket}}
	wantQ := q
	wantQ.FromBlock, wantQ.ToBlock = big.NewInt(0), new(big.Int).SetUint64(head)
	want, err := c.Client().FilterLogs(ctx, wantQ)
	if err != nil || len(want) == 0 {
		t.Fatalf("truth: %d logs, %v", len(want), err)
	}
	for _, style := range []rpcproxy.HintStyle{rpcproxy.Alchemy, rpcproxy.Infura, rpcproxy.NoHint} {
		p := newProxy(t, c.HTTPURL)
		p.Add(rpcproxy.MaxLogsRange(4, style))
		s := newSource(t, Config{Endpoints: []Endpoint{{HTTPURL: p.URL()}}}, nil)
		sizer := NewRangeSizer(RangeSizerConfig{Initial: 16})
		var got []types.Log
		st, err := WalkLogs(ctx, s, q, 0, head, sizer, func(logs []types.Log) error {
			got = append(got, logs...)
			return nil
		})
		if err != nil {
			t.Fatalf("style %d: %v", style, err)
		}
		if st.Blocks != head+1 || st.Logs != len(want) || len(got) != len(want) || st.Failures == 0 {
			t.Fatalf("style %d: %+v, got %d logs, want %d", style, st, len(got), len(want))
		}
		for i := range want {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Fatalf("style %d: log %d differs", style, i)
			}
		}
		if sizer.Size() > 4 {
			t.Fatalf("style %d: sizer at %d after the provider refused more than 4", style, sizer.Size())
		}
	}
}

func TestLaggingEndpointDoesNotHideBlocks(t *testing.T) {
	c := startChain(t)
	tr := makeTraffic(t, c, 6, 2)
	ctx := context.Background()
	ec := c.Client()
	last := tr.Blocks[len(tr.Blocks)-1]

	lagging := newProxy(t, c.HTTPURL)
	lagging.SetLag(4)
	direct := newProxy(t, c.HTTPURL)
	// The lagging endpoint is first in preference.
	s := newSource(t, Config{Endpoints: []Endpoint{{Name: "lagging", HTTPURL: lagging.URL()}, {Name: "direct", HTTPURL: direct.URL()}}}, nil)

	q := ethereum.FilterQuery{Addresses: []common.Address{tr.Ticket}, FromBlock: big.NewInt(0), ToBlock: new(big.Int).SetUint64(last.Number)}
	want, _ := ec.FilterLogs(ctx, q)
	got, err := s.Logs(ctx, q)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("range logs through a lagging primary: %d logs (%v), want %d", len(got), err, len(want))
	}
	if lagging.Calls("eth_getLogs") != 0 {
		t.Fatal("the lagging endpoint was asked for a range beyond its head")
	}
	h, err := s.HeaderByNumber(ctx, new(big.Int).SetUint64(last.Number))
	if err != nil || h.Hash() != last.Hash {
		t.Fatalf("head block by number: %v, %v", h, err)
	}
	h, err = s.HeaderByHash(ctx, last.Hash)
	if err != nil || h.Hash() != last.Hash {
		t.Fatalf("head block by hash: %v, %v", h, err)
	}
	bh := last.Hash
	gotB, err := s.Logs(ctx, ethereum.FilterQuery{BlockHash: &bh})
	wantB, _ := ec.FilterLogs(ctx, ethereum.FilterQuery{BlockHash: &bh})
	if err != nil || len(gotB) == 0 || !reflect.DeepEqual(gotB, wantB) {
		t.Fatalf("logs by hash: %d (%v), want %d", len(gotB), err, len(wantB))
	}
	txs, err := s.Txs(ctx, last.Hash, last.Txs)
	if err != nil || len(txs) != len(last.Txs) {
		t.Fatalf("txs of the head block: %d, %v", len(txs), err)
	}
	info, err := s.TransactionByHash(ctx, last.Txs[0])
	if err != nil || *info.BlockHash != last.Hash {
		t.Fatalf("tx of the head block: %v", err)
	}
	st := s.Endpoints()
	if !st[0].Lagging || st[1].Lagging || st[0].Head+4 != st[1].Head {
		t.Fatalf("status: %+v", st)
	}

	t.Run("alone, a lagging endpoint reports the block as not there yet", func(t *testing.T) {
		only := newSource(t, Config{Endpoints: []Endpoint{{HTTPURL: lagging.URL()}}}, nil)
		if _, err := only.Logs(ctx, q); !errors.Is(err, ErrBeyondHead) {
			t.Fatalf("got %v, want ErrBeyondHead", err)
		}
		if _, err := only.HeaderByHash(ctx, last.Hash); !errors.Is(err, ethereum.NotFound) {
			t.Fatalf("got %v, want NotFound", err)
		}
		if _, err := only.Txs(ctx, last.Hash, last.Txs); !errors.Is(err, ethereum.NotFound) {
			t.Fatalf("got %v, want NotFound", err)
		}
		if _, err := only.Logs(ctx, ethereum.FilterQuery{BlockHash: &bh}); !errors.Is(err, ethereum.NotFound) {
			t.Fatalf("got %v, want NotFound", err)
		}
	})
	t.Run("an empty answer for a block the endpoint lacks is not believed", func(t *testing.T) {
		// Some providers answer [] (not "unknown block") for a block they have not seen.
		quiet := newProxy(t, c.HTTPURL)
		quiet.SetLag(4)
		quiet.Add(rpcproxy.Rule{Method: "eth_getLogs", Result: []byte("[]")})
		s2 := newSource(t, Config{Endpoints: []Endpoint{{Name: "quiet", HTTPURL: quiet.URL()}, {Name: "direct", HTTPURL: direct.URL()}}}, nil)
		got, err := s2.Logs(ctx, ethereum.FilterQuery{BlockHash: &bh})
		if err != nil || !reflect.DeepEqual(got, wantB) {
			t.Fatalf("got %d logs (%v), want %d", len(got), err, len(wantB))
		}
		only := newSource(t, Config{Endpoints: []Endpoint{{HTTPURL: quiet.URL()}}}, nil)
		if _, err := only.Logs(ctx, ethereum.FilterQuery{BlockHash: &bh}); !errors.Is(err, ethereum.NotFound) {
			t.Fatalf("got %v, want NotFound", err)
		}
	})
}

func TestFinalizedUnsupportedAndStateUnavailable(t *testing.T) {
	c := startChain(t)
	tr := makeTraffic(t, c, 1, 1)
	ctx := context.Background()
	isFinalizedTag := func(call rpcproxy.Call) bool {
		return len(call.Params) > 0 && string(call.Params[0]) == `"finalized"`
	}

	t.Run("finalized tag refused", func(t *testing.T) {
		p := newProxy(t, c.HTTPURL)
		p.Add(rpcproxy.Rule{Method: "eth_getBlockByNumber", When: isFinalizedTag,
			Error: &rpcproxy.RPCError{Code: -32602, Message: "invalid argument 0: hex string without 0x prefix"}})
		s := newSource(t, Config{Endpoints: []Endpoint{{HTTPURL: p.URL()}}}, nil)
		if _, err := s.Finalized(ctx); !errors.Is(err, ErrFinalizedUnsupported) {
			t.Fatalf("got %v, want ErrFinalizedUnsupported", err)
		}
	})
	t.Run("no finalized block yet", func(t *testing.T) {
		p := newProxy(t, c.HTTPURL)
		p.Add(rpcproxy.Rule{Method: "eth_getBlockByNumber", When: isFinalizedTag, Result: []byte("null")})
		s := newSource(t, Config{Endpoints: []Endpoint{{HTTPURL: p.URL()}}}, nil)
		if _, err := s.Finalized(ctx); !errors.Is(err, ErrFinalizedUnsupported) {
			t.Fatalf("got %v, want ErrFinalizedUnsupported", err)
		}
	})
	t.Run("one endpoint supports it", func(t *testing.T) {
		p := newProxy(t, c.HTTPURL)
		p.Add(rpcproxy.Rule{Method: "eth_getBlockByNumber", When: isFinalizedTag, Error: &rpcproxy.RPCError{Code: -32000, Message: "finalized block not found"}})
		s := newSource(t, Config{Endpoints: []Endpoint{{HTTPURL: p.URL()}, {HTTPURL: c.HTTPURL}}}, nil)
		if h, err := s.Finalized(ctx); err != nil || h == nil {
			t.Fatalf("got %v, %v", h, err)
		}
	})

	msg := ethereum.CallMsg{To: &tr.Ticket, Data: []byte{0x1a, 0x2b, 0x3c, 0x4d}}
	pruned := &rpcproxy.RPCError{Code: -32000, Message: "historical state 0x5b1f is not available"}
	t.Run("state unavailable everywhere", func(t *testing.T) {
		p := newProxy(t, c.HTTPURL)
		p.Add(rpcproxy.Rule{Method: "eth_call", Error: pruned})
		s := newSource(t, Config{Endpoints: []Endpoint{{HTTPURL: p.URL()}}}, nil)
		_, err := s.CallContract(ctx, msg, big.NewInt(1))
		if !errors.Is(err, ErrStateUnavailable) || errors.Is(err, ErrRetriesExhausted) {
			t.Fatalf("got %v, want ErrStateUnavailable", err)
		}
		if p.Calls("eth_call") != 1 {
			t.Fatalf("retried a pruned-state answer %d times", p.Calls("eth_call"))
		}
	})
	t.Run("an archive endpoint answers", func(t *testing.T) {
		p := newProxy(t, c.HTTPURL)
		p.Add(rpcproxy.Rule{Method: "eth_call", Error: &rpcproxy.RPCError{Code: -32000, Message: "missing trie node abc (path ) state 0x12 is not available"}})
		archive := newProxy(t, c.HTTPURL)
		s := newSource(t, Config{Endpoints: []Endpoint{{Name: "full", HTTPURL: p.URL()}, {Name: "archive", HTTPURL: archive.URL()}}}, nil)
		price := ethereum.CallMsg{To: &tr.Ticket, Data: crypto.Keccak256([]byte("ticketPrice()"))[:4]}
		out, err := s.CallContract(ctx, price, big.NewInt(int64(tr.Blocks[0].Number)))
		if err != nil || new(big.Int).SetBytes(out).Int64() != 1000 || archive.Calls("eth_call") != 1 {
			t.Fatalf("archive answer: %x, %v", out, err)
		}
		// The full node's refusal did not count against it.
		if st := s.Endpoints(); st[0].Errors != 0 || st[0].CoolingDown != 0 {
			t.Fatalf("full node penalised: %+v", st[0])
		}
	})

	// Batched calls: the price at the traffic's first block three times, the first answered
	// "pruned" by a rule, and one call that reverts.
	price := crypto.Keccak256([]byte("ticketPrice()"))[:4]
	at := hexutil.EncodeUint64(tr.Blocks[0].Number)
	batch := func() ([]rpc.BatchElem, []hexutil.Bytes) {
		outs := make([]hexutil.Bytes, 4)
		b := make([]rpc.BatchElem, 4)
		for i := range b {
			data := hexutil.Bytes(price)
			if i == 3 {
				data = hexutil.Bytes(msg.Data)
			}
			b[i] = rpc.BatchElem{Method: "eth_call", Args: []any{map[string]any{"to": tr.Ticket, "data": data}, at}, Result: &outs[i]}
		}
		return b, outs
	}
	checkAnswered := func(t *testing.T, b []rpc.BatchElem, outs []hexutil.Bytes, from int) {
		t.Helper()
		for i := from; i < 3; i++ {
			if b[i].Error != nil || new(big.Int).SetBytes(outs[i]).Int64() != 1000 {
				t.Fatalf("call %d: %x, %v", i, outs[i], b[i].Error)
			}
		}
		var re *RPCError
		if !errors.As(b[3].Error, &re) || errors.Is(b[3].Error, ErrStateUnavailable) {
			t.Fatalf("reverting call: %v, want the node's error", b[3].Error)
		}
	}
	t.Run("batched calls, state gone for one", func(t *testing.T) {
		p := newProxy(t, c.HTTPURL)
		p.Add(rpcproxy.Rule{Method: "eth_call", Times: 1, Error: pruned})
		s := newSource(t, Config{Endpoints: []Endpoint{{HTTPURL: p.URL()}}}, nil)
		b, outs := batch()
		if err := s.BatchCallContext(ctx, b); err != nil {
			t.Fatal(err)
		}
		if !errors.Is(b[0].Error, ErrStateUnavailable) {
			t.Fatalf("call 0: %v, want ErrStateUnavailable", b[0].Error)
		}
		checkAnswered(t, b, outs, 1)
		if n := p.Calls("eth_call"); n != 4 {
			t.Fatalf("%d calls reached the node, want 4 (one batch, nothing asked again)", n)
		}
	})
	t.Run("batched calls, one rate limited", func(t *testing.T) {
		p := newProxy(t, c.HTTPURL)
		p.Add(rpcproxy.Rule{Method: "eth_call", Times: 1, Error: &rpcproxy.RPCError{Code: 429, Message: "too many requests"}})
		s := newSource(t, Config{Endpoints: []Endpoint{{HTTPURL: p.URL()}}, BackoffBase: time.Millisecond}, nil)
		b, outs := batch()
		if err := s.BatchCallContext(ctx, b); err != nil {
			t.Fatal(err)
		}
		checkAnswered(t, b, outs, 0)
		if n := p.Calls("eth_call"); n != 8 {
			t.Fatalf("%d calls reached the node, want 8 (the batch twice)", n)
		}
	})
	t.Run("batched calls, an archive endpoint answers the pruned one", func(t *testing.T) {
		full := newProxy(t, c.HTTPURL)
		full.Add(rpcproxy.Rule{Method: "eth_call", Error: pruned})
		archive := newProxy(t, c.HTTPURL)
		s := newSource(t, Config{Endpoints: []Endpoint{{Name: "full", HTTPURL: full.URL()}, {Name: "archive", HTTPURL: archive.URL()}}}, nil)
		b, outs := batch()
		if err := s.BatchCallContext(ctx, b); err != nil {
			t.Fatal(err)
		}
		checkAnswered(t, b, outs, 0)
		if full.Faults("eth_call") < 4 || archive.Calls("eth_call") != 4 {
			t.Fatalf("full node refused %d calls, archive answered %d; want the batch refused by the full node and each call asked alone on the archive",
				full.Faults("eth_call"), archive.Calls("eth_call"))
		}
	})
}
