package webhook

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	pm "github.com/echain/echain-indexer/metrics"
)

type metrics struct {
	received, verified, duplicates, forwarded, dropped, sinkErrors prometheus.Counter
	rejected, ignored                                              *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, queued func() float64) (*metrics, error) {
	f := pm.With(reg)
	counter := func(name, help string) prometheus.Counter { return f.Counter("webhook_"+name, help) }
	m := &metrics{
		received:   counter("received_total", "Webhook requests received, before any check."),
		verified:   counter("verified_total", "Webhook requests whose signature verified."),
		duplicates: counter("duplicates_total", "Verified deliveries dropped as duplicates (same X-Event-Id or same network, transaction and log index)."),
		forwarded:  counter("forwarded_total", "Hints the follower accepted."),
		dropped:    counter("dropped_total", "Hints dropped because the queue to the follower was full."),
		sinkErrors: counter("sink_errors_total", "Hints the follower refused or failed on."),
		rejected:   f.CounterVec("webhook_rejected_total", "Webhook requests refused, by reason (method, rate_limited, too_large, read_error, missing_signature, malformed_signature, stale, bad_signature, no_secret, malformed).", "reason"),
		ignored:    f.CounterVec("webhook_ignored_total", "Verified deliveries answered 200 without a hint, by reason (event_type, network, no_transaction, no_contract, contract).", "reason"),
	}
	f.GaugeFunc("webhook_queue_hints", "Hints waiting for the follower.", queued)
	if err := f.Err(); err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	return m, nil
}
