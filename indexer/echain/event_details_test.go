package echain

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/echain/echain-indexer/devchain"
	"github.com/echain/echain-indexer/indexer"
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

// scenarioEvents are the events of fallbackScenario: created directly, through a smart wallet
// and through two nested wallets (whose calldata names no factory call).
type scenarioEvents struct {
	direct, via, nested    devchain.EventParams
	eDirect, eVia, eNested devchain.Created
	viaTx, nestedTx        common.Hash
}

// fallbackScenario creates one event directly, one through a smart wallet and one through a
// wallet owned by another wallet.
func fallbackScenario(x *harness) scenarioEvents {
	ctx, dc := x.ctx, x.dc
	org, owner := dc.User(0), dc.User(1)
	now := dc.Head().Time
	full, _ := devchain.MetadataURIOfKind(1, 0, devchain.MetaFull)
	other, _ := devchain.MetadataURIOfKind(1, 50, devchain.MetaFull)
	third, _ := devchain.MetadataURIOfKind(1, 51, devchain.MetaFull)
	var s scenarioEvents
	s.direct = devchain.EventParams{Name: "Direct", MetadataURI: full, TicketPrice: gwei(5), MaxTickets: 10, StartTime: now + 100, EndTime: now + 200}
	s.via = devchain.EventParams{Name: "Via wallet", MetadataURI: other, TicketPrice: gwei(7), MaxTickets: 20, StartTime: now + 300, EndTime: now + 400}
	s.nested = devchain.EventParams{Name: "Via nested wallets", MetadataURI: third, TicketPrice: gwei(9), MaxTickets: 30, StartTime: now + 500, EndTime: now + 600}
	x.send(dc.VerifyOrganizer(ctx, org))
	wtx, wallet, err := dc.DeployWallet(ctx, owner)
	x.send(wtx, err)
	itx, inner, err := dc.DeployWalletFor(ctx, owner, wallet)
	x.send(itx, err)
	x.mine()
	x.send(dc.VerifyOrganizerVia(ctx, owner, wallet))
	x.send(dc.VerifyOrganizerNested(ctx, owner, wallet, inner))
	x.mine()
	c1 := x.send(dc.CreateEvent(ctx, org, s.direct))
	s.viaTx = x.send(dc.CreateEventVia(ctx, owner, wallet, s.via))
	s.nestedTx = x.send(dc.CreateEventNested(ctx, owner, wallet, inner, s.nested))
	rs := x.mine(c1, s.viaTx, s.nestedTx)
	s.eDirect, s.eVia, s.eNested = x.created(rs[0]), x.created(rs[1]), x.created(rs[2])
	return s
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
	s := fallbackScenario(x)
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
	indexWithoutHistory(t, x, nil, 0, s)
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
			s := fallbackScenario(x)

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
			indexWithoutHistory(t, x, f, 0, s)
		})
	}
}

// TestEventDetailsFallbackLookedUp: a follower that hands Prepare its transactions without
// calldata makes it look them up (one transaction per event) before falling back.
func TestEventDetailsFallbackLookedUp(t *testing.T) {
	var f *faultyChain
	x := newHarness(t, harnessOpts{archive: true, noCalldata: true, wrap: func(c Chain) Chain {
		f = &faultyChain{Chain: c, batch: true}
		return batchingFaultyChain{f}
	}})
	s := fallbackScenario(x)
	indexWithoutHistory(t, x, f, 3, s)
}

