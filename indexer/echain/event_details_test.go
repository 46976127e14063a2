package echain

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/echain/echain-indexer/devchain"
	"github.com/echain/echain-indexer/indexer/source"
)

// faultyChain injects failures into the mappings' chain access (a real node cannot be made to
// fail on cue). batch selects whether it offers BatchCallContext, so both call paths run.
type faultyChain struct {
	Chain
	batch bool

	mu        sync.Mutex
	atHash    error // returned by calls at a block hash (the creation block)
	latest    error // returned by calls at the latest block
	txLookups atomic.Int64
	calls     atomic.Int64
}

func (f *faultyChain) set(atHash, latest error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.atHash, f.latest = atHash, latest
}

func (f *faultyChain) errs() (error, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.atHash, f.latest
}

func (f *faultyChain) CallContractAtHash(ctx context.Context, msg ethereum.CallMsg, h common.Hash) ([]byte, error) {
	f.calls.Add(1)
	if err, _ := f.errs(); err != nil {
		return nil, err
	}
	return f.Chain.CallContractAtHash(ctx, msg, h)
}

func (f *faultyChain) CallContract(ctx context.Context, msg ethereum.CallMsg, n *big.Int) ([]byte, error) {
	f.calls.Add(1)
	if _, err := f.errs(); err != nil {
		return nil, err
	}
	return f.Chain.CallContract(ctx, msg, n)
}

func (f *faultyChain) TransactionByHash(ctx context.Context, h common.Hash) (*source.TxInfo, error) {
	f.txLookups.Add(1)
	return f.Chain.TransactionByHash(ctx, h)
}

// batchingFaultyChain also answers JSON-RPC batches, failing their elements the same way.
type batchingFaultyChain struct{ *faultyChain }

func (f batchingFaultyChain) BatchCallContext(ctx context.Context, b []rpc.BatchElem) error {
	if err := f.Chain.(BatchCaller).BatchCallContext(ctx, b); err != nil {
		return err
	}
	atHash, latest := f.errs()
	for i := range b {
		if b[i].Method == "eth_getTransactionByHash" {
			f.txLookups.Add(1)
			continue
		}
		f.calls.Add(1)
		if _, isHash := b[i].Args[1].(map[string]any); isHash && atHash != nil {
			b[i].Error = atHash
		} else if !isHash && latest != nil {
			b[i].Error = latest
		}
	}
	return nil
}

var errNoHistory = errors.New("historical state 0x4f3a is not available")

// fallbackScenario creates one event directly and one through a smart wallet.
func fallbackScenario(x *harness) (direct, via devchain.EventParams, e1, e2 devchain.Created) {
	ctx, dc := x.ctx, x.dc
	org, owner := dc.User(0), dc.User(1)
	now := dc.Head().Time
	full, _ := devchain.MetadataURIOfKind(1, 0, devchain.MetaFull)
	other, _ := devchain.MetadataURIOfKind(1, 50, devchain.MetaFull)
	direct = devchain.EventParams{Name: "Direct", MetadataURI: full, TicketPrice: gwei(5), MaxTickets: 10, StartTime: now + 100, EndTime: now + 200}
	via = devchain.EventParams{Name: "Via wallet", MetadataURI: other, TicketPrice: gwei(7), MaxTickets: 20, StartTime: now + 300, EndTime: now + 400}
	x.send(dc.VerifyOrganizer(ctx, org))
	wtx, wallet, err := dc.DeployWallet(ctx, owner)
	x.send(wtx, err)
	x.mine()
	x.send(dc.VerifyOrganizerVia(ctx, owner, wallet))
	x.mine()
	c1 := x.send(dc.CreateEvent(ctx, org, direct))
	c2 := x.send(dc.CreateEventVia(ctx, owner, wallet, via))
	rs := x.mine(c1, c2)
	e1 = x.created(rs[0])
	e2 = x.created(rs[1])
	return direct, via, e1, e2
}

func checkTimes(t *testing.T, x *harness, id uint64, p devchain.EventParams) {
	t.Helper()
	e := x.state().Get("Event", fmt.Sprint(id))
	if e == nil {
		t.Fatalf("event %d missing", id)
	}
	if e["startTime"] != fmt.Sprint(p.StartTime) || e["endTime"] != fmt.Sprint(p.EndTime) || e["metadataUri"] != p.MetadataURI {
		t.Errorf("event %d: startTime %v endTime %v metadataUri %v, want %d %d %s", id, e["startTime"], e["endTime"], e["metadataUri"], p.StartTime, p.EndTime, p.MetadataURI)
	}
}

