package engine

import (
	"github.com/prometheus/client_golang/prometheus"

	pm "github.com/echain/echain-indexer/metrics"
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
	f := pm.With(reg)
	m := &metrics{
		requests:    f.CounterVec("graphql_requests_total", "GraphQL requests answered, by operation name (bounded; 'other' past the first 100 names).", "operation"),
		duration:    f.HistogramVec("graphql_request_duration_seconds", "Time to answer a GraphQL request, by operation name.", []float64{.0005, .001, .002, .003, .005, .0075, .01, .015, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}, "operation"),
		errors:      f.CounterVec("graphql_errors_total", "GraphQL errors returned, by operation name and error code (limits are LIMIT_*).", "operation", "code"),
		inFlight:    f.Gauge("graphql_in_flight_requests", "GraphQL requests being answered."),
		statements:  f.Histogram("graphql_sql_statements_per_request", "SQL statements one GraphQL request ran (BEGIN and the cursor read included).", []float64{1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 50}),
		respBytes:   f.Histogram("graphql_response_size_bytes", "Size of GraphQL response bodies before compression.", prometheus.ExponentialBuckets(256, 4, 9)),
		refusals:    f.CounterVec("graphql_refusals_total", "Requests (queries and subscriptions) refused or stopped by a limit, by reason: tokens, fields, aliases, fragment_spreads, depth, cost, response_size, timeout, client_gone, concurrency, query_bytes.", "reason"),
		validations: f.Counter("graphql_validated_documents_total", "Query documents validated against the API schema (once per query text while its plan is cached); refused documents are not."),
	}
	if err := f.Err(); err != nil {
		return nil, err
	}
	return m, nil
}