// indexWithoutHistory indexes with the creation block's state gone (injected through f, or
// really pruned when f is nil) and checks where each event's details came from: the calldata of
// the direct createEvent and of the wallet's execute, the latest block for the nested wallets'
// (no createEvent call on the factory at the top level). lookups is how many transactions
// should have been asked of f.
func indexWithoutHistory(t *testing.T, x *harness, f *faultyChain, lookups int64, s scenarioEvents) {
	t.Helper()
	if f != nil {
		f.set(errNoHistory, nil)
	}
	calldata0 := counterValue(t, x.h.m.detailsCalldata)
	latest0 := counterValue(t, x.h.m.detailsFallback.WithLabelValues("latest"))
	x.index()
	checkTimes(t, x, s.eDirect.EventID, s.direct)
	checkTimes(t, x, s.eVia.EventID, s.via)
	checkTimes(t, x, s.eNested.EventID, s.nested)
	if got := counterValue(t, x.h.m.detailsCalldata) - calldata0; got != 2 {
		t.Errorf("details from calldata = %v, want 2", got)
	}
	if got := counterValue(t, x.h.m.detailsFallback.WithLabelValues("latest")) - latest0; got != 1 {
		t.Errorf("latest fallbacks = %v, want 1", got)
	}
	if f != nil {
		if n := f.txLookups.Load(); n != lookups {
			t.Errorf("%d transaction lookups, want %d", n, lookups)
		}
		// The nested wallets' event: once at the creation block (state gone), once at the latest.
		if n := f.calls.Load(); n != 2 {
			t.Errorf("%d getEventDetails calls, want 2", n)
		}
	}
	x.compare()
}

// TestEventDetailsCalledOnlyForIndirectCreations: on an archive node, events created by a
// direct createEvent call and by a smart wallet's execute of one take their details from the
// calldata, with no getEventDetails call at historical state; one created through nested
// wallets is still called for. The entities equal the oracle's either way, whether the
// transactions are held with calldata or looked up (in a batch or one by one).
func TestEventDetailsCalledOnlyForIndirectCreations(t *testing.T) {
	for _, tc := range []struct {
		name              string
		batch, noCalldata bool
		lookups           int64
	}{
		{"lookup", false, true, 3}, {"lookup batched", true, true, 3}, {"held", true, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f *faultyChain
			x := newHarness(t, harnessOpts{archive: true, noCalldata: tc.noCalldata, wrap: func(c Chain) Chain {
				f = &faultyChain{Chain: c, batch: tc.batch}
				if tc.batch {
					return batchingFaultyChain{f}
				}
				return f
			}})
			s := fallbackScenario(x)
			x.index()
			checkTimes(t, x, s.eDirect.EventID, s.direct)
			checkTimes(t, x, s.eVia.EventID, s.via)
			checkTimes(t, x, s.eNested.EventID, s.nested)
			if n := f.calls.Load(); n != 1 {
				t.Errorf("%d getEventDetails calls, want 1 (the nested wallets' event only)", n)
			}
			if got := counterValue(t, x.h.m.detailsCalls); got != 1 {
				t.Errorf("event_details_calls_total = %v, want 1", got)
			}
			if got := counterValue(t, x.h.m.detailsCalldata); got != 2 {
				t.Errorf("details from calldata = %v, want 2 (direct and wallet)", got)
			}
			if n := f.txLookups.Load(); n != tc.lookups {
				t.Errorf("%d transaction lookups, want %d", n, tc.lookups)
			}
			x.compare()
		})
	}
}

