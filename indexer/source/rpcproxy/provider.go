package rpcproxy

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Provider makes the proxy behave like a hosted RPC provider tens of milliseconds away, with the
// limits providers put on a plan. Zero fields are off. Rules (Add) still apply first: a call a
// rule answers never reaches the provider's limits.
type Provider struct {
	// Latency is added to every HTTP round trip, ±Jitter (uniform).
	Latency, Jitter time.Duration
	// RequestsPerSecond limits HTTP requests, ElementsPerSecond the calls in them (a batch of n
	// counts n, as providers bill). Over either, the request is answered 429 with a Retry-After
	// of the seconds until it would pass.
	RequestsPerSecond, ElementsPerSecond float64
	// MaxBatch refuses larger batches: every element is answered with a JSON-RPC error.
	MaxBatch int
	// MaxLogsRange refuses eth_getLogs over more blocks, MaxLogs answers with more logs, both
	// worded as Style words them.
	MaxLogsRange uint64
	MaxLogs      int
	Style        HintStyle
	// ServerErrors is the share of requests (0..1) answered 503.
	ServerErrors float64
	// Seed makes jitter and server errors repeatable.
	Seed uint64
}

// ProductionLike is the provider of the benchmarks: 50 ms away (±10 ms), 25 requests/s, a
// 10,000-block eth_getLogs cap in Chainstack's words, batches of at most 100.
func ProductionLike() Provider {
	return Provider{Latency: 50 * time.Millisecond, Jitter: 10 * time.Millisecond, RequestsPerSecond: 25,
		MaxBatch: 100, MaxLogsRange: 10_000, MaxLogs: 10_000, Style: Chainstack}
}

// Usage is what the proxy received and sent: what a provider billing per request would count.
type Usage struct {
	Requests      int64            // HTTP requests
	Elements      int64            // JSON-RPC calls (each batch element)
	Methods       map[string]int64 // calls per method
	RateLimited   int64            // requests answered 429
	ServerErrors  int64            // requests answered 503 by ServerErrors
	CapRefused    int64            // calls refused by MaxBatch, MaxLogsRange or MaxLogs
	BytesReceived int64            // request bodies
	BytesSent     int64            // answer bodies: what the client downloads
}

// provider is the proxy's provider state.
type provider struct {
	mu   sync.Mutex
	cfg  Provider
	rng  *rand.Rand
	reqs bucket
	elts bucket
	use  Usage
}

// bucket is a token bucket holding one second of its rate.
type bucket struct {
	rate   float64
	tokens float64
	at     time.Time
}

// take removes n tokens if it can; else it says how long until it could.
func (b *bucket) take(now time.Time, n float64) (bool, time.Duration) {
	if b.rate <= 0 {
		return true, 0
	}
	burst := max(b.rate, n)
	if b.at.IsZero() {
		b.tokens = burst
	} else {
		b.tokens = min(burst, b.tokens+now.Sub(b.at).Seconds()*b.rate)
	}
	b.at = now
	if b.tokens >= n {
		b.tokens -= n
		return true, 0
	}
	return false, time.Duration((n - b.tokens) / b.rate * float64(time.Second))
}

// SetProvider makes the proxy a provider (replacing an earlier one) and resets its usage.
func (p *Proxy) SetProvider(c Provider) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.prov = &provider{cfg: c, rng: rand.New(rand.NewPCG(c.Seed, c.Seed^0x9e3779b97f4a7c15)),
		reqs: bucket{rate: c.RequestsPerSecond}, elts: bucket{rate: c.ElementsPerSecond},
		use: Usage{Methods: map[string]int64{}}}
}

// Usage returns what the proxy counted since SetProvider (zero without a provider).
func (p *Proxy) Usage() Usage {
	p.mu.Lock()
	pr := p.prov
	p.mu.Unlock()
	if pr == nil {
		return Usage{}
	}
	pr.mu.Lock()
	defer pr.mu.Unlock()
	u := pr.use
	u.Methods = make(map[string]int64, len(pr.use.Methods))
	for k, v := range pr.use.Methods {
		u.Methods[k] = v
	}
	return u
}

