package source

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests   *prometheus.CounterVec   // endpoint, method
	errors     *prometheus.CounterVec   // endpoint, method, kind
	duration   *prometheus.HistogramVec // endpoint, method
	batchItems *prometheus.CounterVec   // endpoint, method
	giveUps    *prometheus.CounterVec   // method
	head       *prometheus.GaugeVec     // endpoint
	reconnects *prometheus.CounterVec   // endpoint, reason
	subMode    *prometheus.GaugeVec     // mode
	heads      *prometheus.CounterVec   // via

	chainMismatch *prometheus.CounterVec // endpoint, transport
	wrongChain    *prometheus.GaugeVec   // endpoint
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	var firstErr error
	m := &metrics{
		requests: register(reg, &firstErr, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "echain_indexer_rpc_requests_total",
			Help: "JSON-RPC requests sent (one per attempt; a batch counts once), by endpoint and method.",
		}, []string{"endpoint", "method"})),
		errors: register(reg, &firstErr, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "echain_indexer_rpc_errors_total",
			Help: "Failed JSON-RPC attempts by endpoint, method and error kind.",
		}, []string{"endpoint", "method", "kind"})),
		duration: register(reg, &firstErr, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "echain_indexer_rpc_request_duration_seconds",
			Help:    "JSON-RPC attempt latency by endpoint and method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"endpoint", "method"})),
		batchItems: register(reg, &firstErr, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "echain_indexer_rpc_batch_items_total",
			Help: "Calls carried inside JSON-RPC batches, by endpoint and method.",
		}, []string{"endpoint", "method"})),
		giveUps: register(reg, &firstErr, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "echain_indexer_rpc_giveups_total",
			Help: "Calls abandoned after their retry budget ran out, by method.",
		}, []string{"method"})),
		head: register(reg, &firstErr, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "echain_indexer_rpc_endpoint_head_block",
			Help: "Latest block number seen from each endpoint.",
		}, []string{"endpoint"})),
		reconnects: register(reg, &firstErr, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "echain_indexer_rpc_subscription_reconnects_total",
			Help: "newHeads subscription restarts by endpoint and reason (dropped, silent, dial_failed).",
		}, []string{"endpoint", "reason"})),
		subMode: register(reg, &firstErr, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "echain_indexer_rpc_subscription_mode",
			Help: "1 for the current head source mode: websocket, polling, or stopped.",
		}, []string{"mode"})),
		heads: register(reg, &firstErr, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "echain_indexer_rpc_heads_total",
			Help: "New heads delivered to the follower, by how they arrived (websocket, polling).",
		}, []string{"via"})),
		chainMismatch: register(reg, &firstErr, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "echain_indexer_rpc_chain_mismatch_total",
			Help: "Connections to an endpoint that served another chain (chain id or genesis), by endpoint and transport (http, ws).",
		}, []string{"endpoint", "transport"})),
		wrongChain: register(reg, &firstErr, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "echain_indexer_rpc_endpoint_wrong_chain",
			Help: "1 while an endpoint is out of service because it serves another chain.",
		}, []string{"endpoint"})),
	}
	if firstErr != nil {
		return nil, fmt.Errorf("source metrics: %w", firstErr)
	}
	return m, nil
}

// register reuses an identical collector already registered (two Sources on one registry) and
// records the first other registration error in *errp.
func register[T prometheus.Collector](reg prometheus.Registerer, errp *error, c T) T {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(T); ok {
			return existing
		}
	}
	if *errp == nil {
		*errp = err
	}
	return c
}
