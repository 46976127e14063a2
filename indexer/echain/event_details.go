package echain

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/echain/echain-indexer/indexer/source"
)

// Chain is what the mappings ask the node beyond logs: the factory's state for a new event and,
// when that state is gone, the creating transaction. *source.Source satisfies it; EthClient
// adapts an *ethclient.Client (the dev chain's, in tests).
type Chain interface {
	// CallContract runs eth_call at a block number; nil is the latest block.
	CallContract(ctx context.Context, msg ethereum.CallMsg, blockNumber *big.Int) ([]byte, error)
	// CallContractAtHash runs eth_call at the block with that hash, so that the answer belongs
	// to the branch being indexed.
	CallContractAtHash(ctx context.Context, msg ethereum.CallMsg, blockHash common.Hash) ([]byte, error)
	TransactionByHash(ctx context.Context, hash common.Hash) (*source.TxInfo, error)
}

// BatchCaller is optionally implemented by a Chain (as *rpc.Client does): the getEventDetails
// calls of one Prepare then travel in JSON-RPC batches instead of one request each.
type BatchCaller interface {
	BatchCallContext(ctx context.Context, b []rpc.BatchElem) error
}

const (
	callBatchSize = 100 // eth_calls per JSON-RPC batch
	callParallel  = 8   // concurrent eth_calls without batching
)

// eventDetails are the values of a new event that EventCreated does not carry.
type eventDetails struct {
	StartTime, EndTime *big.Int
	MetadataURI        string
}

// detailsRequest names one EventCreated whose details Prepare needs.
type detailsRequest struct {
	EventID   *big.Int
	Block     uint64
	BlockHash common.Hash
	TxHash    common.Hash
	Tx        *source.Tx // the transaction when the follower holds it, else nil
	Log       *types.Log // the EventCreated
}

// factoryEvent mirrors IEventFactory.Event, the tuple getEventDetails returns.
type factoryEvent struct {
	Id                                                         *big.Int
	Organizer, TicketContract, PoapContract, IncentiveContract common.Address
	Name, MetadataURI                                          string
	TicketPrice, MaxTickets, StartTime, EndTime                *big.Int
	IsActive                                                   bool
	CreatedAt                                                  *big.Int
}

// callKind sorts call failures: the state at that block is gone (fall back), the call can
// never succeed there (fall back), or the request failed (retry later: an error for the caller).
type callKind int

const (
	callOK callKind = iota
	callNoHistory
	callDeterministic
	callTransient
)

// historyGone are fragments of the messages nodes answer when the state of an old block was
// pruned: geth ("historical state 0x.. is not available", "missing trie node"), Erigon and
// Nethermind ("pruned", "state unavailable"), Besu ("world state unavailable"), providers that
// sell archive access separately ("... archive ...").
var historyGone = []string{
	"historical state", "missing trie node", "state is not available", "state not available",
	"state unavailable", "pruned", "state histories", "archive",
}

func classifyCallError(err error) callKind {
	if err == nil {
		return callOK
	}
	if errors.Is(err, source.ErrStateUnavailable) {
		return callNoHistory
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return callTransient
	}
	msg := strings.ToLower(err.Error())
	for _, s := range historyGone {
		if strings.Contains(msg, s) {
			return callNoHistory
		}
	}
	if strings.Contains(msg, "execution reverted") || strings.Contains(msg, "abi:") ||
		strings.Contains(msg, "empty result") {
		return callDeterministic
	}
	return callTransient
}

