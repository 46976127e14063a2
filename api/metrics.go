package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricsServer serves a registry's metrics at /metrics on a listener of its own.
type MetricsServer struct {
	srv *http.Server
	ln  net.Listener
}

// ListenMetrics opens the metrics listener. g is what is scraped; errors while gathering are
// logged and the series that could be gathered are still served. status, when not nil, answers
// /status (the live state `echain-indexer status` reads): this listener is the private one.
func ListenMetrics(listen string, g prometheus.Gatherer, status http.Handler, log *slog.Logger) (*MetricsServer, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w", listen, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
		Timeout:           10 * time.Second,
	}))
	if status != nil {
		mux.Handle("/status", status)
	}
	mux.Handle("/{$}", http.RedirectHandler("/metrics", http.StatusFound))
	return &MetricsServer{
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		ln:  ln,
	}, nil
}

// Addr is the address the metrics listener is bound to.
func (m *MetricsServer) Addr() string { return m.ln.Addr().String() }

// Serve answers scrapes until Shutdown.
func (m *MetricsServer) Serve() error {
	if err := m.srv.Serve(m.ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics: serve: %w", err)
	}
	return nil
}

// Shutdown stops the listener; a scrape in flight may finish within ctx.
func (m *MetricsServer) Shutdown(ctx context.Context) error {
	if err := m.srv.Shutdown(ctx); err != nil {
		m.srv.Close()
		return fmt.Errorf("metrics: shutdown: %w", err)
	}
	return nil
}
