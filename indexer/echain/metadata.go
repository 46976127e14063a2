package echain

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
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

// MetadataCache keeps fetched documents across restarts (PGMetadataCache is one over the store's
// indexer.metadata_cache table). Only documents that were fetched and parsed are put.
type MetadataCache interface {
	GetMetadata(ctx context.Context, uri string) (doc []byte, ok bool, err error)
	PutMetadata(ctx context.Context, uri string, doc []byte) error
}

// Limits of the metadata fetcher. A document larger than maxDocumentBytes is not an event
// description but something else (an inline image, a hostile server), so it counts as unavailable.
const (
	maxDocumentBytes   = 256 << 10
	failureTTL         = time.Minute      // how long a failed URI is not asked again
	breakerThreshold   = 5                // consecutive failures of one host that open its breaker
	breakerCooldown    = 30 * time.Second // how long an open breaker skips that host
	metadataParallel   = 16               // documents fetched at once
	defaultMetaTimeout = 5 * time.Second
)

// metadataFetcher fetches metadata documents with bounded time, caches them by URI and stops
// asking hosts that keep failing, so that a dead gateway slows indexing by at most a few timeouts.
type metadataFetcher struct {
	gateway    string // "https://host[/prefix]/ipfs/", or "" when fetching is off
	client     *http.Client
	timeout    time.Duration
	persistent MetadataCache
	log        *slog.Logger
	m          *metrics
	now        func() time.Time

	group singleflight.Group
	sem   chan struct{}

	mu       sync.Mutex
	mem      *lru
	failed   map[string]time.Time // uri -> retry after
	breakers map[string]*breaker  // host -> state
}

type breaker struct {
	failures  int
	openUntil time.Time
}

func newMetadataFetcher(gateway string, timeout time.Duration, size int, persistent MetadataCache, log *slog.Logger, m *metrics) (*metadataFetcher, error) {
	f := &metadataFetcher{
		client:     &http.Client{},
		timeout:    timeout,
		persistent: persistent,
		log:        log,
		m:          m,
		now:        time.Now,
		sem:        make(chan struct{}, metadataParallel),
		mem:        newLRU(size),
		failed:     map[string]time.Time{},
		breakers:   map[string]*breaker{},
	}
	if gateway == "" {
		return f, nil
	}
	u, err := url.Parse(gateway)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("metadata gateway %q: want an http(s) URL such as https://ipfs.io", gateway)
	}
	g := strings.TrimRight(gateway, "/")
	if !strings.HasSuffix(g, "/ipfs") {
		g += "/ipfs"
	}
	f.gateway = g + "/"
	return f, nil
}

// enabled reports whether documents are fetched at all.
func (f *metadataFetcher) enabled() bool { return f.gateway != "" }

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

