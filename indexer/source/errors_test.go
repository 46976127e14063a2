package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
)

func TestLogsErrorRecognisesProviderWordings(t *testing.T) {
	const from, to = 0x100, 0x1ff
	cases := []struct {
		name           string
		err            error
		tooLarge       bool
		sugFrom, sugTo uint64
	}{
		{"infura with range", &RPCError{Code: -32005, Message: "query returned more than 10000 results. Try with this block range [0x100, 0x17F]."}, true, 0x100, 0x17f},
		{"infura data object only", &RPCError{Code: -32005, Message: "query returned more than 10000 results", Data: []byte(`{"from":"0x100","to":"0x120","limit":10000}`)}, true, 0x100, 0x120},
		{"infura no range", &RPCError{Code: -32005, Message: "query returned more than 10000 results"}, true, 0, 0},
		{"alchemy with range", &RPCError{Code: -32602, Message: "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range and no limit on the response size, or you can request any block range with a cap of 10K logs in the response. Based on your parameters and the response size limit, this block range should work: [0x100, 0x1a0]"}, true, 0x100, 0x1a0},
		{"alchemy no range", &RPCError{Code: -32602, Message: "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range and no limit on the response size, or you can request any block range with a cap of 10K logs in the response."}, true, 0, 0},
		{"geth range cap", &RPCError{Code: -32602, Message: "exceed maximum block range 63"}, true, 0x100, 0x100 + 63},
		{"quicknode cap", &RPCError{Code: -32614, Message: "eth_getLogs is limited to a 10 range"}, true, 0x100, 0x109},
		{"decimal range", &RPCError{Code: -32600, Message: "block range too large, try [256, 300]"}, true, 256, 300},
		{"query timeout", &RPCError{Code: -32000, Message: "query timeout exceeded"}, true, 0, 0},
		{"geth rpc timeout", &RPCError{Code: -32002, Message: "request timed out"}, true, 0, 0},
		{"geth response too large", &RPCError{Code: -32003, Message: "response too large"}, true, 0, 0},
		{"http 413", &HTTPError{StatusCode: http.StatusRequestEntityTooLarge}, true, 0, 0},
		{"our size cap", fmt.Errorf("read answer: %w", errResponseTooLarge), true, 0, 0},
		{"suggestion outside the range is ignored", &RPCError{Code: -32005, Message: "query returned more than 10000 results. Try with this block range [0x10, 0x20]."}, true, 0, 0},
		{"rate limit is not a range problem", &RPCError{Code: -32005, Message: "project ID request rate exceeded"}, false, 0, 0},
		{"plain revert is not", &RPCError{Code: 3, Message: "execution reverted"}, false, 0, 0},
		{"5xx is not", &HTTPError{StatusCode: 502}, false, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := logsError(c.err, true, from, to, 3, false)
			var rte *RangeTooLargeError
			if errors.As(got, &rte) != c.tooLarge {
				t.Fatalf("RangeTooLargeError = %v, want %v (err %v)", !c.tooLarge, c.tooLarge, got)
			}
			if !c.tooLarge {
				if got != c.err {
					t.Fatalf("error changed to %v", got)
				}
				return
			}
			if rte.SuggestedFrom != c.sugFrom || rte.SuggestedTo != c.sugTo {
				t.Fatalf("suggestion %d..%d, want %d..%d", rte.SuggestedFrom, rte.SuggestedTo, c.sugFrom, c.sugTo)
			}
			if rte.From != from || rte.To != to || !errors.Is(got, c.err) {
				t.Fatalf("range %d..%d or cause lost: %v", rte.From, rte.To, got)
			}
			if kind, cls, _ := classify(got); kind != kindTooLarge || cls != permanent {
				t.Fatalf("classified %s/%d", kind, cls)
			}
		})
	}
}

