package metrics

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Prefix starts every series of echain-indexer.
const Prefix = "echain_indexer_"

// Factory is the one way packages create their metrics: each constructor makes a collector named
// Prefix+name and registers it on the Registerer given to With. A registration error is kept
// (Err) rather than returned from every call, so that a package builds its metrics struct in one
// expression and checks Err once; the collectors returned are usable either way.
type Factory struct {
	reg prometheus.Registerer
	err error
}

// With returns a Factory registering on reg; nil reg creates collectors without registering
// them (a component used without metrics).
func With(reg prometheus.Registerer) *Factory { return &Factory{reg: reg} }

// Err is the first registration error, wrapped with the metric's name.
func (f *Factory) Err() error { return f.err }

// Register registers a collector made elsewhere (a custom Collector); its names are its own.
func (f *Factory) Register(c prometheus.Collector) {
	if f.reg == nil || f.err != nil {
		return
	}
	if err := f.reg.Register(c); err != nil {
		f.err = fmt.Errorf("metrics: register: %w", err)
	}
}

// register adds c, or returns the identical collector already registered (two stores or
// sources in one process share their series).
func register[C prometheus.Collector](f *Factory, name string, c C) C {
	if f.reg == nil || f.err != nil {
		return c
	}
	if err := f.reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		f.err = fmt.Errorf("metrics: register %s%s: %w", Prefix, name, err)
	}
	return c
}

// Counter is a counter; name ends in _total.
func (f *Factory) Counter(name, help string) prometheus.Counter {
	return register(f, name, prometheus.NewCounter(prometheus.CounterOpts{Name: Prefix + name, Help: help}))
}

// CounterVec is a counter by labels.
func (f *Factory) CounterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return register(f, name, prometheus.NewCounterVec(prometheus.CounterOpts{Name: Prefix + name, Help: help}, labels))
}

// Gauge is a gauge.
func (f *Factory) Gauge(name, help string) prometheus.Gauge {
	return register(f, name, prometheus.NewGauge(prometheus.GaugeOpts{Name: Prefix + name, Help: help}))
}

// GaugeVec is a gauge by labels.
func (f *Factory) GaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	return register(f, name, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: Prefix + name, Help: help}, labels))
}

// GaugeFunc is a gauge read from fn at scrape time.
func (f *Factory) GaugeFunc(name, help string, fn func() float64) prometheus.GaugeFunc {
	return register(f, name, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: Prefix + name, Help: help}, fn))
}

// CounterFunc is a counter read from fn at scrape time.
func (f *Factory) CounterFunc(name, help string, fn func() float64) prometheus.CounterFunc {
	return register(f, name, prometheus.NewCounterFunc(prometheus.CounterOpts{Name: Prefix + name, Help: help}, fn))
}

// Histogram is a histogram with the given buckets.
func (f *Factory) Histogram(name, help string, buckets []float64) prometheus.Histogram {
	return register(f, name, prometheus.NewHistogram(prometheus.HistogramOpts{Name: Prefix + name, Help: help, Buckets: buckets}))
}

// HistogramVec is a histogram by labels.
func (f *Factory) HistogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return register(f, name, prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: Prefix + name, Help: help, Buckets: buckets}, labels))
}