// TestEventDetailsFallbackOnPrunedNode runs on a node that keeps only recent state, like geth
// and most providers: by the time the backfill reaches the creation block its state is gone.
func TestEventDetailsFallbackOnPrunedNode(t *testing.T) {
	x := newHarness(t, harnessOpts{archive: false})
	direct, via, e1, e2 := fallbackScenario(x)
	for range 140 {
		if _, err := x.dc.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	// The node really refuses the creation block's state now.
	to := x.dc.Addresses.EventFactory
	data, _ := x.h.abi.getEventDetails.Inputs.Pack(big.NewInt(1))
	hd, err := x.dc.Client().HeaderByNumber(x.ctx, new(big.Int).SetUint64(x.dc.Addresses.StartBlock+3))
	if err != nil {
		t.Fatal(err)
	}
	_, err = x.chain.CallContractAtHash(x.ctx, ethereum.CallMsg{To: &to, Data: append(x.h.abi.getEventDetails.ID, data...)}, hd.Hash())
	if classifyCallError(err) != callNoHistory {
		t.Fatalf("call at an old block: %v; want the node to say its state is gone", err)
	}
	indexWithoutHistory(t, x, nil, 0, direct, via, e1, e2)
}

// TestEventDetailsFallbackInjected injects the pruned-state answer on an archive node, through
// the batched and the one-call-at-a-time paths, then a transient failure that must stop Prepare
// (to be retried) rather than fall back.
func TestEventDetailsFallbackInjected(t *testing.T) {
	for _, batch := range []bool{false, true} {
		t.Run(fmt.Sprintf("batch=%v", batch), func(t *testing.T) {
			var f *faultyChain
			x := newHarness(t, harnessOpts{archive: true, wrap: func(c Chain) Chain {
				f = &faultyChain{Chain: c, batch: batch}
				if batch {
					return batchingFaultyChain{f}
				}
				return f
			}})
			direct, via, e1, e2 := fallbackScenario(x)

			// A transient failure: no fallback, an error, nothing committed.
			f.set(errors.New("dial tcp 127.0.0.1:8545: connect: connection refused"), nil)
			if err := x.indexErr(); err == nil || !strings.Contains(err.Error(), "connection refused") {
				t.Fatalf("index with a refusing node: %v, want the transient error", err)
			}
			if n := counterValue(t, x.h.m.detailsFallback.WithLabelValues("latest")); n != 0 {
				t.Errorf("a transient failure led to %v fallbacks to the latest block", n)
			}
			if n := x.state().Count("Event"); n != 0 {
				t.Fatalf("%d events committed after a failed Prepare", n)
			}

			f.txLookups.Store(0)
			f.calls.Store(0)
			indexWithoutHistory(t, x, f, 2, direct, via, e1, e2)
		})
	}
}

// TestEventDetailsFallbackFromKnownCalldata: when the follower already holds the creating
// transactions (a backfill from block receipts), their calldata is read there instead of asking
// the node for each.
func TestEventDetailsFallbackFromKnownCalldata(t *testing.T) {
	var f *faultyChain
	x := newHarness(t, harnessOpts{archive: true, known: true, wrap: func(c Chain) Chain {
		f = &faultyChain{Chain: c, batch: true}
		return batchingFaultyChain{f}
	}})
	direct, via, e1, e2 := fallbackScenario(x)
	indexWithoutHistory(t, x, f, 0, direct, via, e1, e2)
}

// indexWithoutHistory indexes with the creation block's state gone (injected through f, or
// really pruned when f is nil) and checks where each event's details came from: the calldata of
// the direct createEvent, the latest block for the smart wallet's (not a createEvent call on the
// factory). lookups is how many transactions should have been asked of f.
func indexWithoutHistory(t *testing.T, x *harness, f *faultyChain, lookups int64, direct, via devchain.EventParams, e1, e2 devchain.Created) {
	t.Helper()
	if f != nil {
		f.set(errNoHistory, nil)
	}
	calldata0 := counterValue(t, x.h.m.detailsCalldata)
	latest0 := counterValue(t, x.h.m.detailsFallback.WithLabelValues("latest"))
	x.index()
	checkTimes(t, x, e1.EventID, direct)
	checkTimes(t, x, e2.EventID, via)
	if got := counterValue(t, x.h.m.detailsCalldata) - calldata0; got != 1 {
		t.Errorf("details from calldata = %v, want 1", got)
	}
	if got := counterValue(t, x.h.m.detailsFallback.WithLabelValues("latest")) - latest0; got != 1 {
		t.Errorf("latest fallbacks = %v, want 1", got)
	}
	if f != nil {
		if n := f.txLookups.Load(); n != lookups {
			t.Errorf("%d transaction lookups, want %d", n, lookups)
		}
		// The wallet's event: once at the creation block (state gone), once at the latest.
		if n := f.calls.Load(); n != 2 {
			t.Errorf("%d getEventDetails calls, want 2", n)
		}
	}
	x.compare()
}

// TestEventDetailsCalledOnlyForIndirectCreations: on an archive node, an event created by a
// direct createEvent call takes its details from the calldata, with no getEventDetails call at
// historical state; one created through a smart wallet is still called for. The entities equal
// the oracle's either way, whether the transactions are held (receipts backfill) or looked up
// (in a batch or one by one).
func TestEventDetailsCalledOnlyForIndirectCreations(t *testing.T) {
	for _, tc := range []struct {
		name         string
		batch, known bool
		lookups      int64
	}{
		{"lookup", false, false, 2}, {"lookup batched", true, false, 2}, {"known", true, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f *faultyChain
			x := newHarness(t, harnessOpts{archive: true, known: tc.known, wrap: func(c Chain) Chain {
				f = &faultyChain{Chain: c, batch: tc.batch}
				if tc.batch {
					return batchingFaultyChain{f}
				}
				return f
			}})
			direct, via, e1, e2 := fallbackScenario(x)
			x.index()
			checkTimes(t, x, e1.EventID, direct)
			checkTimes(t, x, e2.EventID, via)
			if n := f.calls.Load(); n != 1 {
				t.Errorf("%d getEventDetails calls, want 1 (the wallet's event only)", n)
			}
			if got := counterValue(t, x.h.m.detailsCalls); got != 1 {
				t.Errorf("event_details_calls_total = %v, want 1", got)
			}
			if got := counterValue(t, x.h.m.detailsCalldata); got != 1 {
				t.Errorf("details from calldata = %v, want 1", got)
			}
			if n := f.txLookups.Load(); n != tc.lookups {
				t.Errorf("%d transaction lookups, want %d", n, tc.lookups)
			}
			x.compare()
		})
	}
}

