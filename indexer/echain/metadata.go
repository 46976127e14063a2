package echain

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/echain/echain-indexer/internal/ctxsleep"
)

// Metadata is what an Event takes from its metadata document.
type Metadata struct {
	Description string
	Category    string
	Location    *string // nil when the document has no string "location"
	ImageURL    *string // "imageUrl", else "image"; nil when neither is a non-empty string
}

// ParseMetadata reads the fields an Event takes from a metadata document. Only string values
// count: a field of another JSON type is treated as missing. The document must be a JSON object.
func ParseMetadata(doc []byte) (*Metadata, error) {
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		return nil, fmt.Errorf("metadata document is not a JSON object: %w", err)
	}
	if m == nil {
		return nil, errors.New("metadata document is not a JSON object: null")
	}
	str := func(k string) (string, bool) {
		s, ok := m[k].(string)
		return s, ok
	}
	md := &Metadata{}
	md.Description, _ = str("description")
	md.Category, _ = str("category")
	if s, ok := str("location"); ok {
		md.Location = &s
	}
	if s, ok := str("imageUrl"); ok && s != "" {
		md.ImageURL = &s
	} else if s, ok := str("image"); ok && s != "" {
		md.ImageURL = &s
	}
	return md, nil
}

// MetadataStore is what the mappings keep in the store besides entities (*store.Store is one):
// fetched documents by URI, so that a restart or a resync does not fetch them again, and a read
// of the current Events, to find after a start or a revert the ones whose document is still to
// be written.
type MetadataStore interface {
	MetadataGet(ctx context.Context, uri string) (body json.RawMessage, fetchedAt time.Time, found bool, err error)
	MetadataPut(ctx context.Context, uri string, body json.RawMessage) error
	CurrentRows(ctx context.Context, typ string, fn func(row []any) error) error
}

// Limits of the metadata fetcher. A document larger than maxDocumentBytes is not an event
// description but something else (an inline image, a hostile server), so it is never had.
const (
	maxDocumentBytes   = 256 << 10
	metadataParallel   = 16 // documents fetched at once
	defaultMetaTimeout = 5 * time.Second
	// A document that failed for a reason that may pass is asked again after retryMin, doubling
	// up to retryMax, for as long as the process runs (and after a restart: see metadata_fill.go).
	retryMin = 5 * time.Second
	retryMax = 10 * time.Minute
	// A host that could not be reached (a connection error or timeout) or said it is failing
	// (429, 502, 503, 504) is asked by one request at a time, hostBackoffMin after its last failure,
	// doubling up to hostBackoffMax, until it answers again. A document that times out on a
	// host that took the request does not count: on IPFS that is one CID no node serves, and
	// it is retried on its own back-off (retryMin..retryMax) while the others go on.
	hostBackoffMin = time.Second
	hostBackoffMax = time.Minute
	cacheOpTimeout = 2 * time.Second // one metadata-cache query: never slower than the network
)

// docState is where a document stands.
type docState int

const (
	docPending docState = iota // not had yet; a fetch is under way or waiting to retry
	docHave                    // fetched and parsed
	docNever                   // the final rule says it will never be had (see outcome)
)

// metadataFetcher fetches documents in the background, one loop per URI, each retrying with
// back-off until the document is had or is final. Nothing waits for it: lookup answers at once
// from memory and starts the loop when needed.
type metadataFetcher struct {
	gateway string // "https://host[/prefix]/ipfs/", or "" when fetching is off
	client  *http.Client
	timeout time.Duration
	cache   MetadataStore // nil: documents are kept in memory only
	log     *slog.Logger
	m       *metrics
	now     func() time.Time
	// retryMin, hostMin and hostMax are the constants of the same names (tests shorten them).
	retryMin, hostMin, hostMax time.Duration

	ctx    context.Context // ends with Close: every background loop stops
	cancel context.CancelFunc
	wg     sync.WaitGroup
	sem    chan struct{}

	mu      sync.Mutex
	mem     *lru            // uri -> parsed document
	never   map[string]bool // uri -> final failure (bounded like mem)
	chasing map[string]bool // URIs with a loop running
	hosts   map[string]*hostState
	settled map[string]bool // URIs whose first attempt ended (tests wait on it)
}

