package echain

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
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
	Tx        *source.Tx // the transaction when the follower already holds it, else nil
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
// them. When the creating transaction called the factory's createEvent directly (nearly every
// event), its arguments are those values, so they are decoded from its calldata and the node
// executes nothing. Else (a smart wallet, a multicall) getEventDetails is called at the creation
// block; when the node no longer has that state, at the latest block (startTime and endTime
// never change). Transient failures are returned so the caller retries; nothing here waits on
// a node that will never answer.
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
	for _, r := range reqs {
		if d := h.detailsFromCalldata(calls[r.TxHash]); d != nil {
			h.m.detailsCalldata.Inc()
			out[r.EventID.String()] = d
			continue
		}
		rest = append(rest, r)
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

// txCall is what a transaction called: its recipient and calldata.
type txCall struct {
	To    *common.Address `json:"to"`
	Input hexutil.Bytes   `json:"input"`
}

// creatingCalls returns what the requests' transactions called, by transaction hash: from the
// follower's transactions where it holds them with calldata (a backfill from block receipts),
// else looked up, in JSON-RPC batches where the chain offers them. For the node a lookup is an
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
			out[r.TxHash] = &txCall{To: r.Tx.To, Input: r.Tx.Input}
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
			out[hash] = &txCall{To: tx.To, Input: tx.Input}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// detailsFromCalldata decodes the createEvent arguments when the transaction called the factory
// directly; nil when it did not (a smart wallet, a multisig) or is unknown.
func (h *Handler) detailsFromCalldata(c *txCall) *eventDetails {
	if c == nil || c.To == nil || *c.To != h.cfg.EventFactory.Address {
		return nil
	}
	data := c.Input
	if len(data) < 4 || string(data[:4]) != string(h.abi.createEvent.ID) {
		return nil
	}
	args, err := h.abi.createEvent.Inputs.Unpack(data[4:])
	if err != nil || len(args) != 6 {
		return nil
	}
	uri, ok1 := args[1].(string)
	start, ok2 := args[4].(*big.Int)
	end, ok3 := args[5].(*big.Int)
	if !ok1 || !ok2 || !ok3 {
		return nil
	}
	return &eventDetails{StartTime: start, EndTime: end, MetadataURI: uri}
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
