package source

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"time"
)

// Endpoint is one JSON-RPC provider. HTTPURL carries every request; WSURL, when set, carries the
// newHeads subscription.
type Endpoint struct {
	Name    string // label in logs, metrics and status; defaults to the URL's host
	HTTPURL string
	WSURL   string
	// RequestsPerSecond caps the HTTP requests sent to it (a batch is one request): a
	// provider's plan allows so many, and each request past it costs a 429 and at least a
	// second of Retry-After. 0: no cap.
	RequestsPerSecond float64
	// CallsPerSecond caps the JSON-RPC calls sent to it, each element of a batch counted, as
	// providers that bill per call count them (Chainstack among them). It also caps
	// Config.BatchSize at half a second's calls: a batch larger than the provider allows in a
	// second would be refused whole. 0: no cap.
	CallsPerSecond float64
}

// ReceiptsMode chooses how Txs fetches receipts.
type ReceiptsMode string

const (
	// ReceiptsAuto uses eth_getBlockReceipts where the endpoint supports it (detected on first
	// use), else batched eth_getTransactionReceipt.
	ReceiptsAuto ReceiptsMode = "auto"
	// ReceiptsBlock always uses eth_getBlockReceipts.
	ReceiptsBlock ReceiptsMode = "block"
	// ReceiptsTx always uses batched eth_getTransactionReceipt: cheaper on a busy public chain
	// where a block holds hundreds of transactions and we need a few.
	ReceiptsTx ReceiptsMode = "tx"
)

// Config configures a Source. Zero fields take the defaults documented on each field.
type Config struct {
	Endpoints []Endpoint // in order of preference; at least one

	// ChainID, when set, is the chain every endpoint must serve: checked on each connection
	// (identity.go). 0: not checked.
	ChainID uint64

	RequestTimeout time.Duration // one attempt of one request (default 15s)
	// LogsTimeout bounds one eth_getLogs attempt over a block range (default 30s). Running out
	// of it is reported as a *RangeTooLargeError: the range was too much for the node.
	LogsTimeout time.Duration

	MaxAttempts   int           // attempts per call, across endpoints (default 6)
	RetryBudget   time.Duration // wall time per call including waits (default 2m)
	BackoffBase   time.Duration // first backoff after a transient error (default 200ms)
	BackoffMax    time.Duration // backoff ceiling (default 10s)
	MaxRetryAfter time.Duration // longest Retry-After honoured (default 60s)

	BatchSize        int          // calls per JSON-RPC batch (default 100; geth refuses more than 1000)
	BatchConcurrency int          // batches in flight per Txs call (default 2)
	MaxResponseBytes int64        // larger answers are refused; on eth_getLogs a *RangeTooLargeError (default 64 MiB)
	Receipts         ReceiptsMode // default ReceiptsAuto

	// LagTolerance is how many blocks an endpoint's head may trail the best known head before
	// it is asked only when the others fail (default 2).
	LagTolerance uint64
	// HealthInterval is how often every endpoint's head is refreshed in the background
	// (default 15s; negative disables).
	HealthInterval time.Duration

	HeadTimeout  time.Duration // no newHeads for this long while the chain moved: resubscribe (default 30s)
	PollInterval time.Duration // HTTP polling of the latest header while WS is down (default 2s)
	ReconnectMin time.Duration // first WS reconnect delay (default 250ms)
	ReconnectMax time.Duration // WS reconnect delay ceiling (default 30s)
}

