package subscriptions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	gqlerrors "github.com/graph-gophers/graphql-go/errors"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/echain/echain-indexer/api/graphql"
)

// Engine executes GraphQL requests at a committed block: the query API's executor
// ((*graphql.Handler).Engine()).
type Engine interface {
	Execute(ctx context.Context, req graphql.Request, eo graphql.ExecOptions) *graphql.Result
	// Prepare runs the engine's front end (parse budget, validation, cost) on a document, with
	// its limits: the one parse and validation of a subscription.
	Prepare(ctx context.Context, req graphql.Request) (*graphql.Prepared, []*gqlerrors.QueryError)
	// APISchema is the schema the front end validates against (its Subscription type has
	// Query's fields).
	APISchema() *ast.Schema
}

// Options configure a Server. Zero values take the defaults in brackets.
type Options struct {
	Logger     *slog.Logger          // [slog.Default()]
	Registerer prometheus.Registerer // metrics echain_indexer_ws_* and echain_indexer_subscriptions_*; [none]

	MaxConnections          int // open WebSockets; more are closed with 1013 [20000]
	MaxSubscriptionsPerConn int // active subscriptions of one connection [100]
	MaxDepth                int // deepest field nesting of a subscription [8]
	MaxFirst                int // largest `first` [1000]
	// MaxCost bounds the entities one execution may return (the product of `first`, or its
	// default of 100, along each path of nested lists, summed) [10000].
	MaxCost         int
	MaxQueryBytes   int           // longest subscription document [65536]
	MaxMessageBytes int64         // largest client message [MaxQueryBytes + 64 KiB]
	InitTimeout     time.Duration // wait for connection_init before closing with 4408 [10s]
	// HandshakeTimeout bounds writing the upgrade's answer [10s]; the request itself is under the
	// HTTP server's header deadline.
	HandshakeTimeout time.Duration
	// MessageTimeout is the deadline of one client message once its first frame arrived: pongs
	// keep an idle connection alive, but not a message trickled a byte at a time [10s].
	MessageTimeout time.Duration
	// AcquireBytes and ReleaseBytes, when set, charge client messages to the process-wide budget
	// of request bytes as they arrive (api.Server.InFlight); a message that does not fit closes
	// the connection with 1013.
	AcquireBytes func(n int64) bool
	ReleaseBytes func(n int64)
	// KeepAlive is how often the server pings each connection (WebSocket ping frames, plus "ka"
	// messages on the legacy protocol); a connection silent for 2.5×KeepAlive (not even a pong)
	// is dropped [12s].
	KeepAlive time.Duration
	// SendQueue is the number of messages a connection may have waiting to be written; one more
	// closes it with 1013, so a slow client never holds up the others [64].
	SendQueue    int
	WriteTimeout time.Duration // longest single write before the client counts as gone [10s]
	// SendBuffer sets each socket's kernel send buffer (SO_SNDBUF) in bytes; 0 leaves it to the
	// OS, whose autotuning may let megabytes pile up for a client that stopped reading before
	// the send queue notices.
	SendBuffer int
	// Workers is how many operations execute at once while a block is processed; keep it below
	// the query API's max_concurrent [4].
	Workers int
	// RetryInterval re-runs operations whose last execution failed transiently (the block was
	// reverted meanwhile, the database was busy) when no new block comes sooner [1s].
	RetryInterval time.Duration
	// ReplicaPoll is how often the change feed reads the replayed cursor when the database is
	// a hot standby (which refuses LISTEN) [10ms]. It bounds what a replica adds to a push's
	// delay beyond replication itself.
	ReplicaPoll time.Duration

	// CheckOrigin vets the Origin of browser upgrades; nil accepts any origin (the query API
	// allows any by default too).
	CheckOrigin func(r *http.Request) bool
	// Authorize vets connection_init's payload (e.g. an API key); an error closes the connection
	// with 4403 Forbidden. nil accepts every client.
	Authorize func(r *http.Request, initPayload json.RawMessage) error
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.MaxConnections, 20000)
	def(&o.MaxSubscriptionsPerConn, 100)
	def(&o.MaxDepth, 8)
	def(&o.MaxFirst, 1000)
	def(&o.MaxCost, 10000)
	def(&o.MaxQueryBytes, 64<<10)
	def(&o.SendQueue, 64)
	def(&o.Workers, 4)
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = int64(o.MaxQueryBytes) + 64<<10
	}
	dur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	dur(&o.InitTimeout, 10*time.Second)
	dur(&o.HandshakeTimeout, 10*time.Second)
	dur(&o.MessageTimeout, 10*time.Second)
	if o.AcquireBytes == nil || o.ReleaseBytes == nil {
		o.AcquireBytes, o.ReleaseBytes = func(int64) bool { return true }, func(int64) {}
	}
	dur(&o.KeepAlive, 12*time.Second)
	dur(&o.WriteTimeout, 10*time.Second)
	dur(&o.RetryInterval, time.Second)
	dur(&o.ReplicaPoll, 10*time.Millisecond)
}

