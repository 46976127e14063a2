package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/echain/echain-indexer/internal/ctxsleep"
)

// Source is JSON-RPC access to one or more endpoints of the same chain. It is safe for
// concurrent use.
type Source struct {
	cfg  Config
	log  *slog.Logger
	m    *metrics
	eps  []*endpoint
	best atomic.Uint64 // highest head seen on any endpoint

	bg     context.Context // lives until Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	headMu sync.Mutex
	head   HeadState

	genesisMu  sync.Mutex
	genesis    common.Hash   // the first genesis hash an endpoint of the configured chain gave
	reconnects atomic.Uint64 // see Reconnects
	lastAnswer atomic.Int64  // unix nanoseconds; see LastAnswer
}

// New validates cfg and prepares the endpoints. It does not wait for any endpoint to answer: a
// node that is down at start is retried like any other failure.
func New(ctx context.Context, cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Source, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		return nil, errors.New("source: nil logger")
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Source{cfg: cfg, log: log, m: m, bg: bg, cancel: cancel}
	s.answeredNow()
	for _, e := range cfg.Endpoints {
		ep := &endpoint{name: e.Name, display: redactURL(e.HTTPURL), wsURL: e.WSURL}
		ep.rpc = &httpRPC{
			url:     e.HTTPURL,
			client:  &http.Client{Transport: newTransport(e.HTTPURL, func() { ep.dials.Add(1) })},
			maxResp: cfg.MaxResponseBytes,
			bufs:    make(chan *bytes.Buffer, keptBuffers),
		}
		// Each limiter bursts half a second of its rate, so a pipeline's requests can leave
		// together: with a burst of one request the 200,000-block busy backfill took 0.9 s
		// longer than with no cap at all. Batches are no larger than the call limiter's burst
		// (withDefaults), so one batch never waits on itself.
		if e.RequestsPerSecond > 0 {
			ep.rpc.requests = rate.NewLimiter(rate.Limit(e.RequestsPerSecond), burst(e.RequestsPerSecond))
		}
		if e.CallsPerSecond > 0 {
			ep.rpc.calls = rate.NewLimiter(rate.Limit(e.CallsPerSecond), burst(e.CallsPerSecond))
		}
		if ep.rpc.requests != nil || ep.rpc.calls != nil {
			waited := m.rateWait.WithLabelValues(e.Name)
			ep.rpc.waited = func(d time.Duration) { waited.Add(d.Seconds()) }
		}
		s.eps = append(s.eps, ep)
	}
	s.setMode(ModeStopped, "")
	if cfg.HealthInterval > 0 {
		s.wg.Add(1)
		go s.healthLoop()
	}
	return s, nil
}

// newTransport: dialed is called for every connection opened, which is checked for the chain it
// serves before its answers are used (identity.go).
func newTransport(rawURL string, dialed func()) *http.Transport {
	t := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         dialCounter(&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}, dialed),
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        64,
		MaxIdleConnsPerHost: 32,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	// gzip saves bandwidth to a remote provider but costs a local node CPU it needs for the
	// queries themselves.
	if u, err := url.Parse(rawURL); err == nil {
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			t.DisableCompression = true
		}
	}
	return t
}

// Close stops background work (health checks, head subscriptions) and waits for it.
func (s *Source) Close() {
	s.cancel()
	s.wg.Wait()
	for _, ep := range s.eps {
		ep.rpc.client.CloseIdleConnections()
	}
}

// Endpoints reports every endpoint's health, in configuration order.
func (s *Source) Endpoints() []EndpointStatus {
	best := s.best.Load()
	out := make([]EndpointStatus, len(s.eps))
	for i, ep := range s.eps {
		out[i] = ep.status(best, s.cfg.LagTolerance)
	}
	return out
}

// BestHead is the highest block number any endpoint has reported.
func (s *Source) BestHead() uint64 { return s.best.Load() }

func (s *Source) healthLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.HealthInterval)
	defer t.Stop()
	for {
		var wg sync.WaitGroup
		for _, ep := range s.eps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := s.ensureIdentity(s.bg, ep)
				if errors.Is(err, ErrWrongChain) {
					return // logged and counted; checked again next round
				}
				if err == nil {
					err = s.fetchHead(s.bg, ep)
				}
				if err != nil && s.bg.Err() == nil {
					// An endpoint that is down is noticed without traffic, and asked last.
					kind, _, retryAfter := classify(err)
					s.m.errors.WithLabelValues(ep.name, "eth_blockNumber", kind).Inc()
					ep.failed(err.Error(), min(retryAfter, s.cfg.MaxRetryAfter), s.cfg.BackoffBase, s.cfg.BackoffMax)
					s.log.Debug("endpoint head check failed", "endpoint", ep.name, "err", err)
				}
			}()
		}
		wg.Wait()
		select {
		case <-s.bg.Done():
			return
		case <-t.C:
		}
	}
}

