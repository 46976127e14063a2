package source

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"
)

// BlockNumber returns the head block number of the preferred endpoint.
func (s *Source) BlockNumber(ctx context.Context) (uint64, error) {
	var out uint64
	err := s.do(ctx, "eth_blockNumber", 0, 0, func(ctx context.Context, ep *endpoint) error {
		var n hexutil.Uint64
		if err := ep.rpc.call(ctx, &n, "eth_blockNumber"); err != nil {
			return err
		}
		s.observeHead(ep, uint64(n), true)
		out = uint64(n)
		return nil
	})
	return out, err
}

// HeaderByNumber returns the canonical header at number, or the latest when number is nil
// (negative numbers are go-ethereum's rpc tags: rpc.FinalizedBlockNumber, rpc.SafeBlockNumber).
// An endpoint that does not have the block yet is skipped; when none has it the error matches
// ethereum.NotFound.
func (s *Source) HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error) {
	arg := blockNumArg(number)
	var need uint64
	if number != nil && number.Sign() >= 0 {
		need = number.Uint64()
	}
	var out *types.Header
	err := s.do(ctx, "eth_getBlockByNumber", need, 0, func(ctx context.Context, ep *endpoint) error {
		var raw json.RawMessage
		if err := ep.rpc.call(ctx, &raw, "eth_getBlockByNumber", arg, false); err != nil {
			return err
		}
		h, err := decodeHeader(raw)
		if err != nil {
			return err
		}
		if h == nil {
			return missing("block %s", arg)
		}
		if need > 0 && h.Number.Uint64() != need {
			return fmt.Errorf("%w: asked block %d, got %d", errBadResponse, need, h.Number.Uint64())
		}
		s.observeHead(ep, h.Number.Uint64(), number == nil)
		out = h
		return nil
	})
	return out, err
}

// HeaderByHash returns the header with this hash, from any endpoint that has it; the error
// matches ethereum.NotFound when none does.
func (s *Source) HeaderByHash(ctx context.Context, hash common.Hash) (*types.Header, error) {
	var out *types.Header
	err := s.do(ctx, "eth_getBlockByHash", 0, 0, func(ctx context.Context, ep *endpoint) error {
		var raw json.RawMessage
		if err := ep.rpc.call(ctx, &raw, "eth_getBlockByHash", hash, false); err != nil {
			return err
		}
		h, err := decodeHeader(raw)
		if err != nil {
			return err
		}
		if h == nil {
			return missing("block %s", hash)
		}
		if h.Hash() != hash {
			return fmt.Errorf("%w: asked block %s, got %s", errBadResponse, hash, h.Hash())
		}
		s.observeHead(ep, h.Number.Uint64(), false)
		out = h
		return nil
	})
	return out, err
}