// hostState is the back-off of one host that failed: while failures > 0 a single probe at a
// time may go, not before notBefore; its success lets every waiting loop through.
type hostState struct {
	failures  int
	notBefore time.Time
	probing   bool
	changed   chan struct{} // closed and replaced on every change
}

func newMetadataFetcher(gateway string, timeout time.Duration, size int, cache MetadataStore, log *slog.Logger, m *metrics) (*metadataFetcher, error) {
	f := &metadataFetcher{
		client:   &http.Client{},
		timeout:  timeout,
		cache:    cache,
		log:      log,
		m:        m,
		now:      time.Now,
		retryMin: retryMin,
		hostMin:  hostBackoffMin,
		hostMax:  hostBackoffMax,
		sem:      make(chan struct{}, metadataParallel),
		mem:      newLRU(size),
		never:    map[string]bool{},
		chasing:  map[string]bool{},
		hosts:    map[string]*hostState{},
		settled:  map[string]bool{},
	}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	if gateway == "" || gateway == "off" {
		return f, nil
	}
	u, err := url.Parse(gateway)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("metadata gateway %q: want an http(s) URL such as https://ipfs.io, or empty (off)", gateway)
	}
	g := strings.TrimRight(gateway, "/")
	if !strings.HasSuffix(g, "/ipfs") {
		g += "/ipfs"
	}
	f.gateway = g + "/"
	return f, nil
}

// enabled reports whether documents are fetched at all. Without a gateway nothing is, https://
// URIs included: SPEC.md fills the fields only "where a metadata gateway is configured".
func (f *metadataFetcher) enabled() bool { return f.gateway != "" }

// close stops the background loops and waits for them.
func (f *metadataFetcher) close() {
	f.cancel()
	f.wg.Wait()
}

// resolve maps a metadata URI to the HTTP URL it is fetched from: ipfs://CID[/path] through the
// gateway, http(s) directly. Other schemes have no document.
func (f *metadataFetcher) resolve(uri string) (string, bool) {
	switch {
	case strings.HasPrefix(uri, "ipfs://"):
		p := strings.TrimPrefix(uri, "ipfs://")
		p = strings.TrimPrefix(p, "ipfs/") // the legacy ipfs://ipfs/CID form
		if p == "" {
			return "", false
		}
		return f.gateway + p, true
	case strings.HasPrefix(uri, "https://"), strings.HasPrefix(uri, "http://"):
		u, err := url.Parse(uri)
		if err != nil || u.Host == "" {
			return "", false
		}
		return uri, true
	}
	return "", false
}

func (f *metadataFetcher) resolvable(uri string) bool {
	_, ok := f.resolve(uri)
	return f.enabled() && ok
}

