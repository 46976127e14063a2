// Package api wires echain-indexer's HTTP surface into one server: the GraphQL endpoint (queries
// over HTTP, subscriptions over WebSocket) at /graphql and /subgraphs/name/echain, the Coinbase
// webhook receiver at /webhooks/coinbase, and the /healthz and /readyz probes. Prometheus metrics
// are served by a separate listener (MetricsServer) so that they can stay private.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/echain/echain-indexer/api/ratelimit"
	"github.com/echain/echain-indexer/metrics"
)

// Paths the server answers on.
const (
	PathGraphQL  = "/graphql"
	PathSubgraph = "/subgraphs/name/echain"
	PathWebhook  = "/webhooks/coinbase"
	PathHealth   = "/healthz"
	PathReady    = "/readyz"
)

// Readiness is the answer of /readyz.
type Readiness struct {
	Ready     bool   `json:"ready"`
	Mode      string `json:"mode,omitempty"`
	ChainHead int64  `json:"chainHead"`
	Indexed   int64  `json:"indexed"`
	LagBlocks int64  `json:"lagBlocks"`
	MaxLag    int64  `json:"maxLagBlocks"`
	Reason    string `json:"reason,omitempty"`
	// Replication is set on a hot standby.
	Replication *Replication `json:"replication,omitempty"`
}

// Options configure a Server. Nil handlers leave their paths unanswered (404).
type Options struct {
	// Listen is host:port; port 0 picks a free one (see Server.Addr).
	Listen string
	// GraphQL serves queries (POST and GET) at PathGraphQL and PathSubgraph.
	GraphQL http.Handler
	// Subscriptions takes the WebSocket upgrades at the same two paths.
	Subscriptions http.Handler
	// Webhook serves PathWebhook.
	Webhook http.Handler
	// Health reports whether the process can do its job: nil when the database answers.
	Health func(ctx context.Context) error
	// Ready reports whether the indexed state is recent enough to serve.
	Ready func(ctx context.Context) Readiness
	// OnShutdown run when Shutdown starts, concurrently, and Shutdown waits for them: the
	// subscription server closes its WebSockets with a close frame here (http.Server.Shutdown
	// does not track hijacked connections).
	OnShutdown []func(ctx context.Context) error
	// Limits bound slow, large and numerous requests.
	Limits Limits
	// InFlight is the budget of request bytes shared with the subscription server; nil: one of
	// Limits.MaxInFlightBytes for this server alone.
	InFlight *InFlight

	Log        *slog.Logger
	Registerer prometheus.Registerer
}

// Server is the API's HTTP server.
type Server struct {
	srv    *http.Server
	ln     net.Listener
	log    *slog.Logger
	onStop []func(ctx context.Context) error
	served chan error
	once   sync.Once
	// stop cancels every request's context: in-flight queries end at shutdown instead of
	// holding it up.
	stop context.CancelFunc
}

// Listen opens the listener (so that a bad address fails at start-up and port 0 is resolved)
// and prepares the routes; Serve starts answering.
func Listen(o Options) (*Server, error) {
	if o.Log == nil {
		return nil, errors.New("api: Options.Log is nil")
	}
	if o.Registerer == nil {
		return nil, errors.New("api: Options.Registerer is nil")
	}
	o.Limits.defaults()
	lim := o.Limits
	budget := o.InFlight
	if budget == nil {
		budget = NewInFlight(lim.MaxInFlightBytes)
	}
	tracker := &connTracker{max: lim.MaxConnsPerClient, perAddr: map[netip.Addr]int{}, exempt: func(a netip.Addr) bool {
		return inPrefixes(lim.Exempt, a) || inPrefixes(lim.TrustedProxies, a)
	}}
	h, err := routes(o, budget, tracker)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, fmt.Errorf("api: listen on %s: %w", o.Listen, err)
	}
	base, stop := context.WithCancel(context.Background())
	s := &Server{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: lim.ReadHeaderTimeout,
			IdleTimeout:       lim.IdleTimeout,
			MaxHeaderBytes:    lim.MaxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(o.Log.Handler(), slog.LevelDebug),
			BaseContext:       func(net.Listener) context.Context { return base },
			ConnContext: func(ctx context.Context, c net.Conn) context.Context {
				return context.WithValue(ctx, connKey{}, c)
			},
		},
		ln:     &trackingListener{Listener: ln, t: tracker},
		log:    o.Log,
		onStop: o.OnShutdown,
		served: make(chan error, 1),
		stop:   stop,
	}
	return s, nil
}

// Addr is the address the server listens on, e.g. 127.0.0.1:8000.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve answers requests until Shutdown; it returns nil after a shutdown.
func (s *Server) Serve() error {
	err := s.srv.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("api: serve: %w", err)
}

// Shutdown stops accepting connections, runs the OnShutdown hooks (WebSockets get their close
// frame) and waits for in-flight requests, all within ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	s.once.Do(func() {
		// Stop accepting first, then cancel what runs: a query in flight answers with its
		// cancellation rather than keeping the process past shutdown_timeout.
		s.srv.SetKeepAlivesEnabled(false)
		s.stop()
		var wg sync.WaitGroup
		errs := make([]error, len(s.onStop)+1)
		for i, f := range s.onStop {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = f(ctx)
			}()
		}
		errs[len(s.onStop)] = s.srv.Shutdown(ctx)
		wg.Wait()
		if err = errors.Join(errs...); err != nil {
			// Past the deadline: drop what is left rather than hang the exit.
			s.srv.Close()
			err = fmt.Errorf("api: shutdown: %w", err)
		}
	})
	return err
}

