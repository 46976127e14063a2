package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ethereum/go-ethereum"
)

var (
	// ErrStateUnavailable: the node no longer has the state a call needs (not an archive node,
	// or the block is older than its state history). Retrying elsewhere was tried already.
	ErrStateUnavailable = errors.New("historical state unavailable")
	// ErrFinalizedUnsupported: the endpoint does not answer the `finalized` block tag (or has
	// no finalized block yet); use a confirmation depth instead.
	ErrFinalizedUnsupported = errors.New("finalized block tag not supported")
	// ErrTooManyAddresses matches *AddressLimitError.
	ErrTooManyAddresses = errors.New("too many addresses or topics in one eth_getLogs")
	// ErrRetriesExhausted wraps the last error of a call that failed transiently until its
	// attempt or time budget ran out.
	ErrRetriesExhausted = errors.New("rpc retries exhausted")
	// ErrBeyondHead: no endpoint has reached the block a request needs yet.
	ErrBeyondHead = errors.New("block beyond every endpoint's head")
)

// RangeTooLargeError says an eth_getLogs range was too much for the provider (too many results,
// answer too large, query timeout). SuggestedFrom/SuggestedTo is the range the provider
// proposed (SuggestedTo 0 when it proposed none). RangeSizer.Failure consumes it.
type RangeTooLargeError struct {
	From, To      uint64 // the refused range
	SuggestedFrom uint64
	SuggestedTo   uint64
	Cause         error
}

func (e *RangeTooLargeError) Error() string {
	s := fmt.Sprintf("eth_getLogs range %d..%d too large", e.From, e.To)
	if e.SuggestedTo != 0 {
		s += fmt.Sprintf(" (provider suggests %d..%d)", e.SuggestedFrom, e.SuggestedTo)
	}
	return s + ": " + e.Cause.Error()
}

func (e *RangeTooLargeError) Unwrap() error { return e.Cause }

// AddressLimitError says an eth_getLogs named more addresses (or topic alternatives) than the
// provider takes (geth: 1000 by default): shrink the address chunk, not the block range.
type AddressLimitError struct {
	Addresses int // how many the refused request named
	Cause     error
}

func (e *AddressLimitError) Error() string {
	return fmt.Sprintf("eth_getLogs with %d addresses refused: %v", e.Addresses, e.Cause)
}

func (e *AddressLimitError) Unwrap() error { return e.Cause }

// Is makes errors.Is(err, ErrTooManyAddresses) true.
func (e *AddressLimitError) Is(target error) bool { return target == ErrTooManyAddresses }

// Error kinds: the `kind` label of echain_indexer_rpc_errors_total.
const (
	kindTimeout          = "timeout"
	kindRateLimited      = "rate_limited"
	kindServer           = "server_error"
	kindConnection       = "connection"
	kindIndexing         = "tx_indexing"
	kindBadResponse      = "bad_response"
	kindTooLarge         = "range_too_large"
	kindAddressLimit     = "address_limit"
	kindStateUnavailable = "state_unavailable"
	kindMissing          = "missing"
	kindUnsupported      = "unsupported"
	kindRPC              = "rpc_error"
	kindHTTP             = "http_error"
	kindCanceled         = "canceled"
)

// missingError: this endpoint does not have what was asked (lagging, or reorged away there).
// Another endpoint may; if none does the caller gets ethereum.NotFound.
type missingError struct {
	what  string
	cause error // the node's words, when it said more than null
}

func (e *missingError) Error() string {
	if e.cause != nil {
		return e.what + " not found: " + e.cause.Error()
	}
	return e.what + " not found"
}
func (e *missingError) Unwrap() error        { return e.cause }
func (e *missingError) Is(target error) bool { return target == ethereum.NotFound }

func missing(format string, args ...any) error {
	return &missingError{what: fmt.Sprintf(format, args...)}
}

// class is what the retry loop does with an error.
type class int

const (
	permanent class = iota // return it as is
	transient              // retry, possibly elsewhere
	lagging                // try another endpoint, no penalty
)

