// Package webhook receives Coinbase Developer Platform webhooks and turns each verified delivery
// into a Hint for the chain follower. A hint only makes the follower look at the chain sooner; it
// never carries data into the store, so everything here may be lossy (queue full, duplicates
// dropped) without costing correctness.
//
// Setting up the Coinbase side: create a CDP v2 webhook subscription for
// onchain.activity.detected with the label network=base-sepolia (or base-mainnet), narrowed by a
// contract_address label (labels combine with AND, so one address per subscription) or by
// event_signature labels, with Config.Indexed dropping other contracts' logs; target
// https://<host>/webhooks/coinbase. The response's root "secret" field is shown once; put it in
// ECHAIN_WEBHOOK_SECRETS (comma-separated; list old and new while rotating).
//
// Status codes: 200 for every verified delivery (useful, duplicate, ignored or dropped: anything
// else makes Coinbase retry up to 60 times), 401 bad/missing/stale signature, 413 body over
// MaxBody, 400 unreadable or malformed JSON, 405 not POST, 429 over the per-source rate.
package webhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/echain/echain-indexer/api/ratelimit"
)

// Hint says "this transaction emitted a log of a contract we index, in this block".
type Hint struct {
	Network  string
	Block    uint64 // 0 when the delivery did not name it
	TxHash   common.Hash
	LogIndex uint64 // as delivered: CDP v2 documents it as the index within the transaction
	Contract common.Address
	// ReceivedAt is when the request arrived, for the follower's lead-time measurement.
	ReceivedAt time.Time
}