// fetchHead asks one endpoint for its head, once, without retries.
func (s *Source) fetchHead(ctx context.Context, ep *endpoint) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	var n hexutil.Uint64
	start := time.Now()
	err := ep.rpc.call(ctx, &n, "eth_blockNumber")
	s.m.requests.WithLabelValues(ep.name, "eth_blockNumber").Inc()
	s.m.duration.WithLabelValues(ep.name, "eth_blockNumber").Observe(time.Since(start).Seconds())
	if err != nil {
		return fmt.Errorf("eth_blockNumber: %w", err)
	}
	if ep.identityState() == identityWrong {
		return fmt.Errorf("eth_blockNumber: %s", ep.status(0, 0).WrongChain)
	}
	s.observeHead(ep, uint64(n), true)
	s.answeredNow()
	return nil
}

// observeHead records a head (authoritative) or a block the endpoint is known to have.
func (s *Source) observeHead(ep *endpoint, n uint64, authoritative bool) {
	if authoritative {
		ep.setHead(n)
	} else {
		ep.sawBlock(n)
	}
	h := ep.headNumber()
	s.m.head.WithLabelValues(ep.name).Set(float64(h))
	s.recomputeBest()
}

// recomputeBest: the best head is over the endpoints in service (not those of another chain).
func (s *Source) recomputeBest() {
	var best uint64
	for _, e := range s.eps {
		if e.identityState() != identityWrong {
			best = max(best, e.headNumber())
		}
	}
	s.best.Store(best)
}

// lagError: the endpoint's head is below the block a request needs.
type lagError struct {
	endpoint   string
	need, head uint64
}

func (e *lagError) Error() string {
	return fmt.Sprintf("%s: need block %d, endpoint head is %d", ErrBeyondHead, e.need, e.head)
}
func (e *lagError) Is(target error) bool { return target == ErrBeyondHead }

// stateError: this endpoint lacks the state; an archive endpoint may have it.
type stateError struct{ cause error }

func (e *stateError) Error() string        { return fmt.Sprintf("%s: %v", ErrStateUnavailable, e.cause) }
func (e *stateError) Unwrap() error        { return e.cause }
func (e *stateError) Is(target error) bool { return target == ErrStateUnavailable }

type attemptFunc func(ctx context.Context, ep *endpoint) error

// do runs fn against the endpoints until it succeeds, fails permanently, or the retry budget is
// spent. need > 0 means the request is about block `need`: endpoints whose head is below it are
// not asked (their empty answer would hide a block). A lagging or "not found" answer moves on
// to the next endpoint without penalty; when every endpoint has missed, the last such error is
// returned (it matches ethereum.NotFound or ErrBeyondHead).
func (s *Source) do(ctx context.Context, op string, need uint64, timeout time.Duration, fn attemptFunc) error {
	if timeout == 0 {
		timeout = s.cfg.RequestTimeout
	}
	start := time.Now()
	var (
		missed   map[*endpoint]bool
		lastErr  error
		attempts int
	)
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		ep, wait := s.pick(missed)
		if ep == nil {
			if lastErr == nil {
				lastErr = fmt.Errorf("%w: %s", ErrWrongChain, s.wrongChains())
			}
			return fmt.Errorf("%s: every endpoint missed: %w", op, lastErr)
		}
		if wait > 0 {
			if time.Since(start)+wait > s.cfg.RetryBudget {
				return s.giveUp(op, attempts, start, lastErr)
			}
			if !ctxsleep.Sleep(ctx, wait) {
				return fmt.Errorf("%s: %w", op, ctx.Err())
			}
		}
		attempts++
		err := s.attempt(ctx, ep, op, need, timeout, fn)
		if err == nil {
			return nil
		}
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("%s: %w", op, cerr)
		}
		if errors.Is(err, ErrWrongChain) {
			// Out of service until a check finds the right chain: ask the others.
			if missed == nil {
				missed = make(map[*endpoint]bool, len(s.eps))
			}
			missed[ep] = true
			lastErr = fmt.Errorf("%s via %s: %w", op, ep.name, err)
			continue
		}
		kind, cls, retryAfter := classify(err)
		if errors.Is(err, ErrStateUnavailable) {
			cls = lagging
		}
		switch cls {
		case permanent:
			ep.answered()
			return fmt.Errorf("%s via %s: %w", op, ep.name, err)
		case lagging:
			ep.answered()
			if missed == nil {
				missed = make(map[*endpoint]bool, len(s.eps))
			}
			missed[ep] = true
			if !errors.Is(err, ethereum.NotFound) && !errors.Is(err, ErrBeyondHead) && !errors.Is(err, ErrStateUnavailable) {
				err = &missingError{what: "answer", cause: err} // e.g. "unknown block"
			}
			lastErr = fmt.Errorf("%s via %s: %w", op, ep.name, err)
			continue
		}
		lastErr = fmt.Errorf("%s via %s: %w", op, ep.name, err)
		if retryAfter > s.cfg.MaxRetryAfter {
			retryAfter = s.cfg.MaxRetryAfter
		}
		n := ep.failed(err.Error(), retryAfter, s.cfg.BackoffBase, s.cfg.BackoffMax)
		if n == 3 {
			s.log.Warn("rpc endpoint failing", "endpoint", ep.name, "kind", kind, "err", err)
		}
		if attempts >= s.cfg.MaxAttempts || time.Since(start) >= s.cfg.RetryBudget {
			return s.giveUp(op, attempts, start, lastErr)
		}
		s.log.Debug("rpc retry", "method", op, "endpoint", ep.name, "attempt", attempts, "kind", kind, "err", err)
	}
}