func (c *Config) withDefaults() Config {
	out := *c
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&out.RequestTimeout, 15*time.Second)
	def(&out.LogsTimeout, 30*time.Second)
	def(&out.RetryBudget, 2*time.Minute)
	def(&out.BackoffBase, 200*time.Millisecond)
	def(&out.BackoffMax, 10*time.Second)
	def(&out.MaxRetryAfter, time.Minute)
	def(&out.HealthInterval, 15*time.Second)
	def(&out.HeadTimeout, 30*time.Second)
	def(&out.PollInterval, 2*time.Second)
	def(&out.ReconnectMin, 250*time.Millisecond)
	def(&out.ReconnectMax, 30*time.Second)
	if out.MaxAttempts == 0 {
		out.MaxAttempts = 6
	}
	if out.BatchSize == 0 {
		out.BatchSize = 100
	}
	// A batch holds at most what an endpoint's call limiter lets leave at once (burst): a batch
	// of a full second's calls, sent a second after the last, was refused when the last arrived
	// late.
	for _, e := range out.Endpoints {
		if e.CallsPerSecond > 0 {
			out.BatchSize = min(out.BatchSize, burst(e.CallsPerSecond))
		}
	}
	if out.BatchConcurrency == 0 {
		out.BatchConcurrency = 2
	}
	if out.MaxResponseBytes == 0 {
		out.MaxResponseBytes = 64 << 20
	}
	if out.Receipts == "" {
		out.Receipts = ReceiptsAuto
	}
	if out.LagTolerance == 0 {
		out.LagTolerance = 2
	}
	out.Endpoints = append([]Endpoint(nil), c.Endpoints...)
	for i := range out.Endpoints {
		if out.Endpoints[i].Name == "" {
			if u, err := url.Parse(out.Endpoints[i].HTTPURL); err == nil {
				out.Endpoints[i].Name = u.Host
			}
		}
	}
	return out
}

// burst is what a limiter at rate per second lets leave at once: half a second's worth, at least
// one. A provider counting a second's worth then keeps half a second of room for requests that
// the network bunches up.
func burst(rate float64) int {
	return max(1, int(min(rate/2, 1e6)))
}

func (c *Config) validate() error {
	if len(c.Endpoints) == 0 {
		return errors.New("source: endpoints: at least one endpoint is required")
	}
	names := map[string]bool{}
	for i, e := range c.Endpoints {
		if e.HTTPURL == "" {
			return fmt.Errorf("source: endpoints[%d].http_url: required", i)
		}
		if err := checkURL(e.HTTPURL, "http", "https"); err != nil {
			return fmt.Errorf("source: endpoints[%d].http_url: %w", i, err)
		}
		if e.WSURL != "" {
			if err := checkURL(e.WSURL, "ws", "wss"); err != nil {
				return fmt.Errorf("source: endpoints[%d].ws_url: %w", i, err)
			}
		}
		for _, r := range []struct {
			key string
			v   float64
		}{{"requests_per_second", e.RequestsPerSecond}, {"calls_per_second", e.CallsPerSecond}} {
			if r.v < 0 || math.IsNaN(r.v) || math.IsInf(r.v, 0) {
				return fmt.Errorf("source: endpoints[%d].%s: %v, must be a finite number ≥ 0 (0: no cap)", i, r.key, r.v)
			}
		}
		if names[e.Name] {
			return fmt.Errorf("source: endpoints[%d].name: %q used twice", i, e.Name)
		}
		names[e.Name] = true
	}
	switch c.Receipts {
	case ReceiptsAuto, ReceiptsBlock, ReceiptsTx:
	default:
		return fmt.Errorf("source: receipts: %q is not one of auto, block, tx", c.Receipts)
	}
	if c.MaxAttempts < 1 {
		return fmt.Errorf("source: max_attempts: %d, must be at least 1", c.MaxAttempts)
	}
	if c.BatchSize < 1 || c.BatchSize > 1000 {
		return fmt.Errorf("source: batch_size: %d, must be 1..1000", c.BatchSize)
	}
	return nil
}

func checkURL(raw string, schemes ...string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("invalid URL: %w", err)
	}
	for _, s := range schemes {
		if u.Scheme == s && u.Host != "" {
			return nil
		}
	}
	return fmt.Errorf("%s: want a %v URL with a host", redactURL(raw), schemes)
}

// redactURL keeps scheme and host: provider URLs carry API keys in their path or query.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "<invalid url>"
	}
	return u.Scheme + "://" + u.Host
}
