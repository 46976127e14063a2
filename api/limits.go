package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Limits bound what one client, and all clients together, can make the server hold: how long a
// connection may take to send its request, how many request bytes the process holds at once,
// and how many connections and requests one client address gets. Zero values take the defaults
// in brackets; per-client limits are off when zero.
type Limits struct {
	// ReadHeaderTimeout is the deadline of a request's headers, WebSocket upgrades included [5s].
	ReadHeaderTimeout time.Duration
	// ReadBodyTimeout is the deadline of a request body once its headers are in, and of one
	// WebSocket message once it has started [10s].
	ReadBodyTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that sends no new request [60s].
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's headers [64 KiB].
	MaxHeaderBytes int
	// MaxInFlightBytes bounds the request bytes (bodies and WebSocket messages) held by the whole
	// process at once; a read that would pass it fails with 503 [64 MiB]. Ignored when
	// Options.InFlight is set.
	MaxInFlightBytes int64

	// MaxConnsPerClient bounds one client address's open connections (WebSockets included); more
	// are answered 429 and closed. 0: no limit.
	MaxConnsPerClient int
	// ClientRate is the requests per second (GraphQL queries and WebSocket upgrades) one client
	// address may send on average, ClientBurst at once; more get 429. 0: no limit.
	ClientRate  float64
	ClientBurst int
	// Exempt addresses (e.g. loopback on a developer's machine) have no per-client limits.
	Exempt []netip.Prefix
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names the client. A proxy's
	// own connections are not limited per address (they carry many clients).
	TrustedProxies []netip.Prefix
}

func (l *Limits) defaults() {
	dur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	dur(&l.ReadHeaderTimeout, 5*time.Second)
	dur(&l.ReadBodyTimeout, 10*time.Second)
	dur(&l.IdleTimeout, 60*time.Second)
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = 64 << 10
	}
	if l.MaxInFlightBytes <= 0 {
		l.MaxInFlightBytes = 64 << 20
	}
	if l.ClientRate > 0 && l.ClientBurst <= 0 {
		l.ClientBurst = max(1, int(2*l.ClientRate))
	}
}

func inPrefixes(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// peerAddr is the address at the other end of a connection.
func peerAddr(remote string) netip.Addr {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		host, _, _ := net.SplitHostPort(remote)
		a, _ := netip.ParseAddr(host)
		return a.Unmap()
	}
	return ap.Addr().Unmap()
}

// ClientIP is the client address of a request: the connection's peer, or, when the peer is one
// of trusted (reverse proxies), the right-most address of X-Forwarded-For that is not a trusted
// proxy. Every per-client limit (the webhook receiver's rate too) keys on it.
func ClientIP(trusted []netip.Prefix) func(r *http.Request) string {
	return func(r *http.Request) string { return clientAddr(r, trusted).String() }
}

func clientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := peerAddr(r.RemoteAddr)
	if !inPrefixes(trusted, peer) {
		return peer
	}
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return peer // a forged or garbled hop: trust only what we saw
			}
			a = a.Unmap()
			if !inPrefixes(trusted, a) {
				return a
			}
		}
	}
	return peer
}