// Sink takes verified, deduplicated hints. It is called from the handler's workers, never from the
// HTTP request, so a slow sink delays hints but never a response.
type Sink interface {
	Hint(ctx context.Context, h Hint) error
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(ctx context.Context, h Hint) error

// Hint calls f.
func (f SinkFunc) Hint(ctx context.Context, h Hint) error { return f(ctx, h) }

// Config sets up a Handler. Secrets come from the environment only (see ParseSecrets).
type Config struct {
	// Secrets are CDP v2 subscription secrets for X-Hook0-Signature; several for rotation.
	Secrets []string
	// LegacySecrets are for X-Coinbase-Signature / X-CC-Webhook-Signature (hex HMAC-SHA256 of the
	// body). Empty rejects those schemes.
	LegacySecrets []string
	// Networks are the CDP network labels we index (e.g. "base-sepolia"). Deliveries for other
	// networks are answered 200 and ignored. Empty accepts every network.
	Networks []string
	// Indexed reports whether we index a contract. It is consulted per delivery because the set
	// grows as events create ticket clones. Nil accepts every contract.
	Indexed func(common.Address) bool

	Tolerance   time.Duration // signature timestamp window either way; default 5 min
	MaxBody     int64         // bytes; default 1 MiB
	QueueSize   int           // hints waiting for the sink; default 1024
	Workers     int           // concurrent sink calls; default 1
	SinkTimeout time.Duration // per sink call; default 10 s
	DedupTTL    time.Duration // how long an event id or log is remembered; default 1 h
	DedupMax    int           // bound on remembered keys; default 100000
	RateLimit   float64       // requests/s per source; default 100; negative disables
	RateBurst   int           // default 2 × RateLimit
	RateSources int           // bound on tracked sources; default 10000
	// ClientIP names the source a request is rate limited as; default the RemoteAddr host. Set it
	// when a trusted reverse proxy sits in front.
	ClientIP func(*http.Request) string
	Now      func() time.Time // for tests; default time.Now
}

// Handler serves POST /webhooks/coinbase.
type Handler struct {
	cfg      Config
	verifier verifier
	networks map[string]bool
	seen     *seenSet
	limiter  *ratelimit.Limiter[string]
	queue    chan Hint
	sink     Sink
	log      *slog.Logger
	m        *metrics
	running  sync.Once
}

// New checks the configuration and builds a Handler. Call Run for the hints to reach the sink.
func New(cfg Config, sink Sink, log *slog.Logger, reg prometheus.Registerer) (*Handler, error) {
	if sink == nil {
		return nil, errors.New("webhook: nil sink")
	}
	if log == nil {
		return nil, errors.New("webhook: nil logger")
	}
	if len(cfg.Secrets) == 0 && len(cfg.LegacySecrets) == 0 {
		return nil, errors.New("webhook: no secrets configured (set ECHAIN_WEBHOOK_SECRETS)")
	}
	if cfg.Tolerance == 0 {
		cfg.Tolerance = 5 * time.Minute
	}
	if cfg.MaxBody == 0 {
		cfg.MaxBody = 1 << 20
	}
	if cfg.QueueSize == 0 {
		cfg.QueueSize = 1024
	}
	if cfg.Workers == 0 {
		cfg.Workers = 1
	}
	if cfg.SinkTimeout == 0 {
		cfg.SinkTimeout = 10 * time.Second
	}
	if cfg.DedupTTL == 0 {
		cfg.DedupTTL = time.Hour
	}
	if cfg.DedupMax == 0 {
		cfg.DedupMax = 100000
	}
	if cfg.RateLimit == 0 {
		cfg.RateLimit = 100
	}
	if cfg.RateBurst == 0 {
		cfg.RateBurst = max(1, int(2*cfg.RateLimit))
	}
	if cfg.RateSources == 0 {
		cfg.RateSources = 10000
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP = remoteHost
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	switch {
	case cfg.Tolerance < 0:
		return nil, fmt.Errorf("webhook: tolerance %v is negative", cfg.Tolerance)
	case cfg.MaxBody < 0, cfg.QueueSize < 0, cfg.Workers < 0, cfg.DedupMax < 0, cfg.RateBurst < 0, cfg.RateSources < 0:
		return nil, errors.New("webhook: negative size in config")
	case cfg.DedupTTL < 0 || cfg.SinkTimeout < 0:
		return nil, errors.New("webhook: negative duration in config")
	}
	queue := make(chan Hint, cfg.QueueSize)
	m, err := newMetrics(reg, func() float64 { return float64(len(queue)) })
	if err != nil {
		return nil, err
	}
	h := &Handler{
		cfg:      cfg,
		verifier: verifier{tolerance: cfg.Tolerance},
		seen:     newSeenSet(cfg.DedupTTL, cfg.DedupMax),
		queue:    queue,
		sink:     sink,
		log:      log,
		m:        m,
	}
	for _, s := range cfg.Secrets {
		h.verifier.secrets = append(h.verifier.secrets, []byte(s))
	}
	for _, s := range cfg.LegacySecrets {
		h.verifier.legacy = append(h.verifier.legacy, []byte(s))
	}
	if len(cfg.Networks) > 0 {
		h.networks = make(map[string]bool, len(cfg.Networks))
		for _, n := range cfg.Networks {
			h.networks[strings.ToLower(strings.TrimSpace(n))] = true
		}
	}
	if cfg.RateLimit > 0 {
		h.limiter = ratelimit.New[string](cfg.RateLimit, cfg.RateBurst, cfg.RateSources)
	}
	return h, nil
}

func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Run feeds queued hints to the sink until ctx ends. It returns nil on shutdown; hints still queued
// then are dropped (the follower finds those blocks by itself).
func (h *Handler) Run(ctx context.Context) error {
	started := false
	h.running.Do(func() { started = true })
	if !started {
		return errors.New("webhook: Run called twice")
	}
	var wg sync.WaitGroup
	for range h.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.work(ctx)
		}()
	}
	wg.Wait()
	return nil
}

func (h *Handler) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case hint := <-h.queue:
			cctx, cancel := context.WithTimeout(ctx, h.cfg.SinkTimeout)
			err := h.sink.Hint(cctx, hint)
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				h.m.sinkErrors.Inc()
				h.log.Warn("webhook hint not taken", "block", hint.Block, "tx", hint.TxHash, "err", err)
				continue
			}
			h.m.forwarded.Inc()
		}
	}
}