// classify names an error's kind and what to do about it.
func classify(err error) (kind string, c class, retryAfter time.Duration) {
	var (
		rte  *RangeTooLargeError
		ale  *AddressLimitError
		me   *missingError
		le   *lagError
		he   *HTTPError
		re   *RPCError
		nerr net.Error
	)
	switch {
	case errors.As(err, &rte):
		return kindTooLarge, permanent, 0
	case errors.As(err, &ale):
		return kindAddressLimit, permanent, 0
	case errors.Is(err, ErrStateUnavailable):
		return kindStateUnavailable, permanent, 0
	case errors.As(err, &me), errors.As(err, &le):
		return kindMissing, lagging, 0
	case errors.Is(err, context.Canceled):
		return kindCanceled, permanent, 0
	case errors.Is(err, context.DeadlineExceeded):
		return kindTimeout, transient, 0
	case errors.Is(err, errResponseTooLarge):
		return kindTooLarge, permanent, 0
	case errors.As(err, &he):
		switch {
		case he.StatusCode == http.StatusTooManyRequests:
			return kindRateLimited, transient, he.RetryAfter
		case he.StatusCode == http.StatusRequestTimeout:
			return kindTimeout, transient, he.RetryAfter
		case he.StatusCode >= 500:
			return kindServer, transient, he.RetryAfter
		case he.StatusCode == http.StatusRequestEntityTooLarge:
			return kindTooLarge, permanent, 0
		}
		// 401/403/404 and the like: this endpoint is misconfigured; another may work.
		return kindHTTP, transient, 0
	case errors.As(err, &re):
		return classifyRPC(re)
	case errors.Is(err, errBadResponse), errors.Is(err, errNoResponse):
		return kindBadResponse, transient, 0
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED):
		return kindConnection, transient, 0
	case errors.As(err, &nerr):
		if nerr.Timeout() {
			return kindTimeout, transient, 0
		}
		return kindConnection, transient, 0
	}
	// Transport errors without a typed cause ("server closed idle connection", TLS failures
	// mid-flight) come from post() and read answer: treat them as a connection problem.
	msg := err.Error()
	if strings.HasPrefix(msg, "post: ") || strings.HasPrefix(msg, "read answer: ") {
		return kindConnection, transient, 0
	}
	return kindRPC, permanent, 0
}

func classifyRPC(re *RPCError) (string, class, time.Duration) {
	msg := strings.ToLower(re.Message + " " + string(re.Data))
	switch {
	case containsAny(msg, "transaction indexing is in progress", "indexing is in progress"):
		return kindIndexing, transient, 0
	case containsAny(msg, stateUnavailablePatterns...):
		return kindStateUnavailable, permanent, 0
	case containsAny(msg, rateLimitPatterns...) || re.Code == 429:
		return kindRateLimited, transient, 0
	case re.Code == -32002 || containsAny(msg, "request timed out", "timeout", "timed out"):
		return kindTimeout, transient, 0
	case re.Code == -32003 || containsAny(msg, "response too large", "response size exceeded", "batch too large", "batch size"):
		return kindTooLarge, permanent, 0
	case containsAny(msg, missingPatterns...):
		return kindMissing, lagging, 0
	case isUnsupported(re):
		return kindUnsupported, permanent, 0
	case re.Code == -32603 || containsAny(msg, serverPatterns...):
		return kindServer, transient, 0
	}
	return kindRPC, permanent, 0
}

var (
	stateUnavailablePatterns = []string{
		"historical state", "missing trie node", "state is not available", "state not available",
		"state unavailable", "state histories haven't been fully indexed", "is not an archive node",
		"pruned", "state already discarded",
	}
	rateLimitPatterns = []string{
		"rate limit", "too many requests", "request rate exceeded", "exceeded the rate",
		"compute units", "capacity exceeded", "throughput", "daily request count exceeded",
		"rate exceeded", "ratelimit", "slow down",
	}
	missingPatterns = []string{
		"unknown block", "header not found", "block not found", "could not find block",
		"cannot find block", "block beyond", "beyond current head", "not yet available",
		"extends beyond current head",
	}
	serverPatterns = []string{
		"internal error", "internal server error", "service unavailable", "bad gateway",
		"gateway timeout", "temporarily unavailable", "try again", "overloaded", "upstream",
		"server error", "connection reset", "connection refused", "eof",
	}
	tooLargePatterns = []string{
		"query returned more than", "log response size exceeded", "response size exceeded",
		"response too large", "response size too large", "exceed maximum block range",
		"block range is too wide", "block range too large", "block range too wide",
		"range is too large", "range too large", "too many blocks", "exceeds max block range",
		"block range limit", "query timeout exceeded", "query exceeds max results",
		"too many results", "more than 10000 results", "is limited to a", "maximum block range",
		"max block range", "logs limit", "request timed out", "statement timeout",
		"query timeout", "returned too many", "exceed max results", "range exceeds",
		"block range exceeded", "timeout exceeded", "context deadline exceeded",
	}
	addressLimitPatterns = []string{
		"exceed max addresses", "too many addresses", "addresses limit", "max addresses",
		"address limit", "too many topics",
	}
)

