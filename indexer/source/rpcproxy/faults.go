package rpcproxy

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Provider error wordings, as the providers send them (the parts a client may parse).

// InfuraTooManyResults is Infura's answer to an eth_getLogs with more than 10,000 results,
// suggesting [from, to].
func InfuraTooManyResults(from, to uint64) *RPCError {
	data, _ := json.Marshal(map[string]any{"from": quantity(from), "to": quantity(to), "limit": 10000})
	return &RPCError{
		Code:    -32005,
		Message: fmt.Sprintf("query returned more than 10000 results. Try with this block range [%s, %s].", quantity(from), quantity(to)),
		Data:    data,
	}
}

// InfuraTooManyResultsNoHint is the same refusal without a suggested range.
func InfuraTooManyResultsNoHint() *RPCError {
	return &RPCError{Code: -32005, Message: "query returned more than 10000 results"}
}

// AlchemySizeExceeded is Alchemy's answer to an oversized eth_getLogs, suggesting [from, to].
func AlchemySizeExceeded(from, to uint64) *RPCError {
	return &RPCError{
		Code: -32602,
		Message: "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range and no limit on the response size, " +
			"or you can request any block range with a cap of 10K logs in the response. Based on your parameters and the response size limit, " +
			fmt.Sprintf("this block range should work: [%s, %s]", quantity(from), quantity(to)),
	}
}

// AlchemySizeExceededNoHint is Alchemy's refusal without a suggested range.
func AlchemySizeExceededNoHint() *RPCError {
	return &RPCError{
		Code: -32602,
		Message: "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range and no limit on the response size, " +
			"or you can request any block range with a cap of 10K logs in the response.",
	}
}

// GethRangeLimit is geth's refusal of a range longer than its --rpc.logquerylimit style range cap.
func GethRangeLimit(limit uint64) *RPCError {
	return &RPCError{Code: -32602, Message: "exceed maximum block range " + strconv.FormatUint(limit, 10)}
}

// GethAddressLimit is geth's refusal of more addresses (or topic alternatives) than its limit.
func GethAddressLimit() *RPCError {
	return &RPCError{Code: -32000, Message: "exceed max addresses or topics per search position"}
}

// QueryTimeout is a node giving up on a long eth_getLogs.
func QueryTimeout() *RPCError {
	return &RPCError{Code: -32000, Message: "query timeout exceeded"}
}

// ResponseTooLarge is geth's refusal of an answer above its size limit.
func ResponseTooLarge() *RPCError {
	return &RPCError{Code: -32003, Message: "response too large"}
}

// TxIndexing is geth's answer to receipt lookups right after start.
func TxIndexing() *RPCError {
	return &RPCError{Code: -32000, Message: "transaction indexing is in progress", Data: json.RawMessage(`"transaction indexing is in progress"`)}
}

// MethodNotFound is the answer of a node without the method.
func MethodNotFound(method string) *RPCError {
	return &RPCError{Code: -32601, Message: fmt.Sprintf("the method %s does not exist/is not available", method)}
}

// HintStyle chooses how MaxLogsRange words its refusal.
type HintStyle int

const (
	Infura        HintStyle = iota // "query returned more than 10000 results. Try with this block range [..]"
	Alchemy                        // "Log response size exceeded ... this block range should work: [..]"
	AlchemyNoHint                  // Alchemy's words without a range
	NoHint                         // Infura's words without a range
	Geth                           // "exceed maximum block range N"
	Timeout                        // "query timeout exceeded"
	Chainstack                     // "query exceeds max block range N" (its Base nodes' words)
	QuickNode                      // "eth_getLogs is limited to a N range"
)

// MaxLogsRange refuses every eth_getLogs over more than max blocks, the way style words it,
// suggesting [from, from+max-1] where the style suggests.
func MaxLogsRange(max uint64, style HintStyle) Rule {
	return Rule{
		Method: "eth_getLogs",
		When: func(c Call) bool {
			from, to, ok := c.LogsRange()
			return ok && to >= from && to-from+1 > max
		},
		ErrorFunc: func(c Call) *RPCError {
			from, to, ok := c.LogsRange()
			if !ok || to < from || to-from+1 <= max {
				return nil
			}
			return rangeError(style, from, to, max)
		},
	}
}

// MaxAddresses refuses every eth_getLogs naming more than n addresses, as geth does.
func MaxAddresses(n int) Rule {
	return Rule{
		Method: "eth_getLogs",
		When:   func(c Call) bool { return c.Addresses() > n },
		Error:  GethAddressLimit(),
	}
}