// lookup answers at once: the document when had, docNever when the final rule says it never
// will be, else docPending after making sure a background loop is fetching it.
func (f *metadataFetcher) lookup(uri string) (*Metadata, docState) {
	if !f.enabled() {
		return nil, docNever
	}
	if !f.resolvable(uri) {
		return nil, docNever
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if md, ok := f.mem.get(uri); ok {
		return md, docHave
	}
	if f.never[uri] {
		return nil, docNever
	}
	if !f.chasing[uri] && f.ctx.Err() == nil {
		f.chasing[uri] = true
		f.wg.Add(1)
		go f.chase(uri)
	}
	return nil, docPending
}

// chase fetches one document until it is had or final, waiting retryMin..retryMax between
// attempts that failed for a reason that may pass.
func (f *metadataFetcher) chase(uri string) {
	defer f.wg.Done()
	defer func() {
		f.mu.Lock()
		delete(f.chasing, uri)
		f.mu.Unlock()
	}()
	if md := f.fromCache(uri); md != nil {
		f.m.metadata.WithLabelValues("cache").Inc()
		f.finish(uri, md, false)
		return
	}
	wait := f.retryMin
	for {
		md, result, final := f.attempt(uri)
		f.m.metadata.WithLabelValues(result).Inc()
		if md != nil || final {
			f.finish(uri, md, final)
			return
		}
		f.markSettled(uri)
		if f.ctx.Err() != nil {
			return
		}
		// Jitter spreads the retries of documents that failed together (a gateway outage).
		d := wait/2 + rand.N(wait/2+1)
		f.log.Debug("metadata document unavailable; will retry", "uri", uri, "result", result, "in", d)
		if !ctxsleep.Sleep(f.ctx, d) {
			return
		}
		wait = min(wait*2, retryMax)
	}
}

// finish records a document had (md) or never to be had (final).
func (f *metadataFetcher) finish(uri string, md *Metadata, final bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.settleLocked(uri)
	if md != nil {
		f.mem.put(uri, md)
		delete(f.never, uri)
		return
	}
	if final {
		// Bounded like the memory cache: forgetting a final failure only costs asking again.
		if len(f.never) >= f.mem.cap {
			clear(f.never)
		}
		f.never[uri] = true
	}
}

func (f *metadataFetcher) markSettled(uri string) {
	f.mu.Lock()
	f.settleLocked(uri)
	f.mu.Unlock()
}

func (f *metadataFetcher) settleLocked(uri string) {
	if len(f.settled) >= 2*f.mem.cap {
		clear(f.settled)
	}
	f.settled[uri] = true
}

// fromCache reads the store's metadata cache.
func (f *metadataFetcher) fromCache(uri string) *Metadata {
	if f.cache == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(f.ctx, cacheOpTimeout)
	defer cancel()
	doc, _, found, err := f.cache.MetadataGet(ctx, uri)
	if err != nil {
		f.log.Warn("metadata cache read failed", "uri", uri, "err", err)
		return nil
	}
	if !found || doc == nil {
		return nil
	}
	md, err := ParseMetadata(doc)
	if err != nil {
		return nil
	}
	return md
}

// attempt is one fetch over the network. The final rule: a document is never had when its URI
// has no HTTP form, or the server answers 404 or 410, or a 200 whose body is not a JSON object or
// is larger than maxDocumentBytes. Any other failure (timeout, connection error, 429, 5xx, other
// statuses) may pass and is retried. result names the outcome for the metric.
func (f *metadataFetcher) attempt(uri string) (md *Metadata, result string, final bool) {
	target, ok := f.resolve(uri)
	if !ok {
		return nil, "unsupported", true
	}
	host := ""
	if u, err := url.Parse(target); err == nil {
		host = u.Host
	}
	probe, ok := f.enterHost(host, uri)
	if !ok {
		return nil, "stopped", false
	}
	select {
	case f.sem <- struct{}{}:
	case <-f.ctx.Done():
		f.exitHost(host, true, probe)
		return nil, "stopped", false
	}
	start := f.now()
	doc, result, err := f.get(target)
	<-f.sem
	f.m.metadataSeconds.Observe(f.now().Sub(start).Seconds())
	// A host that answered for this document (even 404 or 500), or took the request and then was
	// slow with this one document, is up; one that could not be reached or answered 429, 502, 503
	// or 504 is backed off.
	if result == "stopped" {
		f.exitHost(host, true, probe) // says nothing of the host; lets waiting loops see the end
	} else {
		f.exitHost(host, result != "error" && result != "busy", probe)
	}
	if err != nil {
		f.log.Debug("metadata document unavailable", "uri", uri, "url", target, "err", err)
		return nil, result, result == "not_found" || result == "invalid"
	}
	md, err = ParseMetadata(doc)
	if err != nil {
		f.log.Debug("metadata document invalid", "uri", uri, "err", err)
		return nil, "invalid", true
	}
	if f.cache != nil {
		ctx, cancel := context.WithTimeout(f.ctx, cacheOpTimeout)
		if err := f.cache.MetadataPut(ctx, uri, doc); err != nil {
			f.log.Warn("metadata cache write failed", "uri", uri, "err", err)
		}
		cancel()
	}
	return md, "ok", false
}

// get fetches one URL within the timeout. A timeout is "timeout" (this document) once the
// request was written on a connection, and "error" (the host) while still connecting.
func (f *metadataFetcher) get(target string) (doc []byte, result string, err error) {
	ctx, cancel := context.WithTimeout(f.ctx, f.timeout)
	defer cancel()
	var sent atomic.Bool
	tctx := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(i httptrace.WroteRequestInfo) { sent.Store(i.Err == nil) },
	})
	req, err := http.NewRequestWithContext(tctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, "invalid", fmt.Errorf("metadata request %s: %w", target, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		switch {
		case f.ctx.Err() != nil:
			return nil, "stopped", fmt.Errorf("fetch %s: %w", target, err)
		case ctx.Err() != nil && sent.Load():
			return nil, "timeout", fmt.Errorf("fetch %s: %w", target, err)
		}
		return nil, "error", fmt.Errorf("fetch %s: %w", target, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return nil, "not_found", fmt.Errorf("fetch %s: %s", target, resp.Status)
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusBadGateway,
		resp.StatusCode == http.StatusServiceUnavailable, resp.StatusCode == http.StatusGatewayTimeout:
		// The host or what is behind it is failing. A 500 is left to the document: gateways
		// answer it for one CID they cannot serve.
		return nil, "busy", fmt.Errorf("fetch %s: %s", target, resp.Status)
	case resp.StatusCode != http.StatusOK:
		return nil, "status", fmt.Errorf("fetch %s: %s", target, resp.Status)
	}
	doc, err = io.ReadAll(io.LimitReader(resp.Body, maxDocumentBytes+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, "timeout", fmt.Errorf("read %s: %w", target, err)
		}
		return nil, "error", fmt.Errorf("read %s: %w", target, err)
	}
	if len(doc) > maxDocumentBytes {
		return nil, "invalid", fmt.Errorf("fetch %s: document larger than %d bytes", target, maxDocumentBytes)
	}
	return doc, "ok", nil
}

// enterHost waits until the host may be asked: at once when it has not failed, else as its one
// probe once its back-off has passed. ok is false when the fetcher is closed. A URI that has to
// wait counts as settled: its attempt now would meet a host known to fail.
func (f *metadataFetcher) enterHost(host, uri string) (probe, ok bool) {
	for {
		f.mu.Lock()
		h := f.hosts[host]
		if h == nil {
			f.mu.Unlock()
			return false, true
		}
		now := f.now()
		if !h.probing && !now.Before(h.notBefore) {
			h.probing = true
			f.mu.Unlock()
			return true, true
		}
		f.settleLocked(uri)
		changed, d := h.changed, h.notBefore.Sub(now)
		if h.probing || d <= 0 {
			d = f.hostMax
		}
		f.mu.Unlock()
		t := time.NewTimer(d)
		select {
		case <-f.ctx.Done():
			t.Stop()
			return false, false
		case <-changed:
		case <-t.C:
		}
		t.Stop()
	}
}

// exitHost records how the host did: an answer clears its back-off; a failure starts it, and a
// failed probe doubles it. Failures of requests sent before the host was known to fail (they
// overlap) add nothing: they are one outage, not several.
func (f *metadataFetcher) exitHost(host string, answered, probe bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := f.hosts[host]
	if answered {
		if h != nil {
			delete(f.hosts, host)
			close(h.changed)
		}
		return
	}
	switch {
	case h == nil:
		h = &hostState{changed: make(chan struct{}), failures: 1}
		f.hosts[host] = h
		f.log.Warn("metadata host failing; asking it one request at a time with back-off", "host", host)
	case probe:
		h.failures++
		h.probing = false
	default:
		return
	}
	back := f.hostMax
	if h.failures < 16 {
		back = min(f.hostMin<<(h.failures-1), f.hostMax)
	}
	h.notBefore = f.now().Add(back)
	close(h.changed)
	h.changed = make(chan struct{})
}

// lru is a bounded map of parsed documents; callers hold the fetcher's lock.
type lru struct {
	cap   int
	ll    *list.List
	items map[string]*list.Element
}

type lruEntry struct {
	key string
	md  *Metadata
}

func newLRU(n int) *lru {
	if n <= 0 {
		n = 1
	}
	return &lru{cap: n, ll: list.New(), items: map[string]*list.Element{}}
}

func (c *lru) get(k string) (*Metadata, bool) {
	e, ok := c.items[k]
	if !ok {
		return nil, false
	}
	c.ll.MoveToFront(e)
	return e.Value.(*lruEntry).md, true
}

func (c *lru) put(k string, md *Metadata) {
	if e, ok := c.items[k]; ok {
		e.Value.(*lruEntry).md = md
		c.ll.MoveToFront(e)
		return
	}
	c.items[k] = c.ll.PushFront(&lruEntry{key: k, md: md})
	for c.ll.Len() > c.cap {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.items, last.Value.(*lruEntry).key)
	}
}
