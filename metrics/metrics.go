// Package metrics holds the process-level Prometheus collectors of echain-indexer: build and
// start-time information, Go runtime and process statistics, and the pgx pool's statistics.
// Every package creates and registers its own series through With(reg) (factory.go) on the
// Registerer it is given; names start with echain_indexer_ and end with their unit.
package metrics

import (
	"fmt"
	"runtime"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Build identifies the running binary.
type Build struct {
	Version  string
	Revision string
}

// RegisterProcess registers the Go runtime and process collectors, echain_indexer_build_info and
// echain_indexer_start_time_seconds.
func RegisterProcess(reg prometheus.Registerer, b Build, started time.Time) error {
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "echain_indexer_build_info",
		Help: "Always 1; the labels name the running build.",
		ConstLabels: prometheus.Labels{
			"version": b.Version, "revision": b.Revision, "goversion": runtime.Version(),
		},
	})
	info.Set(1)
	start := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "echain_indexer_start_time_seconds",
		Help: "Unix time the process started.",
	})
	start.Set(float64(started.UnixNano()) / 1e9)
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		info, start,
	} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
	}
	return nil
}

// PoolCollector exports a pgx pool's statistics, read at scrape time.
type PoolCollector struct {
	pool *pgxpool.Pool
	descs
}

type descs struct {
	acquired, idle, constructing, total, max                                    *prometheus.Desc
	acquires, acquireSeconds, canceled, empty, newConns, lifetimeDrop, idleDrop *prometheus.Desc
}

// NewPoolCollector returns a collector for pool; label names the pool (e.g. "main").
func NewPoolCollector(pool *pgxpool.Pool, label string) *PoolCollector {
	l := prometheus.Labels{"pool": label}
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("echain_indexer_db_pool_"+name, help, nil, l)
	}
	return &PoolCollector{pool: pool, descs: descs{
		acquired:       d("acquired_connections", "Connections in use."),
		idle:           d("idle_connections", "Idle connections."),
		constructing:   d("constructing_connections", "Connections being opened."),
		total:          d("connections", "Open connections (acquired, idle and constructing)."),
		max:            d("max_connections", "Largest size of the pool."),
		acquires:       d("acquires_total", "Connections acquired from the pool."),
		acquireSeconds: d("acquire_wait_seconds_total", "Time spent waiting for a connection."),
		canceled:       d("canceled_acquires_total", "Acquires given up because their context ended."),
		empty:          d("empty_acquires_total", "Acquires that had to wait because no connection was idle."),
		newConns:       d("new_connections_total", "Connections opened."),
		lifetimeDrop:   d("max_lifetime_closed_total", "Connections closed for reaching their maximum lifetime."),
		idleDrop:       d("max_idle_closed_total", "Connections closed for idling too long."),
	}}
}

// Describe implements prometheus.Collector.
func (c *PoolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.acquired, c.idle, c.constructing, c.total, c.max,
		c.acquires, c.acquireSeconds, c.canceled, c.empty, c.newConns, c.lifetimeDrop, c.idleDrop} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *PoolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	g := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	n := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	g(c.acquired, float64(s.AcquiredConns()))
	g(c.idle, float64(s.IdleConns()))
	g(c.constructing, float64(s.ConstructingConns()))
	g(c.total, float64(s.TotalConns()))
	g(c.max, float64(s.MaxConns()))
	n(c.acquires, float64(s.AcquireCount()))
	n(c.acquireSeconds, s.AcquireDuration().Seconds())
	n(c.canceled, float64(s.CanceledAcquireCount()))
	n(c.empty, float64(s.EmptyAcquireCount()))
	n(c.newConns, float64(s.NewConnsCount()))
	n(c.lifetimeDrop, float64(s.MaxLifetimeDestroyCount()))
	n(c.idleDrop, float64(s.MaxIdleDestroyCount()))
}
