package subscriptions

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	pm "github.com/echain/echain-indexer/metrics"
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
	f := pm.With(reg)
	latency := []float64{.001, .0025, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5, 10}
	m := &metrics{
		connections:   f.GaugeVec("ws_connections", "Open subscription WebSocket connections, by subprotocol.", "protocol"),
		connTotal:     f.CounterVec("ws_connections_total", "Subscription WebSocket connections accepted, by subprotocol.", "protocol"),
		closed:        f.CounterVec("ws_closed_total", "Connections the server closed, by close code.", "code"),
		dropped:       f.CounterVec("ws_dropped_clients_total", "Clients disconnected for reading too slowly (send queue full or write timeout).", "reason"),
		refused:       f.CounterVec("ws_refused_total", "Connections and subscriptions refused by a limit or a bad request, by reason.", "reason"),
		sent:          f.CounterVec("ws_messages_sent_total", "Messages written to clients, by message type.", "type"),
		received:      f.CounterVec("ws_messages_received_total", "Messages received from clients, by message type.", "type"),
		sentBytes:     f.Counter("ws_sent_bytes_total", "Bytes of messages written to clients (frame headers excluded)."),
		subscribers:   f.Gauge("subscriptions_active", "Active subscriptions, all connections together."),
		operations:    f.Gauge("subscriptions_operations", "Distinct subscription operations (identical query, operation name and variables share one)."),
		executions:    f.CounterVec("subscriptions_executions_total", "Executions of subscription operations, by outcome: changed (pushed), unchanged (nothing sent), retry (transient failure), error.", "result"),
		execSeconds:   f.Histogram("subscriptions_execution_seconds", "Time to execute one subscription operation.", latency),
		blockSeconds:  f.Histogram("subscriptions_block_seconds", "Time from a change notification to every affected operation executed and queued to its clients.", latency),
		delivery:      f.Histogram("subscriptions_delivery_seconds", "Time from a committed block's notification to a result of that block written to a client's socket.", latency),
		notifications: f.CounterVec("subscriptions_notifications_total", "Change notifications processed, by kind: commit, revert, resync (after (re)connecting the change feed).", "kind"),
		coalesced:     f.Counter("subscriptions_coalesced_total", "Notifications merged into a later one because they queued up behind a slow block."),
		reconnects:    f.Counter("subscriptions_feed_reconnects_total", "Times the LISTEN connection to PostgreSQL was lost and re-established."),
		feedConnected: f.Gauge("subscriptions_feed_connected", "1 while the LISTEN connection to PostgreSQL is up."),
		lastBlock:     f.Gauge("subscriptions_block_number", "Block number of the last processed change notification."),
		flushBatch:    f.Histogram("ws_flush_batch_messages", "Messages a connection's writer found queued at once (a backlog building up shows a slow client).", []float64{1, 2, 4, 8, 16, 32, 64, 128}),
	}
	if err := f.Err(); err != nil {
		return nil, fmt.Errorf("subscriptions: %w", err)
	}
	return m, nil
}