func TestLogsErrorAddressLimitAndBlockHash(t *testing.T) {
	geth := &RPCError{Code: -32000, Message: "exceed max addresses or topics per search position"}
	got := logsError(geth, true, 1, 2, 1001, false)
	var ale *AddressLimitError
	if !errors.As(got, &ale) || ale.Addresses != 1001 || !errors.Is(got, ErrTooManyAddresses) {
		t.Fatalf("want AddressLimitError with 1001 addresses, got %v", got)
	}
	// A blockHash query is never "too large": a timeout there is an ordinary timeout.
	timeout := &RPCError{Code: -32002, Message: "request timed out"}
	if got := logsError(timeout, false, 0, 0, 1, false); got != timeout {
		t.Fatalf("blockHash query error rewritten: %v", got)
	}
	// Our own deadline on a range counts as too large; the caller's does not reach logsError.
	dl := fmt.Errorf("post: %w", context.DeadlineExceeded)
	var rte *RangeTooLargeError
	if !errors.As(logsError(dl, true, 5, 9, 1, true), &rte) {
		t.Fatal("own deadline on a range should be RangeTooLargeError")
	}
	if errors.As(logsError(dl, true, 5, 9, 1, false), &rte) {
		t.Fatal("a deadline that was not ours must stay a timeout")
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		err   error
		kind  string
		class class
		after time.Duration
	}{
		{&HTTPError{StatusCode: 429, RetryAfter: 3 * time.Second}, kindRateLimited, transient, 3 * time.Second},
		{&HTTPError{StatusCode: 503}, kindServer, transient, 0},
		{&HTTPError{StatusCode: 401}, kindHTTP, transient, 0},
		{&RPCError{Code: -32000, Message: "transaction indexing is in progress"}, kindIndexing, transient, 0},
		{&RPCError{Code: -32000, Message: "historical state 0xabc is not available"}, kindStateUnavailable, permanent, 0},
		{&RPCError{Code: -32000, Message: "missing trie node 1234 (path ) state 0x12 is not available"}, kindStateUnavailable, permanent, 0},
		{&RPCError{Code: -32000, Message: "header not found"}, kindMissing, lagging, 0},
		{&RPCError{Code: -32000, Message: "unknown block"}, kindMissing, lagging, 0},
		{&RPCError{Code: -32601, Message: "the method eth_getBlockReceipts does not exist/is not available"}, kindUnsupported, permanent, 0},
		{&RPCError{Code: 3, Message: "execution reverted"}, kindRPC, permanent, 0},
		{&RPCError{Code: 429, Message: "Too Many Requests"}, kindRateLimited, transient, 0},
		{&RPCError{Code: -32603, Message: "internal error"}, kindServer, transient, 0},
		{fmt.Errorf("post: %w", syscall.ECONNREFUSED), kindConnection, transient, 0},
		{fmt.Errorf("read answer: %w", io.ErrUnexpectedEOF), kindConnection, transient, 0},
		{fmt.Errorf("post: %w", context.DeadlineExceeded), kindTimeout, transient, 0},
		{fmt.Errorf("x: %w", context.Canceled), kindCanceled, permanent, 0},
		{missing("block 5"), kindMissing, lagging, 0},
		{&lagError{need: 5, head: 3}, kindMissing, lagging, 0},
		{fmt.Errorf("%w: x", errBadResponse), kindBadResponse, transient, 0},
	}
	for _, c := range cases {
		kind, cls, after := classify(c.err)
		if kind != c.kind || cls != c.class || after != c.after {
			t.Errorf("%v: got %s/%d/%s, want %s/%d/%s", c.err, kind, cls, after, c.kind, c.class, c.after)
		}
	}
	if !errors.Is(missing("x"), ethereum.NotFound) {
		t.Error("missingError must match ethereum.NotFound")
	}
	if !errors.Is(&lagError{}, ErrBeyondHead) {
		t.Error("lagError must match ErrBeyondHead")
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := map[string]time.Duration{
		"":                              0,
		"2":                             2 * time.Second,
		"0.5":                           500 * time.Millisecond,
		"-1":                            0,
		"Fri, 02 Jan 2026 03:04:15 GMT": 10 * time.Second,
		"Fri, 02 Jan 2026 03:04:00 GMT": 0, // in the past
		"soon":                          0,
	}
	for in, want := range cases {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	bad := []Config{
		{},
		{Endpoints: []Endpoint{{HTTPURL: ""}}},
		{Endpoints: []Endpoint{{HTTPURL: "ws://x"}}},
		{Endpoints: []Endpoint{{HTTPURL: "http://x", WSURL: "http://x"}}},
		{Endpoints: []Endpoint{{HTTPURL: "http://a:1"}, {HTTPURL: "http://a:1"}}}, // same default name
		{Endpoints: []Endpoint{{HTTPURL: "http://x"}}, Receipts: "maybe"},
		{Endpoints: []Endpoint{{HTTPURL: "http://x"}}, BatchSize: 5000},
	}
	for i, c := range bad {
		c = c.withDefaults()
		if err := c.validate(); err == nil {
			t.Errorf("config %d: want an error", i)
		}
	}
	good := Config{Endpoints: []Endpoint{{HTTPURL: "https://base.example/v2/SECRETKEY", WSURL: "wss://base.example/ws/SECRETKEY"}}}
	good = good.withDefaults()
	if err := good.validate(); err != nil {
		t.Fatal(err)
	}
	if good.Endpoints[0].Name != "base.example" {
		t.Errorf("default name %q", good.Endpoints[0].Name)
	}
	if r := redactURL(good.Endpoints[0].HTTPURL); r != "https://base.example" {
		t.Errorf("redacted %q still shows the key", r)
	}
}