// TestEventDetailsCalldataCrossCheck: calldata whose createEvent does not match the event it
// would describe is not used: the event is called for and gets the factory's values. The
// calldata handed to Prepare is altered (a node cannot be made to lie on cue; the Transaction
// entities do not hold calldata): the wallet's execute names another createEvent (name, price
// or max tickets differ, as when an account's execute creates something else than its data
// says), or the nested wallets' transaction claims the outer wallet called the factory (the
// organizer, the inner wallet, is not tx.to). Each altered createEvent also names other times
// and URI, so that the test fails if they were used.
func TestEventDetailsCalldataCrossCheck(t *testing.T) {
	for _, tc := range []struct {
		name   string
		nested bool // alter the nested wallets' transaction, else the wallet's
		edit   func(p *devchain.EventParams)
	}{
		{"other name", false, func(p *devchain.EventParams) { p.Name += " (not this one)" }},
		{"other price", false, func(p *devchain.EventParams) { p.TicketPrice = new(big.Int).Add(p.TicketPrice, big.NewInt(1)) }},
		{"other max tickets", false, func(p *devchain.EventParams) { p.MaxTickets++ }},
		{"organizer is not tx.to", true, func(*devchain.EventParams) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var (
				f      *faultyChain
				x      *harness
				target common.Hash
				params devchain.EventParams
			)
			x = newHarness(t, harnessOpts{archive: true, wrap: func(c Chain) Chain {
				f = &faultyChain{Chain: c, batch: true}
				return batchingFaultyChain{f}
			}, editTx: func(tx *indexer.Tx) {
				if tx.Hash != target {
					return
				}
				p := params
				p.StartTime, p.EndTime, p.MetadataURI = p.StartTime+7, p.EndTime+7, p.MetadataURI+"x"
				tc.edit(&p)
				tx.Input = walletCreateCalldata(x, p)
			}})
			s := fallbackScenario(x)
			target, params = s.viaTx, s.via
			if tc.nested {
				target, params = s.nestedTx, s.nested
			}
			x.index()
			checkTimes(t, x, s.eDirect.EventID, s.direct)
			checkTimes(t, x, s.eVia.EventID, s.via)
			checkTimes(t, x, s.eNested.EventID, s.nested)
			wantCalls, wantCalldata := 2.0, 1.0 // the altered wallet's and the nested wallets' called for
			if tc.nested {
				wantCalls, wantCalldata = 1, 2
			}
			if got := counterValue(t, x.h.m.detailsCalls); got != wantCalls {
				t.Errorf("event_details_calls_total = %v, want %v", got, wantCalls)
			}
			if got := counterValue(t, x.h.m.detailsCalldata); got != wantCalldata {
				t.Errorf("details from calldata = %v, want %v", got, wantCalldata)
			}
			if n := f.txLookups.Load(); n != 0 {
				t.Errorf("%d transaction lookups of held transactions", n)
			}
			x.compare()
		})
	}
}

// walletCreateCalldata is a smart wallet's execute(factory, 0, createEvent(p)).
func walletCreateCalldata(x *harness, p devchain.EventParams) []byte {
	x.t.Helper()
	inner, err := x.h.abi.createEvent.Inputs.Pack(p.Name, p.MetadataURI, p.TicketPrice, new(big.Int).SetUint64(p.MaxTickets),
		new(big.Int).SetUint64(p.StartTime), new(big.Int).SetUint64(p.EndTime))
	if err != nil {
		x.t.Fatal(err)
	}
	args, err := x.h.abi.execute.Inputs.Pack(x.dc.Addresses.EventFactory, new(big.Int), append(slices.Clone(x.h.abi.createEvent.ID), inner...))
	if err != nil {
		x.t.Fatal(err)
	}
	return append(slices.Clone(x.h.abi.execute.ID), args...)
}

