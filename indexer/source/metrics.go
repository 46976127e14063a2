package source

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	pm "github.com/echain/echain-indexer/metrics"
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
	rateWait      *prometheus.CounterVec // endpoint
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	f := pm.With(reg)
	m := &metrics{
		requests:      f.CounterVec("rpc_requests_total", "JSON-RPC requests sent (one per attempt; a batch counts once), by endpoint and method.", "endpoint", "method"),
		errors:        f.CounterVec("rpc_errors_total", "Failed JSON-RPC attempts by endpoint, method and error kind.", "endpoint", "method", "kind"),
		duration:      f.HistogramVec("rpc_request_duration_seconds", "JSON-RPC attempt latency by endpoint and method.", []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}, "endpoint", "method"),
		batchItems:    f.CounterVec("rpc_batch_items_total", "Calls carried inside JSON-RPC batches, by endpoint and method.", "endpoint", "method"),
		giveUps:       f.CounterVec("rpc_giveups_total", "Calls abandoned after their retry budget ran out, by method.", "method"),
		head:          f.GaugeVec("rpc_endpoint_head_block", "Latest block number seen from each endpoint.", "endpoint"),
		reconnects:    f.CounterVec("rpc_subscription_reconnects_total", "newHeads subscription restarts by endpoint and reason (dropped, silent, dial_failed).", "endpoint", "reason"),
		subMode:       f.GaugeVec("rpc_subscription_mode", "1 for the current head source mode: websocket, polling, or stopped.", "mode"),
		heads:         f.CounterVec("rpc_heads_total", "New heads delivered to the follower, by how they arrived (websocket, polling).", "via"),
		chainMismatch: f.CounterVec("rpc_chain_mismatch_total", "Connections to an endpoint that served another chain (chain id or genesis), by endpoint and transport (http, ws).", "endpoint", "transport"),
		rateWait:      f.CounterVec("rpc_rate_limit_wait_seconds_total", "Time requests waited for an endpoint's requests_per_second or calls_per_second before being sent, by endpoint.", "endpoint"),
		wrongChain:    f.GaugeVec("rpc_endpoint_wrong_chain", "1 while an endpoint is out of service because it serves another chain.", "endpoint"),
	}
	if err := f.Err(); err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	return m, nil
}