// admit counts a request of msgs and decides whether the provider takes it: the delay to add,
// and a refusal (status, Retry-After) when it does not.
func (pr *provider) admit(msgs []*message, bodyBytes int) (delay time.Duration, status int, retryAfter string) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	c := &pr.cfg
	pr.use.Requests++
	pr.use.Elements += int64(len(msgs))
	pr.use.BytesReceived += int64(bodyBytes)
	for _, m := range msgs {
		pr.use.Methods[m.Method]++
	}
	delay = c.Latency
	if c.Jitter > 0 {
		delay += time.Duration(pr.rng.Int64N(int64(2*c.Jitter)+1)) - c.Jitter
	}
	delay = max(delay, 0)
	now := time.Now()
	okR, waitR := pr.reqs.take(now, 1)
	okE, waitE := true, time.Duration(0)
	if okR {
		okE, waitE = pr.elts.take(now, float64(len(msgs)))
		if !okE {
			pr.reqs.tokens++ // the request did not pass: give its token back
		}
	}
	if !okR || !okE {
		pr.use.RateLimited++
		secs := int((max(waitR, waitE) + time.Second - 1) / time.Second)
		return delay, http.StatusTooManyRequests, strconv.Itoa(max(secs, 1))
	}
	if c.ServerErrors > 0 && pr.rng.Float64() < c.ServerErrors {
		pr.use.ServerErrors++
		return delay, http.StatusServiceUnavailable, ""
	}
	return delay, 0, ""
}

func (pr *provider) refused() {
	pr.mu.Lock()
	pr.use.CapRefused++
	pr.mu.Unlock()
}

func (pr *provider) sent(n int) {
	pr.mu.Lock()
	pr.use.BytesSent += int64(n)
	pr.mu.Unlock()
}

// refuse answers the calls the provider's caps refuse before they reach the node.
func (pr *provider) refuse(msgs []*message, answers []*message) {
	c := &pr.cfg
	for i, m := range msgs {
		if answers[i] != nil {
			continue
		}
		if c.MaxBatch > 0 && len(msgs) > c.MaxBatch {
			answers[i] = &message{Version: "2.0", ID: m.ID, Error: BatchTooLarge(c.Style, c.MaxBatch)}
			pr.refused()
			continue
		}
		if c.MaxLogsRange > 0 && m.Method == "eth_getLogs" {
			if from, to, ok := (Call{Method: m.Method, Params: m.Params}).LogsRange(); ok && to >= from && to-from+1 > c.MaxLogsRange {
				answers[i] = &message{Version: "2.0", ID: m.ID, Error: rangeError(c.Style, from, to, c.MaxLogsRange)}
				pr.refused()
			}
		}
	}
}

// capLogs replaces an eth_getLogs answer with more than MaxLogs logs by the provider's refusal.
func (pr *provider) capLogs(m *message, a *message) *message {
	c := &pr.cfg
	if c.MaxLogs <= 0 || m.Method != "eth_getLogs" || a == nil || a.Error != nil || len(a.Result) == 0 {
		return a
	}
	var logs []json.RawMessage
	if json.Unmarshal(a.Result, &logs) != nil || len(logs) <= c.MaxLogs {
		return a
	}
	pr.refused()
	from, to, ok := Call{Method: m.Method, Params: m.Params}.LogsRange()
	if !ok {
		return &message{Version: "2.0", ID: m.ID, Error: InfuraTooManyResultsNoHint()}
	}
	// Suggest the share of the range that would have fitted, as Infura and Alchemy do.
	n := max(uint64(float64(to-from+1)*float64(c.MaxLogs)/float64(len(logs))), 1)
	return &message{Version: "2.0", ID: m.ID, Error: rangeError(c.Style, from, to, n)}
}

// rangeError is the refusal of [from, to] by a provider whose cap is max blocks, in its words.
func rangeError(style HintStyle, from, to, max uint64) *RPCError {
	switch style {
	case Chainstack:
		return ChainstackRangeLimit(max)
	case QuickNode:
		return QuickNodeRangeLimit(max)
	case Alchemy:
		return AlchemySizeExceeded(from, from+max-1)
	case AlchemyNoHint:
		return AlchemySizeExceededNoHint()
	case NoHint:
		return InfuraTooManyResultsNoHint()
	case Geth:
		return GethRangeLimit(max - 1)
	case Timeout:
		return QueryTimeout()
	}
	return InfuraTooManyResults(from, from+max-1)
}

// ChainstackRangeLimit is the refusal of an eth_getLogs over more than max blocks that a
// Chainstack Base endpoint passes on from its node (reth's wording; Chainstack adds no cap text
// of its own).
func ChainstackRangeLimit(max uint64) *RPCError {
	return &RPCError{Code: -32602, Message: fmt.Sprintf("query exceeds max block range %d", max)}
}

// QuickNodeRangeLimit is QuickNode's refusal of an eth_getLogs over more than max blocks.
func QuickNodeRangeLimit(max uint64) *RPCError {
	return &RPCError{Code: -32614, Message: fmt.Sprintf("eth_getLogs is limited to a %d range", max)}
}

// BatchTooLarge is a provider's refusal of a batch longer than max.
func BatchTooLarge(style HintStyle, max int) *RPCError {
	if style == QuickNode {
		return &RPCError{Code: -32600, Message: fmt.Sprintf("Batch size is too large. Maximum allowed is %d", max)}
	}
	return &RPCError{Code: -32600, Message: fmt.Sprintf("batch size limit exceeded: %d", max)}
}