// attempt is one try of fn on ep with its own deadline, measured.
func (s *Source) attempt(ctx context.Context, ep *endpoint, op string, need uint64, timeout time.Duration, fn attemptFunc) error {
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	err := s.ensureIdentity(actx, ep)
	if err == nil && need > 0 && ep.headNumber() < need {
		// Our view of its head may be stale: ask before concluding it lags.
		if err = s.fetchHead(actx, ep); err == nil && ep.headNumber() < need {
			err = &lagError{endpoint: ep.name, need: need, head: ep.headNumber()}
		}
	}
	if err == nil {
		dials := ep.dials.Load()
		err = fn(actx, ep)
		if err == nil && s.cfg.ChainID != 0 && ep.dials.Load() != dials {
			// The answer came over a connection opened during the request (the node may have
			// restarted as another one): it is used only once the endpoint is checked again.
			err = s.ensureIdentity(actx, ep)
		}
	}
	took := time.Since(start)
	s.m.requests.WithLabelValues(ep.name, op).Inc()
	s.m.duration.WithLabelValues(ep.name, op).Observe(took.Seconds())
	if err != nil {
		kind, _, _ := classify(err)
		s.m.errors.WithLabelValues(ep.name, op, kind).Inc()
		return err
	}
	if prev := ep.succeeded(took); prev >= 3 {
		s.log.Info("rpc endpoint recovered", "endpoint", ep.name, "after_failures", prev)
	}
	s.answeredNow()
	return nil
}

// pick chooses the endpoint to try next: the first in configuration order that is neither
// cooling down after a failure nor lagging, else a lagging one, else (all cooling down) the one
// that is ready soonest with how long to wait for it.
func (s *Source) pick(missed map[*endpoint]bool) (*endpoint, time.Duration) {
	now := time.Now()
	best := s.best.Load()
	var lagger, soonest *endpoint
	var soonestAt time.Time
	for _, ep := range s.eps {
		if missed[ep] {
			continue
		}
		ep.mu.Lock()
		cool, head, wrong := ep.cooldownUntil, ep.head, ep.identity == identityWrong
		ep.mu.Unlock()
		if wrong {
			continue // out of service; the health loop checks it again
		}
		if cool.After(now) {
			if soonest == nil || cool.Before(soonestAt) {
				soonest, soonestAt = ep, cool
			}
			continue
		}
		if head+s.cfg.LagTolerance < best {
			if lagger == nil {
				lagger = ep
			}
			continue
		}
		return ep, 0
	}
	if lagger != nil {
		return lagger, 0
	}
	if soonest != nil {
		return soonest, soonestAt.Sub(now)
	}
	return nil, 0
}

// wrongChains says why the endpoints are out of service.
func (s *Source) wrongChains() string {
	var msgs []string
	for _, ep := range s.eps {
		if st := ep.status(0, 0); st.WrongChain != "" {
			msgs = append(msgs, st.WrongChain)
		}
	}
	return strings.Join(msgs, "; ")
}

func (s *Source) giveUp(op string, attempts int, start time.Time, lastErr error) error {
	took := time.Since(start).Round(time.Millisecond)
	s.m.giveUps.WithLabelValues(op).Inc()
	s.log.Warn("rpc call abandoned after retries", "method", op, "attempts", attempts, "elapsed", took, "err", lastErr)
	return fmt.Errorf("%w: %s: %d attempts in %s: %w", ErrRetriesExhausted, op, attempts, took, lastErr)
}