// TestEventDetailsUnavailableEverywhere: a factory that can never answer (every call reverts)
// must not stall indexing: the event is indexed with zero times and no metadata.
func TestEventDetailsUnavailableEverywhere(t *testing.T) {
	var f *faultyChain
	x := newHarness(t, harnessOpts{archive: true, wrap: func(c Chain) Chain {
		f = &faultyChain{Chain: c}
		return f
	}})
	s := fallbackScenario(x)
	f.set(errNoHistory, errors.New("execution reverted"))
	x.index()
	e := x.state().Get("Event", fmt.Sprint(s.eNested.EventID))
	if e == nil || e["startTime"] != "0" || e["endTime"] != "0" || e["metadataUri"] != "" || e["title"] != s.nested.Name {
		t.Errorf("event through the nested wallets: %v", e)
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

// TestDetailsFromCalldataMatching: the calldata's createEvent calls and the transaction's
// EventCreated logs must agree one to one (count, order, organizer, name, price, max tickets)
// before the calldata's values are used; a multicall or a wrapper the dev chain has no contract
// for is written here as calldata and logs.
func TestDetailsFromCalldataMatching(t *testing.T) {
	a, err := loadABIs()
	if err != nil {
		t.Fatal(err)
	}
	factory := common.HexToAddress("0xfac0")
	h := &Handler{abi: a, cfg: Config{EventFactory: ContractConfig{Address: factory}}}
	eoa, wallet, other := common.HexToAddress("0xe0a"), common.HexToAddress("0x3a11e7"), common.HexToAddress("0x07e5")
	p := devchain.EventParams{Name: "Gig", MetadataURI: "ipfs://cid", TicketPrice: big.NewInt(5), MaxTickets: 10, StartTime: 100, EndTime: 200}
	create := func(p devchain.EventParams) []byte {
		args, err := a.createEvent.Inputs.Pack(p.Name, p.MetadataURI, p.TicketPrice, new(big.Int).SetUint64(p.MaxTickets),
			new(big.Int).SetUint64(p.StartTime), new(big.Int).SetUint64(p.EndTime))
		if err != nil {
			t.Fatal(err)
		}
		return append(slices.Clone(a.createEvent.ID), args...)
	}
	execute := func(target common.Address, data []byte) []byte {
		args, err := a.execute.Inputs.Pack(target, new(big.Int), data)
		if err != nil {
			t.Fatal(err)
		}
		return append(slices.Clone(a.execute.ID), args...)
	}
	created := func(id int64, organizer common.Address, p devchain.EventParams) detailsRequest {
		data, err := a.eventCreated.data.Pack(p.Name, p.TicketPrice, new(big.Int).SetUint64(p.MaxTickets))
		if err != nil {
			t.Fatal(err)
		}
		l := &types.Log{Address: factory, Data: data, Topics: []common.Hash{a.eventCreated.ID,
			common.BigToHash(big.NewInt(id)), common.BytesToHash(organizer.Bytes()), common.BytesToHash(other.Bytes())}}
		return detailsRequest{EventID: big.NewInt(id), Log: l}
	}
	cheaper := p
	cheaper.TicketPrice = big.NewInt(4)
	for _, tc := range []struct {
		name  string
		call  txCall
		evs   []detailsRequest
		match bool
	}{
		{"direct", txCall{From: eoa, To: &factory, Input: create(p)}, []detailsRequest{created(1, eoa, p)}, true},
		{"direct, organizer not the sender", txCall{From: eoa, To: &factory, Input: create(p)}, []detailsRequest{created(1, other, p)}, false},
		{"wallet", txCall{From: eoa, To: &wallet, Input: execute(factory, create(p))}, []detailsRequest{created(1, wallet, p)}, true},
		{"wallet, organizer not the wallet", txCall{From: eoa, To: &wallet, Input: execute(factory, create(p))}, []detailsRequest{created(1, eoa, p)}, false},
		{"wallet, other price", txCall{From: eoa, To: &wallet, Input: execute(factory, create(p))}, []detailsRequest{created(1, wallet, cheaper)}, false},
		{"wallet, two events for one call", txCall{From: eoa, To: &wallet, Input: execute(factory, create(p))},
			[]detailsRequest{created(1, wallet, p), created(2, wallet, p)}, false},
		{"wallet calling another contract", txCall{From: eoa, To: &wallet, Input: execute(other, create(p))}, []detailsRequest{created(1, wallet, p)}, false},
		{"wallet calling the factory otherwise", txCall{From: eoa, To: &wallet, Input: execute(factory, create(p)[:4])}, []detailsRequest{created(1, wallet, p)}, false},
		{"nested wallets", txCall{From: eoa, To: &wallet, Input: execute(other, execute(factory, create(p)))}, []detailsRequest{created(1, other, p)}, false},
		{"execute sent to the factory", txCall{From: eoa, To: &factory, Input: execute(factory, create(p))}, []detailsRequest{created(1, eoa, p)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := h.detailsFromCalldata(&tc.call, tc.evs)
			if !tc.match {
				if got != nil {
					t.Fatalf("calldata used: %+v", got)
				}
				return
			}
			if len(got) != 1 || got[0].StartTime.Uint64() != p.StartTime || got[0].EndTime.Uint64() != p.EndTime || got[0].MetadataURI != p.MetadataURI {
				t.Fatalf("details %+v, want %d %d %s", got, p.StartTime, p.EndTime, p.MetadataURI)
			}
		})
	}
}