// HeadersByNumber returns the canonical headers at numbers (any order), fetched in JSON-RPC
// batches. out[i] is the header of numbers[i].
func (s *Source) HeadersByNumber(ctx context.Context, numbers []uint64) ([]*types.Header, error) {
	out := make([]*types.Header, len(numbers))
	err := s.parallel(ctx, len(numbers), s.cfg.BatchSize, func(ctx context.Context, lo, hi int) error {
		need := uint64(0)
		for _, n := range numbers[lo:hi] {
			need = max(need, n)
		}
		return s.do(ctx, "eth_getBlockByNumber[batch]", need, 0, func(ctx context.Context, ep *endpoint) error {
			raws := make([]json.RawMessage, hi-lo)
			elems := make([]batchElem, hi-lo)
			for i := range elems {
				elems[i] = batchElem{Method: "eth_getBlockByNumber", Params: []any{hexutil.Uint64(numbers[lo+i]), false}, Result: &raws[i]}
			}
			s.m.batchItems.WithLabelValues(ep.name, "eth_getBlockByNumber").Add(float64(len(elems)))
			if err := ep.rpc.batch(ctx, elems); err != nil {
				return err
			}
			for i, e := range elems {
				if e.Err != nil {
					return e.Err
				}
				h, err := decodeHeader(raws[i])
				if err != nil {
					return err
				}
				if h == nil {
					return missing("block %d", numbers[lo+i])
				}
				if h.Number.Uint64() != numbers[lo+i] {
					return fmt.Errorf("%w: asked block %d, got %d", errBadResponse, numbers[lo+i], h.Number.Uint64())
				}
				out[lo+i] = h
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// BlockTxCounts returns how many transactions the blocks at numbers hold
// (eth_getBlockTransactionCountByNumber, in JSON-RPC batches). out[i] is that of numbers[i].
func (s *Source) BlockTxCounts(ctx context.Context, numbers []uint64) ([]uint64, error) {
	out := make([]uint64, len(numbers))
	err := s.parallel(ctx, len(numbers), s.cfg.BatchSize, func(ctx context.Context, lo, hi int) error {
		need := uint64(0)
		for _, n := range numbers[lo:hi] {
			need = max(need, n)
		}
		return s.do(ctx, "eth_getBlockTransactionCountByNumber[batch]", need, 0, func(ctx context.Context, ep *endpoint) error {
			counts := make([]*hexutil.Uint64, hi-lo)
			elems := make([]batchElem, hi-lo)
			for i := range elems {
				elems[i] = batchElem{Method: "eth_getBlockTransactionCountByNumber", Params: []any{hexutil.Uint64(numbers[lo+i])}, Result: &counts[i]}
			}
			s.m.batchItems.WithLabelValues(ep.name, "eth_getBlockTransactionCountByNumber").Add(float64(len(elems)))
			if err := ep.rpc.batch(ctx, elems); err != nil {
				return err
			}
			for i, e := range elems {
				if e.Err != nil {
					return e.Err
				}
				if counts[i] == nil {
					return missing("block %d", numbers[lo+i])
				}
				out[lo+i] = uint64(*counts[i])
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Finalized returns the header of the `finalized` block tag. The error matches
// ErrFinalizedUnsupported when no endpoint answers the tag (or none has a finalized block yet).
func (s *Source) Finalized(ctx context.Context) (*types.Header, error) {
	var out *types.Header
	err := s.do(ctx, "eth_getBlockByNumber", 0, 0, func(ctx context.Context, ep *endpoint) error {
		var raw json.RawMessage
		err := ep.rpc.call(ctx, &raw, "eth_getBlockByNumber", "finalized", false)
		var re *RPCError
		if errors.As(err, &re) {
			if _, cls, _ := classifyRPC(re); cls != transient || re.Code == -32602 {
				return missing("finalized block (%v)", re)
			}
		}
		if err != nil {
			return err
		}
		h, err := decodeHeader(raw)
		if err != nil {
			return err
		}
		if h == nil {
			return missing("finalized block")
		}
		out = h
		return nil
	})
	if errors.Is(err, ethereum.NotFound) {
		return nil, fmt.Errorf("%w: %w", ErrFinalizedUnsupported, err)
	}
	return out, err
}

// Logs runs eth_getLogs. For a block range it only asks endpoints whose head has reached ToBlock
// (an endpoint behind would answer without the logs of blocks it lacks). Oversized ranges fail
// with *RangeTooLargeError, too many addresses with *AddressLimitError. For a BlockHash query an
// endpoint that does not know the block is skipped; the error matches ethereum.NotFound when none
// does.
func (s *Source) Logs(ctx context.Context, q ethereum.FilterQuery) ([]types.Log, error) {
	logs, _, err := s.logs(ctx, q, false)
	return logs, err
}

// LogsAndHeader is Logs over a block range with a ToBlock, also returning the header of ToBlock:
// Logs asks for that block in the same batch to check the endpoint has it, so a caller that
// needs the header (a backfill range checks its last block against it) saves a request.
func (s *Source) LogsAndHeader(ctx context.Context, q ethereum.FilterQuery) ([]types.Log, *types.Header, error) {
	if q.BlockHash != nil || q.ToBlock == nil || q.ToBlock.Sign() < 0 {
		return nil, nil, errors.New("eth_getLogs: LogsAndHeader needs a block range with a ToBlock number")
	}
	return s.logs(ctx, q, true)
}

func (s *Source) logs(ctx context.Context, q ethereum.FilterQuery, wantHeader bool) ([]types.Log, *types.Header, error) {
	arg, err := filterArg(q)
	if err != nil {
		return nil, nil, fmt.Errorf("eth_getLogs: %w", err)
	}
	isRange := q.BlockHash == nil
	var from, to, need uint64
	if isRange {
		if q.FromBlock != nil && q.FromBlock.Sign() > 0 {
			from = q.FromBlock.Uint64()
		}
		if q.ToBlock != nil && q.ToBlock.Sign() >= 0 {
			to = q.ToBlock.Uint64()
			need = to
			if to < from {
				return nil, nil, fmt.Errorf("eth_getLogs: range %d..%d is empty", from, to)
			}
		} else {
			to = s.best.Load()
		}
	}
	timeout := s.cfg.RequestTimeout
	if isRange {
		timeout = s.cfg.LogsTimeout
	}
	// The block the answer must cover is asked for in the same batch, before the logs: an
	// endpoint (or the node behind a load balancer) that does not have it yet answers null
	// there, where its eth_getLogs might have answered an empty list.
	var check *batchElem
	switch {
	case q.BlockHash != nil:
		check = &batchElem{Method: "eth_getBlockByHash", Params: []any{*q.BlockHash, false}}
	case need > 0:
		check = &batchElem{Method: "eth_getBlockByNumber", Params: []any{hexutil.Uint64(need), false}}
	}
	var out []types.Log
	var header *types.Header
	err = s.do(ctx, "eth_getLogs", need, timeout, func(actx context.Context, ep *endpoint) error {
		var wire logList
		var err error
		if check == nil {
			err = ep.rpc.call(actx, &wire, "eth_getLogs", arg)
		} else {
			var block struct {
				Number *hexutil.Uint64 `json:"number"`
			}
			var blockRaw *json.RawMessage
			elems := []batchElem{
				{Method: check.Method, Params: check.Params, Result: &blockRaw},
				{Method: "eth_getLogs", Params: []any{arg}, Result: &wire},
			}
			if err = ep.rpc.batch(actx, elems); err == nil {
				switch {
				case elems[0].Err != nil && !isMissing(elems[0].Err):
					return elems[0].Err
				case elems[0].Err != nil || blockRaw == nil || string(*blockRaw) == "null":
					return missing("block %v", check.Params[0])
				case wantHeader:
					if header, err = decodeHeader(*blockRaw); err != nil {
						return err
					}
					if header.Number.Uint64() != need {
						return fmt.Errorf("%w: asked block %d, got %d", errBadResponse, need, header.Number.Uint64())
					}
				case json.Unmarshal(*blockRaw, &block) != nil || block.Number == nil:
					return fmt.Errorf("%w: block object without a number", errBadResponse)
				}
				err = elems[1].Err
			}
		}
		if err != nil {
			ownDeadline := ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded)
			return logsError(err, isRange, from, to, len(q.Addresses), ownDeadline)
		}
		logs := []types.Log(wire)
		for i := range logs {
			l := &logs[i]
			if q.BlockHash != nil && l.BlockHash != *q.BlockHash {
				return fmt.Errorf("%w: log of block %s in answer for block %s", errBadResponse, l.BlockHash, *q.BlockHash)
			}
			if isRange && need > 0 && (l.BlockNumber < from || l.BlockNumber > to) {
				return fmt.Errorf("%w: log of block %d in answer for %d..%d", errBadResponse, l.BlockNumber, from, to)
			}
		}
		if need > 0 {
			s.observeHead(ep, need, false)
		}
		out = logs
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return out, header, nil
}

// isMissing: a node's way of saying it does not have the block.
func isMissing(err error) bool {
	_, cls, _ := classify(err)
	return cls == lagging
}

// CallContract runs eth_call at blockNumber (nil: latest). A node without that block's state
// gives way to the next endpoint; when none has it the error matches ErrStateUnavailable. A
// revert is returned as is (an rpc.DataError carrying the revert data).
func (s *Source) CallContract(ctx context.Context, msg ethereum.CallMsg, blockNumber *big.Int) ([]byte, error) {
	var need uint64
	if blockNumber != nil && blockNumber.Sign() >= 0 {
		need = blockNumber.Uint64()
	}
	return s.call(ctx, msg, blockNumArg(blockNumber), need)
}

// CallContractAtHash runs eth_call at the block with this hash (EIP-1898), so that the answer
// belongs to the branch being indexed even during a reorg.
func (s *Source) CallContractAtHash(ctx context.Context, msg ethereum.CallMsg, blockHash common.Hash) ([]byte, error) {
	return s.call(ctx, msg, map[string]any{"blockHash": blockHash}, 0)
}

func (s *Source) call(ctx context.Context, msg ethereum.CallMsg, block any, need uint64) ([]byte, error) {
	arg := callArg(msg)
	var out []byte
	err := s.do(ctx, "eth_call", need, 0, func(ctx context.Context, ep *endpoint) error {
		var res hexutil.Bytes
		if err := s.callOnce(ctx, ep, &res, arg, block); err != nil {
			return err
		}
		out = res
		return nil
	})
	return out, err
}

// callOnce is one eth_call on ep; a pruned-state answer matches ErrStateUnavailable.
func (s *Source) callOnce(ctx context.Context, ep *endpoint, res *hexutil.Bytes, arg, block any) error {
	err := ep.rpc.call(ctx, res, "eth_call", arg, block)
	var re *RPCError
	if errors.As(err, &re) {
		if kind, _, _ := classifyRPC(re); kind == kindStateUnavailable {
			return &stateError{cause: err}
		}
	}
	return err
}

// TxInfo is a transaction as eth_getTransactionByHash reports it. It is not a
// *types.Transaction because OP-stack deposit transactions (type 0x7e, on Base) do not decode
// into one.
type TxInfo struct {
	Hash        common.Hash
	Type        uint64
	BlockHash   *common.Hash // nil while pending
	BlockNumber *uint64
	From        common.Address
	To          *common.Address
	Value       *big.Int
	Input       []byte
}

// TransactionByHash finds a transaction on any endpoint; the error matches ethereum.NotFound
// when none knows it.
func (s *Source) TransactionByHash(ctx context.Context, hash common.Hash) (*TxInfo, error) {
	var out *TxInfo
	err := s.do(ctx, "eth_getTransactionByHash", 0, 0, func(ctx context.Context, ep *endpoint) error {
		var tx *rpcTx
		if err := ep.rpc.call(ctx, &tx, "eth_getTransactionByHash", hash); err != nil {
			return err
		}
		if tx == nil {
			return missing("transaction %s", hash)
		}
		if tx.Hash != hash {
			return fmt.Errorf("%w: asked transaction %s, got %s", errBadResponse, hash, tx.Hash)
		}
		out = tx.info()
		return nil
	})
	return out, err
}

// rpcTx is a transaction object of eth_getTransactionByHash or a block's transaction list.
type rpcTx struct {
	Hash        common.Hash
	Type        uint64
	BlockHash   *common.Hash
	BlockNumber *uint64
	From        common.Address
	To          *common.Address
	Value       *big.Int
	GasPrice    *big.Int
	Input       []byte
}

func (t *rpcTx) UnmarshalJSON(b []byte) error {
	s := &scanner{b: b}
	if err := s.tx(t, true); err != nil {
		return err
	}
	return s.end()
}

// tx reads a transaction object; the input (calldata) only when withInput.
func (s *scanner) tx(t *rpcTx, withInput bool) error {
	var haveHash bool
	err := s.object(func(key []byte) error {
		switch string(key) {
		case "hash":
			haveHash = true
			return s.hexInto(t.Hash[:], "hash")
		case "type":
			return s.optUint(&t.Type, "type")
		case "blockHash":
			if s.null() {
				return nil
			}
			t.BlockHash = new(common.Hash)
			return s.hexInto(t.BlockHash[:], "blockHash")
		case "blockNumber":
			if s.null() {
				return nil
			}
			t.BlockNumber = new(uint64)
			return s.optUint(t.BlockNumber, "blockNumber")
		case "from":
			return s.hexInto(t.From[:], "from")
		case "to":
			if s.null() {
				return nil
			}
			t.To = new(common.Address)
			return s.hexInto(t.To[:], "to")
		case "value":
			return s.optBig(&t.Value, "value")
		case "gasPrice":
			return s.optBig(&t.GasPrice, "gasPrice")
		case "input":
			if !withInput {
				return s.skip()
			}
			raw, err := s.hexStr()
			if err != nil {
				return err
			}
			t.Input, err = hexData(raw, "input")
			return err
		default:
			return s.skip()
		}
	})
	if err == nil && !haveHash {
		err = fmt.Errorf("%w: transaction without a hash", errLogField)
	}
	return err
}

func (t *rpcTx) info() *TxInfo {
	out := &TxInfo{Hash: t.Hash, Type: t.Type, BlockHash: t.BlockHash, BlockNumber: t.BlockNumber, From: t.From, To: t.To, Input: t.Input, Value: new(big.Int)}
	if t.Value != nil {
		out.Value = t.Value
	}
	return out
}

// decodeHeader decodes a block object into its header and checks that the hash go-ethereum
// computes equals the hash the node reports: a chain with header fields go-ethereum does not
// know would otherwise give every block a wrong hash, and every parent check would fail.
// A null block gives (nil, nil).
func decodeHeader(raw json.RawMessage) (*types.Header, error) {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var h types.Header
	if err := json.Unmarshal(raw, &h); err != nil {
		return nil, fmt.Errorf("%w: header: %v", errBadResponse, err)
	}
	var reported struct {
		Hash *common.Hash `json:"hash"`
	}
	if err := json.Unmarshal(raw, &reported); err != nil {
		return nil, fmt.Errorf("%w: header hash: %v", errBadResponse, err)
	}
	if reported.Hash != nil && *reported.Hash != h.Hash() {
		return nil, fmt.Errorf("header of block %d: node reports hash %s, fields hash to %s (unknown header fields?)",
			h.Number, *reported.Hash, h.Hash())
	}
	return &h, nil
}

func blockNumArg(n *big.Int) string {
	if n == nil {
		return "latest"
	}
	if n.Sign() >= 0 {
		return hexutil.EncodeBig(n)
	}
	if n.IsInt64() {
		return rpc.BlockNumber(n.Int64()).String()
	}
	return "latest"
}

func filterArg(q ethereum.FilterQuery) (map[string]any, error) {
	arg := map[string]any{}
	if len(q.Addresses) > 0 {
		arg["address"] = q.Addresses
	}
	if q.Topics != nil {
		arg["topics"] = q.Topics
	}
	if q.BlockHash != nil {
		if q.FromBlock != nil || q.ToBlock != nil {
			return nil, errors.New("cannot specify both BlockHash and FromBlock/ToBlock")
		}
		arg["blockHash"] = *q.BlockHash
		return arg, nil
	}
	if q.FromBlock == nil {
		arg["fromBlock"] = "0x0"
	} else {
		arg["fromBlock"] = blockNumArg(q.FromBlock)
	}
	arg["toBlock"] = blockNumArg(q.ToBlock)
	return arg, nil
}

func callArg(msg ethereum.CallMsg) map[string]any {
	arg := map[string]any{"from": msg.From, "to": msg.To}
	if len(msg.Data) > 0 {
		arg["input"] = hexutil.Bytes(msg.Data)
	}
	if msg.Value != nil {
		arg["value"] = (*hexutil.Big)(msg.Value)
	}
	if msg.Gas != 0 {
		arg["gas"] = hexutil.Uint64(msg.Gas)
	}
	if msg.GasPrice != nil {
		arg["gasPrice"] = (*hexutil.Big)(msg.GasPrice)
	}
	return arg
}

// parallel splits n items into chunks of at most size and runs fn on up to BatchConcurrency
// chunks at once; the first error cancels the rest.
func (s *Source) parallel(ctx context.Context, n, size int, fn func(ctx context.Context, lo, hi int) error) error {
	if n == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, s.cfg.BatchConcurrency)
	errc := make(chan error, (n+size-1)/size)
	chunks := 0
	for lo := 0; lo < n; lo += size {
		hi := min(lo+size, n)
		chunks++
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			errc <- ctx.Err()
			continue
		}
		go func() {
			defer func() { <-sem }()
			err := fn(ctx, lo, hi)
			if err != nil {
				cancel()
			}
			errc <- err
		}()
	}
	var first error
	for range chunks {
		if err := <-errc; err != nil && (first == nil || errors.Is(first, context.Canceled)) {
			first = err
		}
	}
	return first
}

// BatchCallContext sends calls (eth_call and the like) in JSON-RPC batches of Config.BatchSize,
// as *rpc.Client does, so that the mappings' calls for a range travel together: a backfill on
// a pruned node makes one per new event, and one HTTP round trip each is what a remote provider
// charges most for. A call the node answered for good is that element's Error: reverted, or
// the block's state gone (matching ErrStateUnavailable). A transient failure of any element,
// or of the whole batch, retries the batch. With several endpoints, a call whose state one
// endpoint lacks is asked again alone, so that an archive endpoint can answer it.
func (s *Source) BatchCallContext(ctx context.Context, b []rpc.BatchElem) error {
	if len(b) == 0 {
		return nil
	}
	err := s.do(ctx, "calls[batch]", 0, 0, func(ctx context.Context, ep *endpoint) error {
		elems := make([]batchElem, len(b))
		for i := range b {
			elems[i] = batchElem{Method: b[i].Method, Params: b[i].Args, Result: b[i].Result}
		}
		if err := s.sendChunks(ctx, ep, elems); err != nil {
			return err
		}
		for i := range elems {
			err := elems[i].Err
			if err == nil {
				continue
			}
			var re *RPCError
			if !errors.As(err, &re) {
				return fmt.Errorf("%s: %w", elems[i].Method, err) // no answer, or none we can read
			}
			switch kind, cls, _ := classifyRPC(re); {
			case kind == kindStateUnavailable:
				elems[i].Err = &stateError{cause: err}
			case cls == transient || cls == lagging:
				return fmt.Errorf("%s: %w", elems[i].Method, err)
			}
		}
		for i := range b {
			b[i].Error = elems[i].Err
		}
		return nil
	})
	if err != nil || len(s.eps) < 2 {
		return err
	}
	for i := range b {
		if b[i].Method != "eth_call" || !errors.Is(b[i].Error, ErrStateUnavailable) || len(b[i].Args) != 2 {
			continue
		}
		var out hexutil.Bytes
		b[i].Error = s.do(ctx, "eth_call", 0, 0, func(ctx context.Context, ep *endpoint) error {
			return s.callOnce(ctx, ep, &out, b[i].Args[0], b[i].Args[1])
		})
		if b[i].Error == nil {
			if res, ok := b[i].Result.(*hexutil.Bytes); ok {
				*res = out
			}
		}
	}
	return nil
}