// ServeHTTP answers fast and never waits on the sink: Coinbase retries anything that is not 2xx
// within its timeout, so every verified delivery gets 200, useful or not.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := h.cfg.Now()
	h.m.received.Inc()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.reject(w, http.StatusMethodNotAllowed, "method", nil)
		return
	}
	if h.limiter != nil && !h.limiter.Allow(h.cfg.ClientIP(r), now) {
		w.Header().Set("Retry-After", "1")
		h.reject(w, http.StatusTooManyRequests, "rate_limited", nil)
		return
	}
	if r.ContentLength > h.cfg.MaxBody {
		h.reject(w, http.StatusRequestEntityTooLarge, "too_large", nil)
		return
	}
	body, err := readBody(w, r, h.cfg.MaxBody)
	if err != nil {
		var tooBig *http.MaxBytesError
		var se interface{ HTTPStatus() int } // the server's refusals: too slow, too many bytes in flight
		switch {
		case errors.As(err, &tooBig):
			h.reject(w, http.StatusRequestEntityTooLarge, "too_large", nil)
		case errors.As(err, &se):
			w.Header().Set("Connection", "close")
			h.reject(w, se.HTTPStatus(), "read_error", err)
		default:
			h.reject(w, http.StatusBadRequest, "read_error", err)
		}
		return
	}
	if err := h.verifier.verify(r.Header, body, now); err != nil {
		h.reject(w, http.StatusUnauthorized, rejectReason(err), err)
		return
	}
	h.m.verified.Inc()
	ev, err := parsePayload(body, r.Header.Get(HeaderEventType))
	if err != nil {
		h.reject(w, http.StatusBadRequest, "malformed", err)
		return
	}
	if reason := h.ignore(&ev); reason != "" {
		h.m.ignored.WithLabelValues(reason).Inc()
		respond(w, http.StatusOK, "ignored")
		return
	}
	id := first(r.Header.Get(HeaderEventID), ev.ID)
	natural := naturalKey(&ev)
	if h.seen.add(now, eventKey(id), natural) {
		h.m.duplicates.Inc()
		respond(w, http.StatusOK, "duplicate")
		return
	}
	hint := Hint{Network: ev.Network, Block: ev.Block, TxHash: ev.TxHash, LogIndex: ev.LogIndex, Contract: ev.Contract, ReceivedAt: now}
	select {
	case h.queue <- hint:
	default:
		// A full queue means the follower is busy; the hint's block reaches it through newHeads.
		h.m.dropped.Inc()
	}
	respond(w, http.StatusOK, "accepted")
}

// ignore returns why a verified delivery yields no hint, or "".
func (h *Handler) ignore(ev *event) string {
	switch {
	case ev.Type != "" && !activityTypes[ev.Type]:
		return "event_type"
	case h.networks != nil && !h.networks[ev.Network]:
		return "network"
	case !ev.HasTx:
		return "no_transaction"
	case !ev.HasAddr:
		return "no_contract"
	case h.cfg.Indexed != nil && !h.cfg.Indexed(ev.Contract):
		return "contract"
	}
	return ""
}

func eventKey(id string) string {
	if id == "" {
		return ""
	}
	return "e:" + id
}

func naturalKey(ev *event) string {
	var b strings.Builder
	b.Grow(len(ev.Network) + 2 + 2*common.HashLength + 22)
	b.WriteString("l:")
	b.WriteString(ev.Network)
	b.WriteByte('/')
	b.Write(ev.TxHash[:])
	b.WriteByte('/')
	if ev.HasLog {
		b.WriteString(strconv.FormatUint(ev.LogIndex, 10))
	} else {
		b.WriteByte('-')
	}
	return b.String()
}

func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	rd := http.MaxBytesReader(w, r.Body, limit)
	defer rd.Close()
	return io.ReadAll(rd)
}

func (h *Handler) reject(w http.ResponseWriter, status int, reason string, err error) {
	h.m.rejected.WithLabelValues(reason).Inc()
	if err != nil {
		// Debug: anyone on the internet can produce these, so they must not flood the log.
		h.log.Debug("webhook rejected", "status", status, "reason", reason, "err", err)
	}
	respond(w, status, reason)
}

func respond(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(msg + "\n"))
}