// TestEventDetailsUnavailableEverywhere: a factory that can never answer (every call reverts)
// must not stall indexing: the event is indexed with zero times and no metadata.
func TestEventDetailsUnavailableEverywhere(t *testing.T) {
	var f *faultyChain
	x := newHarness(t, harnessOpts{archive: true, wrap: func(c Chain) Chain {
		f = &faultyChain{Chain: c}
		return f
	}})
	_, via, _, e2 := fallbackScenario(x)
	f.set(errNoHistory, errors.New("execution reverted"))
	x.index()
	e := x.state().Get("Event", fmt.Sprint(e2.EventID))
	if e == nil || e["startTime"] != "0" || e["endTime"] != "0" || e["metadataUri"] != "" || e["title"] != via.Name {
		t.Errorf("event through the wallet: %v", e)
	}
	if got := counterValue(t, x.h.m.detailsFallback.WithLabelValues("none")); got != 1 {
		t.Errorf("unavailable details = %v, want 1", got)
	}
}

func TestClassifyCallError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want callKind
	}{
		{nil, callOK},
		{errors.New("historical state 0xab is not available"), callNoHistory},
		{errors.New("missing trie node 1234 (path )"), callNoHistory},
		{fmt.Errorf("call: %w", source.ErrStateUnavailable), callNoHistory},
		{errors.New("execution reverted: UnknownEvent(7)"), callDeterministic},
		{errors.New("getEventDetails: empty result"), callDeterministic},
		{errors.New("503 Service Unavailable"), callTransient},
		{context.DeadlineExceeded, callTransient},
	} {
		if got := classifyCallError(tc.err); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.err, got, tc.want)
		}
	}
}
