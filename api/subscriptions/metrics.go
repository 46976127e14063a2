package subscriptions

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	connections   *prometheus.GaugeVec   // protocol
	connTotal     *prometheus.CounterVec // protocol
	closed        *prometheus.CounterVec // code
	dropped       *prometheus.CounterVec // reason
	refused       *prometheus.CounterVec // reason
	sent          *prometheus.CounterVec // type
	received      *prometheus.CounterVec // type
	subscribers   prometheus.Gauge
	operations    prometheus.Gauge
	executions    *prometheus.CounterVec // result
	execSeconds   prometheus.Histogram
	blockSeconds  prometheus.Histogram
	delivery      prometheus.Histogram
	notifications *prometheus.CounterVec // kind
	coalesced     prometheus.Counter
	reconnects    prometheus.Counter
	feedConnected prometheus.Gauge
	lastBlock     prometheus.Gauge
	sentBytes     prometheus.Counter
	flushBatch    prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	latency := []float64{.001, .0025, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5, 10}
	m := &metrics{
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "echain_indexer_ws_connections",
			Help: "Open subscription WebSocket connections, by subprotocol."}, []string{"protocol"}),
		connTotal: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "echain_indexer_ws_connections_total",
			Help: "Subscription WebSocket connections accepted, by subprotocol."}, []string{"protocol"}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "echain_indexer_ws_closed_total",
			Help: "Connections the server closed, by close code."}, []string{"code"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "echain_indexer_ws_dropped_clients_total",
			Help: "Clients disconnected for reading too slowly (send queue full or write timeout)."}, []string{"reason"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "echain_indexer_ws_refused_total",
			Help: "Connections and subscriptions refused by a limit or a bad request, by reason."}, []string{"reason"}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "echain_indexer_ws_messages_sent_total",
			Help: "Messages written to clients, by message type."}, []string{"type"}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "echain_indexer_ws_messages_received_total",
			Help: "Messages received from clients, by message type."}, []string{"type"}),
		sentBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "echain_indexer_ws_sent_bytes_total",
			Help: "Bytes of messages written to clients (frame headers excluded)."}),
		subscribers: prometheus.NewGauge(prometheus.GaugeOpts{Name: "echain_indexer_subscriptions_active",
			Help: "Active subscriptions, all connections together."}),
		operations: prometheus.NewGauge(prometheus.GaugeOpts{Name: "echain_indexer_subscriptions_operations",
			Help: "Distinct subscription operations (identical query, operation name and variables share one)."}),
		executions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "echain_indexer_subscriptions_executions_total",
			Help: "Executions of subscription operations, by outcome: changed (pushed), unchanged (nothing sent), retry (transient failure), error."}, []string{"result"}),
		execSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "echain_indexer_subscriptions_execution_seconds",
			Help: "Time to execute one subscription operation.", Buckets: latency}),
		blockSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "echain_indexer_subscriptions_block_seconds",
			Help: "Time from a change notification to every affected operation executed and queued to its clients.", Buckets: latency}),
		delivery: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "echain_indexer_subscriptions_delivery_seconds",
			Help: "Time from a committed block's notification to a result of that block written to a client's socket.", Buckets: latency}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "echain_indexer_subscriptions_notifications_total",
			Help: "Change notifications processed, by kind: commit, revert, resync (after (re)connecting the change feed)."}, []string{"kind"}),
		coalesced: prometheus.NewCounter(prometheus.CounterOpts{Name: "echain_indexer_subscriptions_coalesced_total",
			Help: "Notifications merged into a later one because they queued up behind a slow block."}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "echain_indexer_subscriptions_feed_reconnects_total",
			Help: "Times the LISTEN connection to PostgreSQL was lost and re-established."}),
		feedConnected: prometheus.NewGauge(prometheus.GaugeOpts{Name: "echain_indexer_subscriptions_feed_connected",
			Help: "1 while the LISTEN connection to PostgreSQL is up."}),
		lastBlock: prometheus.NewGauge(prometheus.GaugeOpts{Name: "echain_indexer_subscriptions_block_number",
			Help: "Block number of the last processed change notification."}),
		flushBatch: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "echain_indexer_ws_flush_batch_messages",
			Help:    "Messages a connection's writer found queued at once (a backlog building up shows a slow client).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128}}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.connections, m.connTotal, m.closed, m.dropped, m.refused, m.sent, m.received,
		m.sentBytes, m.subscribers, m.operations, m.executions, m.execSeconds, m.blockSeconds, m.delivery, m.notifications,
		m.coalesced, m.reconnects, m.feedConnected, m.lastBlock, m.flushBatch} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("subscriptions: metrics: %w", err)
		}
	}
	return m, nil
}