// fetchDetails returns startTime, endTime and metadataURI of new events as the factory holds
// them. When the creating transaction's calldata names the createEvent arguments (a direct call
// to the factory, or a smart account's execute of one: nearly every event) and its logs agree
// with them, those are the values, so the node executes nothing (detailsFromCalldata). Else (a
// multicall, nested accounts) getEventDetails is called at the creation block; when the node no
// longer has that state, at the latest block (startTime and endTime never change). Transient
// failures are returned so the caller retries; nothing here waits on a node that will never
// answer. The requests of one transaction must be adjacent and in log order, as Prepare lists
// them; where they are not, the calldata does not match and the events are called for.
func (h *Handler) fetchDetails(ctx context.Context, reqs []detailsRequest) (map[string]*eventDetails, error) {
	out := make(map[string]*eventDetails, len(reqs))
	if len(reqs) == 0 {
		return out, nil
	}
	calls, err := h.creatingCalls(ctx, reqs)
	if err != nil {
		return nil, err
	}
	var rest []detailsRequest
	for lo := 0; lo < len(reqs); {
		hi := lo + 1
		for hi < len(reqs) && reqs[hi].TxHash == reqs[lo].TxHash {
			hi++
		}
		if ds := h.detailsFromCalldata(calls[reqs[lo].TxHash], reqs[lo:hi]); ds != nil {
			h.m.detailsCalldata.Add(float64(len(ds)))
			for i, d := range ds {
				out[reqs[lo+i].EventID.String()] = d
			}
		} else {
			rest = append(rest, reqs[lo:hi]...)
		}
		lo = hi
	}
	if len(rest) == 0 {
		return out, nil
	}
	h.m.detailsCalls.Add(float64(len(rest)))
	res, errs, err := h.callDetails(ctx, rest, true)
	if err != nil {
		return nil, err
	}
	var latest []detailsRequest
	for i, r := range rest {
		switch classifyCallError(errs[i]) {
		case callOK:
			out[r.EventID.String()] = res[i]
			continue
		case callTransient:
			return nil, fmt.Errorf("getEventDetails(%s) at block %d: %w", r.EventID, r.Block, errs[i])
		}
		h.log.Debug("event details unavailable at the creation block; reading the latest",
			"event", r.EventID, "block", r.Block, "err", errs[i])
		latest = append(latest, r)
	}
	if len(latest) == 0 {
		return out, nil
	}
	res, errs, err = h.callDetails(ctx, latest, false)
	if err != nil {
		return nil, err
	}
	for j, r := range latest {
		switch classifyCallError(errs[j]) {
		case callOK:
			h.m.detailsFallback.WithLabelValues("latest").Inc()
			out[r.EventID.String()] = res[j]
		case callTransient:
			return nil, fmt.Errorf("getEventDetails(%s) at the latest block: %w", r.EventID, errs[j])
		default:
			// The factory cannot tell us (a non-conforming deployment). Zero times and no
			// metadata beat stalling the chain forever on a call that can never succeed.
			h.m.detailsFallback.WithLabelValues("none").Inc()
			h.log.Error("event details unavailable; startTime and endTime left 0",
				"event", r.EventID, "block", r.Block, "err", errs[j])
			out[r.EventID.String()] = &eventDetails{StartTime: new(big.Int), EndTime: new(big.Int)}
		}
	}
	return out, nil
}

// txCall is what a transaction called: its sender, recipient and calldata.
type txCall struct {
	From  common.Address  `json:"from"`
	To    *common.Address `json:"to"`
	Input hexutil.Bytes   `json:"input"`
}

