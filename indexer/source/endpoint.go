package source

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// EndpointStatus is one endpoint's health for `echain-indexer status`.
type EndpointStatus struct {
	Name          string
	URL           string // scheme and host only: provider URLs carry keys
	WebSocket     bool   // a WS URL is configured
	Head          uint64 // latest block seen from it; 0 before the first answer
	HeadAt        time.Time
	Lagging       bool // head more than LagTolerance behind the best endpoint
	Requests      uint64
	Errors        uint64
	LastError     string
	LastErrorAt   time.Time
	Latency       time.Duration // moving average of successful attempts
	CoolingDown   time.Duration // > 0: failed recently, asked again after this
	BlockReceipts string        // eth_getBlockReceipts: "supported", "unsupported", "unknown"
	WrongChain    string        // non-empty: out of service, it serves another chain (why)
}

type endpoint struct {
	name    string
	display string
	rpc     *httpRPC
	wsURL   string

	mu            sync.Mutex
	head          uint64
	headAt        time.Time
	requests      uint64
	failures      uint64
	consecutive   int
	cooldownUntil time.Time
	lastErr       string
	lastErrAt     time.Time
	latency       time.Duration
	blockReceipts int8 // 0 unknown, 1 supported, -1 unsupported

	dials         atomic.Uint64 // HTTP connections opened to it
	idMu          sync.Mutex    // one identity check at a time
	identity      int8          // identityUnknown, identityOK, identityWrong
	identityDials uint64        // dials when the last check began
	wrongChain    string        // why it is out of service
}

func (ep *endpoint) headNumber() uint64 {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return ep.head
}

// setHead records an authoritative latest block (eth_blockNumber, latest header, newHeads):
// it may go down after a reorg to a shorter chain.
func (ep *endpoint) setHead(n uint64) {
	ep.mu.Lock()
	ep.head = n
	ep.headAt = time.Now()
	ep.mu.Unlock()
}

// sawBlock records that the endpoint has block n, so its head is at least n.
func (ep *endpoint) sawBlock(n uint64) {
	ep.mu.Lock()
	if n > ep.head {
		ep.head = n
		ep.headAt = time.Now()
	}
	ep.mu.Unlock()
}

func (ep *endpoint) receiptsSupport() int8 {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return ep.blockReceipts
}

func (ep *endpoint) setReceiptsSupport(v int8) {
	ep.mu.Lock()
	ep.blockReceipts = v
	ep.mu.Unlock()
}

// succeeded records a good attempt; it returns how many failures in a row preceded it.
func (ep *endpoint) succeeded(took time.Duration) int {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	ep.requests++
	prev := ep.consecutive
	ep.consecutive = 0
	ep.cooldownUntil = time.Time{}
	if ep.latency == 0 {
		ep.latency = took
	} else {
		ep.latency = (ep.latency*7 + took) / 8
	}
	return prev
}

// answered records an attempt that got an answer the endpoint is not to blame for (a range too
// large, a revert, a block it does not have yet).
func (ep *endpoint) answered() {
	ep.mu.Lock()
	ep.requests++
	ep.mu.Unlock()
}

// failed records a transient failure and puts the endpoint in a cooldown: exponential backoff
// with jitter, or exactly the Retry-After the provider asked for. It returns the failures in a
// row so far.
func (ep *endpoint) failed(msg string, retryAfter, base, ceiling time.Duration) int {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	ep.requests++
	ep.failures++
	ep.consecutive++
	ep.lastErr = msg
	ep.lastErrAt = time.Now()
	d := retryAfter
	if d <= 0 {
		d = backoff(ep.consecutive, base, ceiling)
	}
	ep.cooldownUntil = time.Now().Add(d)
	if ep.identity == identityOK {
		ep.identity = identityUnknown // it may come back as another node: check again
	}
	return ep.consecutive
}

// backoff is base·2^(n-1) capped at ceiling, with ±25 % jitter so that many callers spread out.
func backoff(n int, base, ceiling time.Duration) time.Duration {
	d := base
	for i := 1; i < n && d < ceiling; i++ {
		d *= 2
	}
	d = min(d, ceiling)
	return time.Duration(float64(d) * (0.75 + rand.Float64()/2))
}

func (ep *endpoint) status(best, tolerance uint64) EndpointStatus {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	st := EndpointStatus{
		Name:        ep.name,
		URL:         ep.display,
		WebSocket:   ep.wsURL != "",
		Head:        ep.head,
		HeadAt:      ep.headAt,
		Lagging:     ep.head+tolerance < best,
		Requests:    ep.requests,
		Errors:      ep.failures,
		LastError:   ep.lastErr,
		LastErrorAt: ep.lastErrAt,
		Latency:     ep.latency,
		WrongChain:  ep.wrongChain,
	}
	if d := time.Until(ep.cooldownUntil); d > 0 {
		st.CoolingDown = d
	}
	switch ep.blockReceipts {
	case 1:
		st.BlockReceipts = "supported"
	case -1:
		st.BlockReceipts = "unsupported"
	default:
		st.BlockReceipts = "unknown"
	}
	return st
}
