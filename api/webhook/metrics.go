package webhook

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	received, verified, duplicates, forwarded, dropped, sinkErrors prometheus.Counter
	rejected, ignored                                              *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, queued func() float64) (*metrics, error) {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "echain_indexer_webhook_" + name, Help: help})
	}
	m := &metrics{
		received:   counter("received_total", "Webhook requests received, before any check."),
		verified:   counter("verified_total", "Webhook requests whose signature verified."),
		duplicates: counter("duplicates_total", "Verified deliveries dropped as duplicates (same X-Event-Id or same network, transaction and log index)."),
		forwarded:  counter("forwarded_total", "Hints the follower accepted."),
		dropped:    counter("dropped_total", "Hints dropped because the queue to the follower was full."),
		sinkErrors: counter("sink_errors_total", "Hints the follower refused or failed on."),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "echain_indexer_webhook_rejected_total",
			Help: "Webhook requests refused, by reason (method, rate_limited, too_large, read_error, missing_signature, malformed_signature, stale, bad_signature, no_secret, malformed).",
		}, []string{"reason"}),
		ignored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "echain_indexer_webhook_ignored_total",
			Help: "Verified deliveries answered 200 without a hint, by reason (event_type, network, no_transaction, no_contract, contract).",
		}, []string{"reason"}),
	}
	queue := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "echain_indexer_webhook_queue_hints",
		Help: "Hints waiting for the follower.",
	}, queued)
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.received, m.verified, m.duplicates, m.forwarded, m.dropped, m.sinkErrors, m.rejected, m.ignored, queue} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("webhook: register metrics: %w", err)
		}
	}
	return m, nil
}