// creatingCalls returns what the requests' transactions called, by transaction hash: from the
// follower's transactions (Block.Txs, fetched before Prepare) where they carry calldata, else
// looked up, in JSON-RPC batches where the chain offers them. For the node a lookup is an
// index read; a getEventDetails call at the creation block executes against historical state.
// A transaction the node does not know is left out (its event is then called for).
func (h *Handler) creatingCalls(ctx context.Context, reqs []detailsRequest) (map[common.Hash]*txCall, error) {
	out := make(map[common.Hash]*txCall, len(reqs))
	var missing []common.Hash
	for _, r := range reqs {
		if _, seen := out[r.TxHash]; seen {
			continue
		}
		if r.Tx != nil && r.Tx.Input != nil {
			out[r.TxHash] = &txCall{From: r.Tx.From, To: r.Tx.To, Input: r.Tx.Input}
			continue
		}
		out[r.TxHash] = nil
		missing = append(missing, r.TxHash)
	}
	if len(missing) == 0 {
		return out, nil
	}
	if bc, ok := h.chain.(BatchCaller); ok {
		for lo := 0; lo < len(missing); lo += callBatchSize {
			hi := min(lo+callBatchSize, len(missing))
			elems := make([]rpc.BatchElem, hi-lo)
			res := make([]*txCall, hi-lo)
			for i := lo; i < hi; i++ {
				elems[i-lo] = rpc.BatchElem{Method: "eth_getTransactionByHash", Args: []any{missing[i]}, Result: &res[i-lo]}
			}
			if err := bc.BatchCallContext(ctx, elems); err != nil {
				return nil, fmt.Errorf("creating transactions of new events: %w", err)
			}
			for i := lo; i < hi; i++ {
				if err := elems[i-lo].Error; err != nil {
					// The node answered for good (the batch as a whole did not fail): the
					// event's details are called for instead.
					h.log.Debug("creating transaction unavailable", "tx", missing[i], "err", err)
					continue
				}
				out[missing[i]] = res[i-lo]
			}
		}
		return out, nil
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs = make([]error, len(missing))
		sem  = make(chan struct{}, callParallel)
	)
	for i, hash := range missing {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			tx, err := h.chain.TransactionByHash(ctx, hash)
			if errors.Is(err, ethereum.NotFound) {
				return
			}
			if err != nil {
				errs[i] = fmt.Errorf("transaction %s of a new event: %w", hash, err)
				return
			}
			mu.Lock()
			out[hash] = &txCall{From: tx.From, To: tx.To, Input: tx.Input}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// detailsFromCalldata returns the details of the events of one transaction (evs: its
// EventCreated requests, all of them, in log order) decoded from its calldata, or nil when they
// do not provably belong to those events. They do when the calldata is a createEvent call to
// the factory, or a top-level execute(factory, value, createEvent(...)) of a smart account
// (tx.to), and the events agree one to one: the organizer is the one whose call the calldata
// is (the sender, or the account: it is msg.sender), and name, ticketPrice and maxTickets are
// the call's. The transaction succeeded: a reverted one emits no EventCreated. Anything else
// (a multicall, nested accounts, an account whose execute does not forward its data as is
// and so creates other events) is called for instead.
func (h *Handler) detailsFromCalldata(c *txCall, evs []detailsRequest) []*eventDetails {
	if c == nil || c.To == nil || len(evs) == 0 {
		return nil
	}
	sender, calls := h.abi.calldataCreates(h.cfg.EventFactory.Address, c.From, *c.To, c.Input)
	if len(calls) != len(evs) {
		return nil
	}
	out := make([]*eventDetails, len(evs))
	for i, r := range evs {
		if r.Log == nil {
			return nil
		}
		f := decode(h.abi.eventCreated, r.Log)
		organizer, name, price, maxTickets := f.addr("organizer"), f.str("name"), f.big("ticketPrice"), f.big("maxTickets")
		a := calls[i]
		if f.err != nil || organizer != sender || name != a.name || price.Cmp(a.ticketPrice) != 0 || maxTickets.Cmp(a.maxTickets) != 0 {
			return nil
		}
		out[i] = &eventDetails{StartTime: a.startTime, EndTime: a.endTime, MetadataURI: a.metadataURI}
	}
	return out
}

// createArgs are createEvent's arguments.
type createArgs struct {
	name, metadataURI                           string
	ticketPrice, maxTickets, startTime, endTime *big.Int
}

// calldataCreates decodes the createEvent calls to factory that a transaction from `from` to
// `to` with that input makes, and their msg.sender: a direct call (from), or a smart account's
// execute whose target is the factory (the account, to). None otherwise.
func (a *contractABIs) calldataCreates(factory, from, to common.Address, input []byte) (common.Address, []createArgs) {
	if to == factory {
		if c, ok := a.unpackCreateEvent(input); ok {
			return from, []createArgs{c}
		}
		return common.Address{}, nil
	}
	if len(input) < 4 || !bytes.Equal(input[:4], a.execute.ID) {
		return common.Address{}, nil
	}
	vals, err := a.execute.Inputs.Unpack(input[4:])
	if err != nil || len(vals) != 3 {
		return common.Address{}, nil
	}
	target, ok1 := vals[0].(common.Address)
	data, ok2 := vals[2].([]byte)
	if !ok1 || !ok2 || target != factory {
		return common.Address{}, nil
	}
	if c, ok := a.unpackCreateEvent(data); ok {
		return to, []createArgs{c}
	}
	return common.Address{}, nil
}

func (a *contractABIs) unpackCreateEvent(data []byte) (createArgs, bool) {
	if len(data) < 4 || !bytes.Equal(data[:4], a.createEvent.ID) {
		return createArgs{}, false
	}
	args, err := a.createEvent.Inputs.Unpack(data[4:])
	if err != nil || len(args) != 6 {
		return createArgs{}, false
	}
	var c createArgs
	var ok [6]bool
	c.name, ok[0] = args[0].(string)
	c.metadataURI, ok[1] = args[1].(string)
	c.ticketPrice, ok[2] = args[2].(*big.Int)
	c.maxTickets, ok[3] = args[3].(*big.Int)
	c.startTime, ok[4] = args[4].(*big.Int)
	c.endTime, ok[5] = args[5].(*big.Int)
	return c, ok == [6]bool{true, true, true, true, true, true}
}

// CalldataCreates returns how many events a transaction's calldata creates in a form the
// mappings decode their details from (detailsFromCalldata), given that its logs agree: what a
// benchmark's ideal need not count as getEventDetails calls.
func CalldataCreates(factory common.Address, to *common.Address, input []byte) (int, error) {
	a, err := loadABIs()
	if err != nil {
		return 0, err
	}
	if to == nil {
		return 0, nil
	}
	_, calls := a.calldataCreates(factory, common.Address{}, *to, input)
	return len(calls), nil
}

// callDetails calls getEventDetails for each request at its creation block (atCreation) or at
// the latest block. errs[i] is the call's own failure; err is a failure of the whole exchange.
func (h *Handler) callDetails(ctx context.Context, reqs []detailsRequest, atCreation bool) ([]*eventDetails, []error, error) {
	res := make([]*eventDetails, len(reqs))
	errs := make([]error, len(reqs))
	data := make([][]byte, len(reqs))
	for i, r := range reqs {
		d, err := h.abi.getEventDetails.Inputs.Pack(r.EventID)
		if err != nil {
			return nil, nil, fmt.Errorf("pack getEventDetails(%s): %w", r.EventID, err)
		}
		data[i] = append(append([]byte{}, h.abi.getEventDetails.ID...), d...)
	}
	raw := make([][]byte, len(reqs))
	if bc, ok := h.chain.(BatchCaller); ok {
		for lo := 0; lo < len(reqs); lo += callBatchSize {
			hi := min(lo+callBatchSize, len(reqs))
			elems := make([]rpc.BatchElem, hi-lo)
			outs := make([]hexutil.Bytes, hi-lo)
			for i := lo; i < hi; i++ {
				var block any = "latest"
				if atCreation {
					block = map[string]any{"blockHash": reqs[i].BlockHash}
				}
				elems[i-lo] = rpc.BatchElem{
					Method: "eth_call",
					Args: []any{map[string]any{
						"to":   h.cfg.EventFactory.Address,
						"data": hexutil.Bytes(data[i]),
					}, block},
					Result: &outs[i-lo],
				}
			}
			if err := bc.BatchCallContext(ctx, elems); err != nil {
				return nil, nil, fmt.Errorf("getEventDetails batch: %w", err)
			}
			for i := lo; i < hi; i++ {
				raw[i], errs[i] = outs[i-lo], elems[i-lo].Error
			}
		}
	} else {
		var wg sync.WaitGroup
		sem := make(chan struct{}, callParallel)
		for i := range reqs {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				to := h.cfg.EventFactory.Address
				msg := ethereum.CallMsg{To: &to, Data: data[i]}
				if atCreation {
					raw[i], errs[i] = h.chain.CallContractAtHash(ctx, msg, reqs[i].BlockHash)
				} else {
					raw[i], errs[i] = h.chain.CallContract(ctx, msg, nil)
				}
			}()
		}
		wg.Wait()
	}
	for i := range reqs {
		if errs[i] != nil {
			continue
		}
		res[i], errs[i] = h.unpackDetails(raw[i])
	}
	return res, errs, nil
}

func (h *Handler) unpackDetails(raw []byte) (*eventDetails, error) {
	if len(raw) == 0 {
		return nil, errors.New("getEventDetails: empty result")
	}
	vals, err := h.abi.getEventDetails.Outputs.Unpack(raw)
	if err != nil {
		return nil, fmt.Errorf("getEventDetails: %w", err)
	}
	var out struct{ E factoryEvent }
	if err := h.abi.getEventDetails.Outputs.Copy(&out, vals); err != nil {
		return nil, fmt.Errorf("getEventDetails: %w", err)
	}
	if out.E.StartTime == nil || out.E.EndTime == nil {
		return nil, errors.New("getEventDetails: abi: missing startTime/endTime")
	}
	return &eventDetails{StartTime: out.E.StartTime, EndTime: out.E.EndTime, MetadataURI: out.E.MetadataURI}, nil
}