func isUnsupported(re *RPCError) bool {
	if re.Code == -32601 {
		return true
	}
	msg := strings.ToLower(re.Message)
	return containsAny(msg, "method not found", "does not exist/is not available", "not supported",
		"unsupported method", "method not available", "is not available", "unsupported")
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

var (
	hexRangeRE   = regexp.MustCompile(`\[\s*(0x[0-9a-fA-F]+)\s*,\s*(0x[0-9a-fA-F]+)\s*\]`)
	decRangeRE   = regexp.MustCompile(`\[\s*(\d+)\s*,\s*(\d+)\s*\]`)
	gethRangeRE  = regexp.MustCompile(`exceed maximum block range:? (\d+)`)
	limitedToRE  = regexp.MustCompile(`(?:limited to an? |maximum block range (?:is |of )?|max block range (?:is |of )?)(\d[\d,]*)`)
	infuraDataRE = regexp.MustCompile(`"from"\s*:\s*"(0x[0-9a-fA-F]+)"\s*,\s*"to"\s*:\s*"(0x[0-9a-fA-F]+)"`)
)

// logsError turns an eth_getLogs failure over [from, to] into a *RangeTooLargeError or
// *AddressLimitError where the provider's words say so. deadline is true when our own attempt
// timeout ran out, which on a block range means the range was too much.
func logsError(err error, isRange bool, from, to uint64, addresses int, deadline bool) error {
	var re *RPCError
	var he *HTTPError
	msg := ""
	if errors.As(err, &re) {
		msg = strings.ToLower(re.Message + " " + string(re.Data))
		if containsAny(msg, addressLimitPatterns...) {
			return &AddressLimitError{Addresses: addresses, Cause: err}
		}
	}
	if !isRange {
		return err
	}
	tooLarge := false
	switch {
	case deadline && errors.Is(err, context.DeadlineExceeded):
		tooLarge = true
	case errors.Is(err, errResponseTooLarge):
		tooLarge = true
	case errors.As(err, &he):
		tooLarge = he.StatusCode == http.StatusRequestEntityTooLarge ||
			containsAny(strings.ToLower(he.Body), "query returned more than", "response size exceeded", "response too large")
		msg = strings.ToLower(he.Body)
	case re != nil:
		tooLarge = re.Code == -32003 || re.Code == -32002 || containsAny(msg, tooLargePatterns...)
		if !tooLarge && re.Code == -32005 && !containsAny(msg, rateLimitPatterns...) {
			// Infura's "limit exceeded" family: -32005 that is not about the request rate.
			tooLarge = true
		}
	}
	if !tooLarge {
		return err
	}
	out := &RangeTooLargeError{From: from, To: to, Cause: err}
	out.SuggestedFrom, out.SuggestedTo = suggestedRange(msg, from, to)
	return out
}

// suggestedRange reads the range a provider proposes: an explicit [from, to] (Infura, Alchemy,
// in hex or decimal, or Infura's data object), or a range cap ("exceed maximum block range
// 1000", "limited to a 10,000 range") applied from `from`. It ignores a suggestion that is not
// a strict sub-range starting at or after from.
func suggestedRange(msg string, from, to uint64) (uint64, uint64) {
	ok := func(a, b uint64) bool { return a >= from && b >= a && b < to && a <= to }
	if m := hexRangeRE.FindStringSubmatch(msg); m != nil {
		a, e1 := strconv.ParseUint(m[1][2:], 16, 64)
		b, e2 := strconv.ParseUint(m[2][2:], 16, 64)
		if e1 == nil && e2 == nil && ok(a, b) {
			return a, b
		}
	}
	if m := infuraDataRE.FindStringSubmatch(msg); m != nil {
		a, e1 := strconv.ParseUint(m[1][2:], 16, 64)
		b, e2 := strconv.ParseUint(m[2][2:], 16, 64)
		if e1 == nil && e2 == nil && ok(a, b) {
			return a, b
		}
	}
	if m := decRangeRE.FindStringSubmatch(msg); m != nil {
		a, e1 := strconv.ParseUint(m[1], 10, 64)
		b, e2 := strconv.ParseUint(m[2], 10, 64)
		if e1 == nil && e2 == nil && ok(a, b) {
			return a, b
		}
	}
	if m := gethRangeRE.FindStringSubmatch(msg); m != nil {
		// geth refuses when to-from > limit, so from+limit is accepted.
		if n, err := strconv.ParseUint(m[1], 10, 64); err == nil && n > 0 && from+n < to {
			return from, from + n
		}
	}
	if m := limitedToRE.FindStringSubmatch(msg); m != nil {
		if n, err := strconv.ParseUint(strings.ReplaceAll(m[1], ",", ""), 10, 64); err == nil && n > 0 && from+n-1 < to {
			return from, from + n - 1
		}
	}
	return 0, 0
}