// FetchAll fetches the documents of the URIs concurrently. The result has an entry for every URI
// whose document could be had; the others are absent. It never fails: an unavailable document is
// a default, not an error. It returns early with what it has when ctx ends.
func (f *metadataFetcher) FetchAll(ctx context.Context, uris []string) map[string]*Metadata {
	out := map[string]*Metadata{}
	if !f.enabled() || len(uris) == 0 {
		return out
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	seen := map[string]bool{}
	for _, uri := range uris {
		if seen[uri] || uri == "" {
			continue
		}
		seen[uri] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			if md := f.Fetch(ctx, uri); md != nil {
				mu.Lock()
				out[uri] = md
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out
}

// Fetch returns the parsed document of uri, or nil when it cannot be had.
func (f *metadataFetcher) Fetch(ctx context.Context, uri string) *Metadata {
	if !f.enabled() {
		return nil
	}
	f.mu.Lock()
	if md, ok := f.mem.get(uri); ok {
		f.mu.Unlock()
		f.m.metadata.WithLabelValues("cache").Inc()
		return md
	}
	if until, ok := f.failed[uri]; ok && f.now().Before(until) {
		f.mu.Unlock()
		f.m.metadata.WithLabelValues("skipped").Inc()
		return nil
	}
	f.mu.Unlock()
	// One fetch per URI at a time, shared by concurrent Prepares. It runs detached from the
	// caller that started it (its own timeouts bound it), so one caller giving up does not make
	// the document unavailable for the others.
	ch := f.group.DoChan(uri, func() (any, error) { return f.load(context.WithoutCancel(ctx), uri), nil })
	select {
	case r := <-ch:
		md, _ := r.Val.(*Metadata)
		return md
	case <-ctx.Done():
		return nil
	}
}

// load is Fetch without the memory cache: the persistent cache, then the network. ctx carries
// no cancellation (see Fetch).
func (f *metadataFetcher) load(ctx context.Context, uri string) *Metadata {
	if f.persistent != nil {
		doc, ok, err := f.persistent.GetMetadata(ctx, uri)
		if err != nil {
			f.log.Warn("metadata cache read failed", "uri", uri, "err", err)
		} else if ok {
			if md, err := ParseMetadata(doc); err == nil {
				f.remember(uri, md)
				f.m.metadata.WithLabelValues("cache").Inc()
				return md
			}
		}
	}
	target, ok := f.resolve(uri)
	if !ok {
		f.m.metadata.WithLabelValues("unsupported").Inc()
		f.forget(uri)
		return nil
	}
	host := ""
	if u, err := url.Parse(target); err == nil {
		host = u.Host
	}
	if f.breakerOpen(host) {
		f.m.metadata.WithLabelValues("skipped").Inc()
		return nil
	}
	f.sem <- struct{}{} // waits at most a few timeouts: every fetch ahead is bounded
	start := f.now()
	doc, result, err := f.get(ctx, target)
	<-f.sem
	f.m.metadataSeconds.Observe(f.now().Sub(start).Seconds())
	if err != nil {
		f.m.metadata.WithLabelValues(result).Inc()
		f.log.Debug("metadata document unavailable", "uri", uri, "url", target, "err", err)
		f.forget(uri)
		f.hostResult(host, result == "not_found" || result == "invalid")
		return nil
	}
	f.hostResult(host, true)
	md, err := ParseMetadata(doc)
	if err != nil {
		f.m.metadata.WithLabelValues("invalid").Inc()
		f.log.Debug("metadata document invalid", "uri", uri, "err", err)
		f.forget(uri)
		return nil
	}
	f.m.metadata.WithLabelValues("ok").Inc()
	f.remember(uri, md)
	if f.persistent != nil {
		if err := f.persistent.PutMetadata(ctx, uri, doc); err != nil {
			f.log.Warn("metadata cache write failed", "uri", uri, "err", err)
		}
	}
	return md
}

// get fetches one URL within the timeout. result names the outcome for the metric.
func (f *metadataFetcher) get(ctx context.Context, target string) (doc []byte, result string, err error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, "invalid", fmt.Errorf("metadata request %s: %w", target, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, "timeout", fmt.Errorf("fetch %s: %w", target, err)
		}
		return nil, "error", fmt.Errorf("fetch %s: %w", target, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return nil, "not_found", fmt.Errorf("fetch %s: %s", target, resp.Status)
	case resp.StatusCode != http.StatusOK:
		return nil, "error", fmt.Errorf("fetch %s: %s", target, resp.Status)
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

func (f *metadataFetcher) remember(uri string, md *Metadata) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mem.put(uri, md)
	delete(f.failed, uri)
}

func (f *metadataFetcher) forget(uri string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	// Bounded like the memory cache: a flood of distinct dead URIs must not grow memory.
	if len(f.failed) >= f.mem.cap {
		now := f.now()
		for k, until := range f.failed {
			if !now.Before(until) {
				delete(f.failed, k)
			}
		}
		if len(f.failed) >= f.mem.cap {
			clear(f.failed)
		}
	}
	f.failed[uri] = f.now().Add(failureTTL)
}

// hostResult feeds the breaker: an answer from the host (even a 404) closes it; a timeout or an
// error counts towards opening it.
func (f *metadataFetcher) hostResult(host string, answered bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.breakers[host]
	if b == nil {
		if answered {
			return
		}
		if len(f.breakers) > 1024 {
			clear(f.breakers)
		}
		b = &breaker{}
		f.breakers[host] = b
	}
	if answered {
		delete(f.breakers, host)
		return
	}
	b.failures++
	if b.failures >= breakerThreshold {
		b.openUntil = f.now().Add(breakerCooldown)
		b.failures = 0
		f.log.Warn("metadata host keeps failing; skipping it for a while", "host", host, "for", breakerCooldown)
	}
}

func (f *metadataFetcher) breakerOpen(host string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.breakers[host]
	return b != nil && f.now().Before(b.openUntil)
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