// clientKey groups addresses that one client controls: an IPv6 host usually holds a whole /64.
func clientKey(a netip.Addr) netip.Addr {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// InFlight is the process-wide count of request bytes being held (HTTP bodies, WebSocket
// messages), against its cap. One is shared by the HTTP server and the subscription server.
type InFlight struct {
	max int64
	n   atomic.Int64
}

// NewInFlight caps the request bytes held at once at max.
func NewInFlight(max int64) *InFlight { return &InFlight{max: max} }

// Acquire reserves n bytes; false when that would pass the cap (nothing is reserved then).
func (f *InFlight) Acquire(n int64) bool {
	if f.n.Add(n) > f.max {
		f.n.Add(-n)
		return false
	}
	return true
}

// Release returns n acquired bytes.
func (f *InFlight) Release(n int64) { f.n.Add(-n) }

// Held is the number of bytes acquired and not released.
func (f *InFlight) Held() int64 { return f.n.Load() }

// BodyError is a request body that was refused while it was read: over the process's
// in-flight byte cap, or too slow. Handlers answer with its status (HTTPStatus).
type BodyError struct {
	Status int
	Reason string // metric label: inflight_bytes, body_timeout
	Msg    string
}

func (e *BodyError) Error() string   { return e.Msg }
func (e *BodyError) HTTPStatus() int { return e.Status }

// meteredBody charges the bytes of a request body to the process's in-flight budget as they
// arrive and holds a read deadline until the body ends.
type meteredBody struct {
	body    interface{ Read([]byte) (int, error) }
	closer  func() error
	budget  *InFlight
	rc      *http.ResponseController
	timeout time.Duration
	refused func(reason string)

	// Only the handler's goroutine reads, and finish runs after it returned: no lock.
	taken int64
	done  bool
	err   error
}

func (b *meteredBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.body.Read(p)
	if n > 0 {
		if !b.budget.Acquire(int64(n)) {
			b.refused("inflight_bytes")
			b.err = &BodyError{Status: http.StatusServiceUnavailable, Reason: "inflight_bytes",
				Msg: fmt.Sprintf("the server holds too many request bytes (limit api.max_inflight_bytes = %d): retry later", b.budget.max)}
			return 0, b.err
		}
		b.taken += int64(n)
	}
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			b.refused("body_timeout")
			b.err = &BodyError{Status: http.StatusRequestTimeout, Reason: "body_timeout",
				Msg: "the request body did not arrive within " + b.timeout.String() + " (limit api.read_body_timeout)"}
			return n, b.err
		}
		b.end()
	}
	return n, err
}

// end lifts the body deadline: net/http's background read (which notices a client going away)
// must not time out while the handler works.
func (b *meteredBody) end() {
	if !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
}

func (b *meteredBody) Close() error { return b.closer() }

// finish returns the body's bytes to the budget once the handler is done with them.
func (b *meteredBody) finish() {
	b.budget.Release(b.taken)
	b.taken = 0
	if b.err == nil {
		b.err = errors.New("api: request body read after the handler returned")
	}
}

// connTracker counts open connections per client address for MaxConnsPerClient. The listener
// wraps every accepted connection so that a hijacked one (a WebSocket) is counted until it
// closes too.
type connTracker struct {
	max     int
	exempt  func(netip.Addr) bool
	mu      sync.Mutex
	perAddr map[netip.Addr]int
	open    atomic.Int64
}

type trackedConn struct {
	net.Conn
	t      *connTracker
	key    netip.Addr
	over   bool // opened past the client's limit: its request gets 429
	counts bool
	once   sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.t.open.Add(-1)
		if c.counts {
			c.t.mu.Lock()
			if c.t.perAddr[c.key]--; c.t.perAddr[c.key] <= 0 {
				delete(c.t.perAddr, c.key)
			}
			c.t.mu.Unlock()
		}
	})
	return c.Conn.Close()
}

// CloseWrite lets net/http half-close before closing, so that a client's unread request bytes do
// not turn the answer into a reset.
func (c *trackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// SetWriteBuffer reaches the TCP socket under the wrapper (the subscription server sizes it).
func (c *trackedConn) SetWriteBuffer(n int) error {
	if tc, ok := c.Conn.(interface{ SetWriteBuffer(int) error }); ok {
		return tc.SetWriteBuffer(n)
	}
	return nil
}

type trackingListener struct {
	net.Listener
	t *connTracker
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, t: l.t}
	l.t.open.Add(1)
	if a := peerAddr(c.RemoteAddr().String()); l.t.max > 0 && a.IsValid() && !l.t.exempt(a) {
		tc.key, tc.counts = clientKey(a), true
		l.t.mu.Lock()
		l.t.perAddr[tc.key]++
		tc.over = l.t.perAddr[tc.key] > l.t.max
		l.t.mu.Unlock()
	}
	return tc, nil
}

type connKey struct{}

// connOf is the tracked connection a request came on (nil for requests not served by Serve).
func connOf(ctx context.Context) *trackedConn {
	c, _ := ctx.Value(connKey{}).(*trackedConn)
	return c
}

// refuseJSON answers a refused request with a GraphQL-shaped error, which both GraphQL clients
// and plain HTTP clients can read.
func refuseJSON(w http.ResponseWriter, status int, code, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "1")
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []any{map[string]any{"message": msg, "extensions": map[string]string{"code": code}}}})
}