// Server serves GraphQL subscriptions over WebSocket. ServeHTTP takes the upgrades, Run
// follows the store's change notifications and re-executes what they affect, Shutdown says
// goodbye to every client.
type Server struct {
	opts Options
	log  *slog.Logger
	eng  Engine
	pool *pgxpool.Pool
	api  *apiSchema
	met  *metrics
	up   websocket.Upgrader
	lim  limits

	mu      sync.Mutex
	conns   map[*conn]struct{}
	ops     map[string]*op
	nsubs   int
	cur     blockRef // the last change processed: new operations run at this block
	seq     uint64
	ready   bool // cur is known (the change feed connected once)
	closing bool
	running bool
	// runCtx is Run's context: operations started by a client's subscribe run under it, since
	// they outlive that client once others share them, and must end with the server.
	runCtx context.Context
	gone   chan struct{} // signalled when a connection ends (Shutdown waits on it)
}

// New prepares a subscription server over the store reached through pool (one more
// connection, outside the pool, LISTENs for changes) and the query engine eng.
func New(pool *pgxpool.Pool, eng Engine, opts Options) (*Server, error) {
	if pool == nil {
		return nil, errors.New("subscriptions: no database pool")
	}
	if eng == nil {
		return nil, errors.New("subscriptions: no query engine")
	}
	opts.defaults()
	api, err := newAPISchema(eng)
	if err != nil {
		return nil, fmt.Errorf("subscriptions: %w", err)
	}
	met, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts: opts, log: opts.Logger, eng: eng, pool: pool, api: api, met: met,
		lim:   limits{maxDepth: opts.MaxDepth, maxCost: opts.MaxCost, maxFirst: opts.MaxFirst},
		conns: map[*conn]struct{}{},
		ops:   map[string]*op{},
		gone:  make(chan struct{}, 1),
	}
	check := opts.CheckOrigin
	if check == nil {
		check = func(*http.Request) bool { return true }
	}
	s.up = websocket.Upgrader{
		HandshakeTimeout: opts.HandshakeTimeout,
		// Client messages are small; a message larger than the buffer is still read whole.
		ReadBufferSize: 512,
		// Write buffers are borrowed per message, so an idle connection holds none.
		WriteBufferSize: 4096,
		WriteBufferPool: &sync.Pool{},
		Subprotocols:    []string{ProtoTransportWS, ProtoLegacyWS},
		CheckOrigin:     check,
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			s.met.refused.WithLabelValues("bad_upgrade").Inc()
			http.Error(w, "subscriptions: "+reason.Error(), status)
		},
	}
	return s, nil
}

// ServeHTTP upgrades the request to a WebSocket and serves it until it closes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "subscriptions: the server is shutting down", http.StatusServiceUnavailable)
		return
	}
	ws, err := s.up.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered
	}
	if s.opts.SendBuffer > 0 {
		// An interface, not *net.TCPConn: the API server wraps its connections to count them.
		if tc, ok := ws.NetConn().(interface{ SetWriteBuffer(int) error }); ok {
			_ = tc.SetWriteBuffer(s.opts.SendBuffer)
		}
	}
	c := newConn(s, ws, r)
	if c.proto == "" {
		s.met.refused.WithLabelValues("subprotocol").Inc()
		c.refuse(CloseSubprotocol, "Subprotocol not acceptable: use graphql-transport-ws or graphql-ws")
		return
	}
	s.mu.Lock()
	switch {
	case s.closing:
		s.mu.Unlock()
		c.refuse(CloseGoingAway, "server shutting down")
		return
	case len(s.conns) >= s.opts.MaxConnections:
		s.mu.Unlock()
		s.met.refused.WithLabelValues("max_connections").Inc()
		c.refuse(CloseTryAgainLater, "too many connections (limit max_connections = "+strconv.Itoa(s.opts.MaxConnections)+")")
		return
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	s.met.connections.WithLabelValues(c.proto).Inc()
	s.met.connTotal.WithLabelValues(c.proto).Inc()
	// A fresh goroutine reads: returning lets net/http drop its connection state (two 4 KiB
	// buffers and a deep stack), which would otherwise stay pinned for the socket's lifetime.
	go c.serve()
}

// dropConn forgets a finished connection.
func (s *Server) dropConn(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.met.connections.WithLabelValues(c.proto).Dec()
	select {
	case s.gone <- struct{}{}:
	default:
	}
}

// Connections is the number of open WebSockets.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Shutdown refuses new connections, closes every open one with 1001 (clients reconnect to
// another replica) and waits until they are gone or ctx ends, then cuts what remains.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.close(CloseGoingAway, "server shutting down")
	}
	for {
		if s.Connections() == 0 {
			return nil
		}
		select {
		case <-s.gone:
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			s.mu.Lock()
			for c := range s.conns {
				c.ws.NetConn().Close()
			}
			s.mu.Unlock()
			return fmt.Errorf("subscriptions: shutdown: %w", ctx.Err())
		}
	}
}

// Run follows the store's change notifications and keeps every subscription current until ctx
// ends; it returns nil then. Subscriptions get their first result once the change feed is up.
func (s *Server) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("subscriptions: Run called twice")
	}
	s.running = true
	s.runCtx = ctx
	s.mu.Unlock()
	changes := make(chan change, 1024)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.listen(ctx, changes) }()
	go func() { defer wg.Done(); s.keepAlive(ctx) }()
	s.process(ctx, changes)
	wg.Wait()
	return nil
}

// keepAlive pings every connection each KeepAlive.
func (s *Server) keepAlive(ctx context.Context) {
	t := time.NewTicker(s.opts.KeepAlive)
	defer t.Stop()
	var conns []*conn
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		conns = conns[:0]
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()
		for _, c := range conns {
			c.ping()
		}
		clear(conns)
	}
}
