package engine

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	errors     *prometheus.CounterVec
	inFlight   prometheus.Gauge
	statements prometheus.Histogram
	respBytes  prometheus.Histogram
	refusals   *prometheus.CounterVec
	// validations counts documents validated: the front end's superlinear step, once per text.
	validations prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "echain_indexer_graphql_requests_total",
			Help: "GraphQL requests answered, by operation name (bounded; 'other' past the first 100 names).",
		}, []string{"operation"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "echain_indexer_graphql_request_duration_seconds",
			Help:    "Time to answer a GraphQL request, by operation name.",
			Buckets: []float64{.0005, .001, .002, .003, .005, .0075, .01, .015, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"operation"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "echain_indexer_graphql_errors_total",
			Help: "GraphQL errors returned, by operation name and error code (limits are LIMIT_*).",
		}, []string{"operation", "code"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "echain_indexer_graphql_in_flight_requests",
			Help: "GraphQL requests being answered.",
		}),
		statements: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "echain_indexer_graphql_sql_statements_per_request",
			Help:    "SQL statements one GraphQL request ran (BEGIN and the cursor read included).",
			Buckets: []float64{1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 50},
		}),
		respBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "echain_indexer_graphql_response_size_bytes",
			Help:    "Size of GraphQL response bodies before compression.",
			Buckets: prometheus.ExponentialBuckets(256, 4, 9),
		}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "echain_indexer_graphql_refusals_total",
			Help: "Requests (queries and subscriptions) refused or stopped by a limit, by reason: tokens, fields, aliases, fragment_spreads, depth, cost, response_size, timeout, client_gone, concurrency, query_bytes.",
		}, []string{"reason"}),
		validations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "echain_indexer_graphql_validated_documents_total",
			Help: "Query documents validated against the API schema (once per query text while its plan is cached); refused documents are not.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.duration, m.errors, m.inFlight, m.statements, m.respBytes, m.refusals, m.validations} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
