// Package rpcproxy puts fault injection in front of a real node for tests: an HTTP JSON-RPC
// proxy that answers chosen calls with provider errors, HTTP statuses, delays, dropped
// connections, or a view of the chain N blocks behind, and can play a hosted provider
// (provider.go: latency, rate limits answered 429, range, result and batch caps, 5xx, usage
// counts); and a TCP proxy (tcp.go) that cuts, refuses or freezes WebSocket connections.
package rpcproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RPCError is a JSON-RPC error object to answer with.
type RPCError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// Call is one JSON-RPC call as the proxy received it.
type Call struct {
	Method string
	Params []json.RawMessage
}

// LogsRange returns the block range of an eth_getLogs call with numeric fromBlock and toBlock.
func (c Call) LogsRange() (from, to uint64, ok bool) {
	f := c.filter()
	if f == nil || f.FromBlock == "" || f.ToBlock == "" {
		return 0, 0, false
	}
	a, err1 := parseQuantity(f.FromBlock)
	b, err2 := parseQuantity(f.ToBlock)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return a, b, true
}

// Addresses is how many addresses an eth_getLogs call names.
func (c Call) Addresses() int {
	f := c.filter()
	if f == nil {
		return 0
	}
	var list []string
	if json.Unmarshal(f.Address, &list) == nil {
		return len(list)
	}
	if len(f.Address) > 0 && string(f.Address) != "null" {
		return 1
	}
	return 0
}

type filterParams struct {
	FromBlock string          `json:"fromBlock"`
	ToBlock   string          `json:"toBlock"`
	BlockHash string          `json:"blockHash"`
	Address   json.RawMessage `json:"address"`
	Topics    json.RawMessage `json:"topics"`
}

func (c Call) filter() *filterParams {
	if c.Method != "eth_getLogs" || len(c.Params) == 0 {
		return nil
	}
	var f filterParams
	if json.Unmarshal(c.Params[0], &f) != nil {
		return nil
	}
	return &f
}

// Rule is one fault. A call matches when Method matches ("" matches all), When (if set) says
// yes, and Times (0: unlimited) is not used up. The first matching rule applies, in the order
// they were added. One of the fault fields should be set:
type Rule struct {
	Method string
	Times  int
	When   func(Call) bool

	Result     json.RawMessage      // answer the call with this result (e.g. `[]`, `null`)
	Error      *RPCError            // answer the call with this error
	ErrorFunc  func(Call) *RPCError // or with an error built from the call (nil: no fault)
	Status     int                  // answer the whole HTTP request with this status
	RetryAfter string               // Retry-After header with Status
	Delay      time.Duration        // wait this long, then forward (or apply Error/Status)
	Drop       bool                 // close the connection without an answer
}

type rule struct {
	Rule
	left int // remaining uses; -1 unlimited
	hits int
}

// Proxy is an HTTP JSON-RPC proxy with fault injection.
type Proxy struct {
	target string
	client *http.Client
	srv    *http.Server
	ln     net.Listener

	mu     sync.Mutex
	rules  []*rule
	lag    uint64
	prov   *provider // SetProvider; nil: no latency, limits or usage counts
	calls  map[string]int
	faults map[string]int
}

// New starts a proxy on 127.0.0.1 (a free port) in front of the node's HTTP JSON-RPC URL.
func New(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("rpc proxy listen: %w", err)
	}
	p := &Proxy{
		target: target,
		client: &http.Client{Timeout: time.Minute},
		ln:     ln,
		calls:  map[string]int{},
		faults: map[string]int{},
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// URL is the proxy's HTTP URL.
func (p *Proxy) URL() string { return "http://" + p.ln.Addr().String() }

// Close stops the proxy.
func (p *Proxy) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = p.srv.Shutdown(ctx)
	_ = p.srv.Close()
	p.client.CloseIdleConnections()
}

// Add installs a rule; the returned func removes it.
func (p *Proxy) Add(r Rule) (remove func()) {
	rr := &rule{Rule: r, left: r.Times}
	if r.Times <= 0 {
		rr.left = -1
	}
	p.mu.Lock()
	p.rules = append(p.rules, rr)
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		for i, x := range p.rules {
			if x == rr {
				p.rules = append(p.rules[:i], p.rules[i+1:]...)
				return
			}
		}
	}
}