func routes(o Options, budget *InFlight, tracker *connTracker) (http.Handler, error) {
	f := metrics.With(o.Registerer)
	reqs := f.CounterVec("http_requests_total", "HTTP requests answered by the API server, by route and status code.", "handler", "code")
	dur := f.HistogramVec("http_request_duration_seconds", "Time to answer an HTTP request (WebSocket upgrades excluded), by route.", []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}, "handler")
	refused := f.CounterVec("http_refused_total", "Requests refused by the server's limits, by reason: client_connections (api.max_conns_per_client), client_rate (api.client_rate), inflight_bytes (api.max_inflight_bytes), body_timeout (api.read_body_timeout).", "reason")
	for _, r := range []string{"client_connections", "client_rate", "inflight_bytes", "body_timeout"} {
		refused.WithLabelValues(r)
	}
	f.GaugeFunc("http_request_bytes_in_flight", "Request body and WebSocket message bytes held by the process (capped by api.max_inflight_bytes).",
		func() float64 { return float64(budget.Held()) })
	f.GaugeFunc("http_connections", "Open connections of the API listener, WebSockets included.",
		func() float64 { return float64(tracker.open.Load()) })
	if err := f.Err(); err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	g := &guard{lim: o.Limits, budget: budget, refused: func(r string) { refused.WithLabelValues(r).Inc() }}
	if o.Limits.ClientRate > 0 {
		g.rate = ratelimit.New[netip.Addr](o.Limits.ClientRate, o.Limits.ClientBurst, 100_000)
	}
	instrument := func(name string, h http.Handler) http.Handler {
		h = g.wrap(h, name == "graphql")
		counted := promhttp.InstrumentHandlerCounter(reqs.MustCurryWith(prometheus.Labels{"handler": name}), h)
		timed := promhttp.InstrumentHandlerDuration(dur.MustCurryWith(prometheus.Labels{"handler": name}), counted)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if isWebSocket(r) {
				// A subscription lives for hours: its "duration" would drown the query latencies.
				counted.ServeHTTP(w, r)
				return
			}
			timed.ServeHTTP(w, r)
		})
	}

	mux := http.NewServeMux()
	if o.GraphQL != nil || o.Subscriptions != nil {
		gql := instrument("graphql", graphQL(o.GraphQL, o.Subscriptions))
		mux.Handle(PathGraphQL, gql)
		mux.Handle(PathSubgraph, gql)
	}
	if o.Webhook != nil {
		mux.Handle(PathWebhook, instrument("webhook", o.Webhook))
	}
	mux.Handle(PathHealth, instrument("healthz", health(o.Health)))
	mux.Handle(PathReady, instrument("readyz", ready(o.Ready)))
	mux.Handle("/{$}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "echain-indexer\n\nGraphQL: %s (also %s)\nhealth:  %s, %s\n", PathGraphQL, PathSubgraph, PathHealth, PathReady)
	}))
	return mux, nil
}

// guard applies Limits to a route's requests before its handler sees them.
type guard struct {
	lim     Limits
	budget  *InFlight
	rate    *ratelimit.Limiter[netip.Addr]
	refused func(reason string)
}

func (g *guard) wrap(h http.Handler, rateLimited bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c := connOf(r.Context()); c != nil && c.over {
			g.refused("client_connections")
			w.Header().Set("Connection", "close")
			refuseJSON(w, http.StatusTooManyRequests, "LIMIT_CLIENT_CONNECTIONS",
				fmt.Sprintf("too many connections from your address (limit api.max_conns_per_client = %d)", g.lim.MaxConnsPerClient))
			return
		}
		if rateLimited && g.rate != nil {
			if a := clientAddr(r, g.lim.TrustedProxies); !inPrefixes(g.lim.Exempt, a) && !g.rate.Allow(clientKey(a), time.Now()) {
				g.refused("client_rate")
				refuseJSON(w, http.StatusTooManyRequests, "LIMIT_CLIENT_RATE",
					fmt.Sprintf("too many requests from your address (limit api.client_rate = %g/s)", g.lim.ClientRate))
				return
			}
		}
		if r.Body != nil && r.Body != http.NoBody {
			rc := http.NewResponseController(w)
			_ = rc.SetReadDeadline(time.Now().Add(g.lim.ReadBodyTimeout))
			mb := &meteredBody{body: r.Body, closer: r.Body.Close, budget: g.budget, rc: rc, timeout: g.lim.ReadBodyTimeout, refused: g.refused}
			defer mb.finish()
			// A shallow copy: net/http decides from its own request's body whether the
			// connection can be kept after the answer (what is left unread, was it too big).
			r = r.WithContext(r.Context())
			r.Body = mb
		}
		h.ServeHTTP(w, r)
	})
}

func isWebSocket(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

func graphQL(queries, subs http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isWebSocket(r) {
			if subs == nil {
				http.Error(w, "subscriptions are not served here", http.StatusNotImplemented)
				return
			}
			subs.ServeHTTP(w, r)
			return
		}
		if queries == nil {
			http.Error(w, "queries are not served here", http.StatusNotImplemented)
			return
		}
		queries.ServeHTTP(w, r)
	})
}

func health(check func(context.Context) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		body := map[string]string{"status": "ok"}
		code := http.StatusOK
		if check != nil {
			if err := check(ctx); err != nil {
				body = map[string]string{"status": "unhealthy", "error": err.Error()}
				code = http.StatusServiceUnavailable
			}
		}
		writeJSON(w, code, body)
	})
}

func ready(check func(context.Context) Readiness) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		rd := Readiness{Ready: true}
		if check != nil {
			rd = check(ctx)
		}
		code := http.StatusOK
		if !rd.Ready {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, rd)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