// Clear removes every rule and the lag.
func (p *Proxy) Clear() {
	p.mu.Lock()
	p.rules = nil
	p.lag = 0
	p.mu.Unlock()
}

// SetLag makes the proxy answer as a node n blocks behind the real one: eth_blockNumber and
// `latest` report head-n, blocks, receipts and transactions above head-n are null, eth_getLogs
// by hash of such a block fails with "unknown block", and eth_getLogs over a range silently
// stops at head-n (the worst thing a lagging provider does: an answer that looks complete).
func (p *Proxy) SetLag(n uint64) {
	p.mu.Lock()
	p.lag = n
	p.mu.Unlock()
}

// Calls counts calls received per method (batch elements count one by one).
func (p *Proxy) Calls(method string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[method]
}

// Faults counts calls per method that a rule answered (or delayed, or dropped).
func (p *Proxy) Faults(method string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.faults[method]
}

type message struct {
	Version string            `json:"jsonrpc"`
	ID      json.RawMessage   `json:"id,omitempty"`
	Method  string            `json:"method,omitempty"`
	Params  []json.RawMessage `json:"params,omitempty"`
	Result  json.RawMessage   `json:"result,omitempty"`
	Error   *RPCError         `json:"error,omitempty"`
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	body = bytes.TrimSpace(body)
	isBatch := len(body) > 0 && body[0] == '['
	var msgs []*message
	if isBatch {
		err = json.Unmarshal(body, &msgs)
	} else {
		var m message
		err = json.Unmarshal(body, &m)
		msgs = []*message{&m}
	}
	if err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}

	p.mu.Lock()
	prov := p.prov
	p.mu.Unlock()
	if prov != nil {
		delay, status, retryAfter := prov.admit(msgs, len(body))
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		if status != 0 {
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			n, _ := fmt.Fprintf(w, `{"jsonrpc":"2.0","id":null,"error":{"code":%d,"message":%q}}`, -32005, http.StatusText(status))
			prov.sent(n)
			return
		}
	}

	// Decide each call's fault.
	var (
		delay   time.Duration
		httpHit *rule
		answers = make([]*message, len(msgs))
	)
	p.mu.Lock()
	lag := p.lag
	for i, m := range msgs {
		p.calls[m.Method]++
		rr := p.match(Call{Method: m.Method, Params: m.Params})
		if rr == nil {
			continue
		}
		p.faults[m.Method]++
		delay = max(delay, rr.Delay)
		if rr.Status != 0 || rr.Drop {
			if httpHit == nil {
				httpHit = rr
			}
			continue
		}
		if rr.Result != nil {
			answers[i] = &message{Version: "2.0", ID: m.ID, Result: rr.Result}
			continue
		}
		var e *RPCError
		if rr.Error != nil {
			e = rr.Error
		} else if rr.ErrorFunc != nil {
			e = rr.ErrorFunc(Call{Method: m.Method, Params: m.Params})
		}
		if e != nil {
			answers[i] = &message{Version: "2.0", ID: m.ID, Error: e}
		}
	}
	p.mu.Unlock()

	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if httpHit != nil {
		if httpHit.Drop {
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					_ = c.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		}
		if httpHit.RetryAfter != "" {
			w.Header().Set("Retry-After", httpHit.RetryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(httpHit.Status)
		_, _ = fmt.Fprintf(w, `{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":%q}}`, http.StatusText(httpHit.Status))
		return
	}

	if prov != nil {
		prov.refuse(msgs, answers)
	}
	ctx := r.Context()
	var head uint64
	if lag > 0 {
		real, err := p.blockNumber(ctx)
		if err != nil {
			http.Error(w, "node: "+err.Error(), http.StatusBadGateway)
			return
		}
		head = real - min(real, lag)
	}
	// Forward the calls without an answer yet, rewriting them for the lagging view.
	var fwd []*message
	var fwdIdx []int
	for i, m := range msgs {
		if answers[i] != nil {
			continue
		}
		if lag > 0 {
			if a := p.lagBefore(ctx, m, head); a != nil {
				answers[i] = a
				continue
			}
		}
		fwd = append(fwd, m)
		fwdIdx = append(fwdIdx, i)
	}
	if len(fwd) > 0 {
		got, err := p.forward(ctx, fwd)
		if err != nil {
			http.Error(w, "node: "+err.Error(), http.StatusBadGateway)
			return
		}
		for k, i := range fwdIdx {
			a := got[k]
			if lag > 0 {
				a = p.lagAfter(ctx, msgs[i], a, head)
			}
			if prov != nil {
				a = prov.capLogs(msgs[i], a)
			}
			answers[i] = a
		}
	}
	w.Header().Set("Content-Type", "application/json")
	var out []byte
	if isBatch {
		out, err = json.Marshal(answers)
	} else {
		out, err = json.Marshal(answers[0])
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if prov != nil {
		prov.sent(len(out))
	}
	_, _ = w.Write(out)
}

// match finds the rule for a call and uses it up by one; p.mu is held.
func (p *Proxy) match(c Call) *rule {
	for _, rr := range p.rules {
		if rr.left == 0 || (rr.Method != "" && rr.Method != c.Method) {
			continue
		}
		if rr.When != nil && !rr.When(c) {
			continue
		}
		if rr.ErrorFunc != nil && rr.Error == nil && rr.Status == 0 && !rr.Drop && rr.Delay == 0 {
			// A rule that only answers through ErrorFunc applies when it produces an error.
			if rr.ErrorFunc(c) == nil {
				continue
			}
		}
		if rr.left > 0 {
			rr.left--
		}
		rr.hits++
		return rr
	}
	return nil
}

// forward sends msgs to the node as one batch and returns the answers in msgs' order.
func (p *Proxy) forward(ctx context.Context, msgs []*message) ([]*message, error) {
	body, err := json.Marshal(msgs)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.target, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d: %s", resp.StatusCode, raw)
	}
	raw = bytes.TrimSpace(raw)
	var got []*message
	if len(raw) > 0 && raw[0] == '{' {
		var single message
		if err := json.Unmarshal(raw, &single); err != nil {
			return nil, err
		}
		got = make([]*message, len(msgs))
		for i, m := range msgs {
			got[i] = &message{Version: "2.0", ID: m.ID, Error: single.Error}
		}
		return got, nil
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		return nil, err
	}
	byID := make(map[string]*message, len(got))
	for _, g := range got {
		byID[string(g.ID)] = g
	}
	out := make([]*message, len(msgs))
	for i, m := range msgs {
		a := byID[string(m.ID)]
		if a == nil {
			a = &message{Version: "2.0", ID: m.ID, Error: &RPCError{Code: -32603, Message: "proxy: no answer from node"}}
		}
		out[i] = a
	}
	return out, nil
}

// nodeCall performs one call on the node for the proxy's own bookkeeping.
func (p *Proxy) nodeCall(ctx context.Context, method string, params ...any) (json.RawMessage, error) {
	ps := make([]json.RawMessage, len(params))
	for i, x := range params {
		b, err := json.Marshal(x)
		if err != nil {
			return nil, err
		}
		ps[i] = b
	}
	got, err := p.forward(ctx, []*message{{Version: "2.0", ID: json.RawMessage(`"proxy"`), Method: method, Params: ps}})
	if err != nil {
		return nil, err
	}
	if got[0].Error != nil {
		return nil, fmt.Errorf("%s: %s", method, got[0].Error.Message)
	}
	return got[0].Result, nil
}

func (p *Proxy) blockNumber(ctx context.Context) (uint64, error) {
	raw, err := p.nodeCall(ctx, "eth_blockNumber")
	if err != nil {
		return 0, err
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, err
	}
	return parseQuantity(s)
}

// blockNumberOfHash is the number of the block with this hash, or -1 when the node lacks it.
func (p *Proxy) blockNumberOfHash(ctx context.Context, hash string) int64 {
	raw, err := p.nodeCall(ctx, "eth_getBlockByHash", hash, false)
	if err != nil {
		return -1
	}
	var b struct {
		Number string `json:"number"`
	}
	if json.Unmarshal(raw, &b) != nil || b.Number == "" {
		return -1
	}
	n, err := parseQuantity(b.Number)
	if err != nil {
		return -1
	}
	return int64(n)
}

var null = json.RawMessage("null")

func result(m *message, v json.RawMessage) *message {
	return &message{Version: "2.0", ID: m.ID, Result: v}
}

func quantity(n uint64) string { return "0x" + strconv.FormatUint(n, 16) }

// lagBefore answers or rewrites a call for the lagging view before it reaches the node; nil
// means forward it (possibly rewritten in place).
func (p *Proxy) lagBefore(ctx context.Context, m *message, head uint64) *message {
	str := func(i int) string {
		var s string
		if i < len(m.Params) {
			_ = json.Unmarshal(m.Params[i], &s)
		}
		return s
	}
	setStr := func(i int, s string) {
		b, _ := json.Marshal(s)
		m.Params[i] = b
	}
	beyond := func(tag string) (bool, bool) { // (is a number above head, is latest-like)
		switch tag {
		case "latest", "pending", "safe", "finalized", "":
			return false, true
		case "earliest":
			return false, false
		}
		n, err := parseQuantity(tag)
		return err == nil && n > head, false
	}
	switch m.Method {
	case "eth_blockNumber":
		b, _ := json.Marshal(quantity(head))
		return result(m, b)
	case "eth_getBlockByNumber", "eth_getBlockReceipts", "eth_getBlockTransactionCountByNumber":
		tag := str(0)
		if strings.HasPrefix(tag, "0x") && len(tag) == 66 { // eth_getBlockReceipts by hash
			if n := p.blockNumberOfHash(ctx, tag); n < 0 || uint64(n) > head {
				return result(m, null)
			}
			return nil
		}
		if isBeyond, latest := beyond(tag); isBeyond {
			return result(m, null)
		} else if latest && len(m.Params) > 0 {
			setStr(0, quantity(head))
		}
	case "eth_getBlockByHash":
		if n := p.blockNumberOfHash(ctx, str(0)); n < 0 || uint64(n) > head {
			return result(m, null)
		}
	case "eth_getLogs":
		f := Call{Method: m.Method, Params: m.Params}.filter()
		if f == nil {
			return nil
		}
		if f.BlockHash != "" {
			if n := p.blockNumberOfHash(ctx, f.BlockHash); n < 0 || uint64(n) > head {
				return &message{Version: "2.0", ID: m.ID, Error: &RPCError{Code: -32000, Message: "unknown block"}}
			}
			return nil
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(m.Params[0], &obj) != nil {
			return nil
		}
		from, _ := parseQuantity(f.FromBlock)
		if from > head {
			return result(m, json.RawMessage("[]"))
		}
		to := head
		if t, err := parseQuantity(f.ToBlock); err == nil && t < head {
			to = t
		}
		obj["toBlock"], _ = json.Marshal(quantity(to))
		m.Params[0], _ = json.Marshal(obj)
	case "eth_call", "eth_getBalance", "eth_getCode", "eth_getStorageAt":
		last := len(m.Params) - 1
		if last < 1 {
			return nil
		}
		var blk map[string]string
		if json.Unmarshal(m.Params[last], &blk) == nil && blk["blockHash"] != "" {
			if n := p.blockNumberOfHash(ctx, blk["blockHash"]); n < 0 || uint64(n) > head {
				return &message{Version: "2.0", ID: m.ID, Error: &RPCError{Code: -32000, Message: "header not found"}}
			}
			return nil
		}
		if isBeyond, latest := beyond(str(last)); isBeyond {
			return &message{Version: "2.0", ID: m.ID, Error: &RPCError{Code: -32000, Message: "header not found"}}
		} else if latest {
			setStr(last, quantity(head))
		}
	}
	return nil
}

// lagAfter hides answers about blocks above head.
func (p *Proxy) lagAfter(ctx context.Context, m *message, a *message, head uint64) *message {
	if a.Error != nil || len(a.Result) == 0 || string(a.Result) == "null" {
		return a
	}
	switch m.Method {
	case "eth_getTransactionReceipt", "eth_getTransactionByHash", "eth_getTransactionByBlockHashAndIndex":
		var x struct {
			BlockNumber string `json:"blockNumber"`
		}
		if json.Unmarshal(a.Result, &x) == nil && x.BlockNumber != "" {
			if n, err := parseQuantity(x.BlockNumber); err == nil && n > head {
				return result(m, null)
			}
		}
	}
	return a
}

func parseQuantity(s string) (uint64, error) {
	if !strings.HasPrefix(s, "0x") {
		return 0, errors.New("not a hex quantity")
	}
	return strconv.ParseUint(s[2:], 16, 64)
}
