package echain

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	pm "github.com/echain/echain-indexer/metrics"
)

type metrics struct {
	logs            *prometheus.CounterVec   // handled logs by event name
	skipped         *prometheus.CounterVec   // logs that changed nothing, by reason
	detailsCalldata prometheus.Counter       // events whose details the creating calldata gave
	detailsCalls    prometheus.Counter       // getEventDetails calls at the creation block
	detailsFallback *prometheus.CounterVec   // fallbacks when that state was unavailable
	metadata        *prometheus.CounterVec   // document lookups by result
	metadataSeconds prometheus.Histogram     // time of one document fetch over the network
	metadataFills   prometheus.Counter       // Event versions written when a document arrived
	prepareSeconds  *prometheus.HistogramVec // Prepare stages
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	f := pm.With(reg)
	m := &metrics{
		logs:            f.CounterVec("mapping_logs_total", "Logs run through the Echain mappings, by event.", "event"),
		skipped:         f.CounterVec("mapping_skipped_logs_total", "Logs the Echain mappings could not use (undecodable, unknown listing or ticket contract), by reason.", "reason"),
		detailsCalldata: f.Counter("mapping_event_details_calldata_total", "New events whose startTime, endTime and metadataURI were decoded from the creating transaction's calldata, a direct createEvent call or a smart account's execute of one, cross-checked with the EventCreated logs (no contract call)."),
		detailsCalls:    f.Counter("mapping_event_details_calls_total", "getEventDetails calls made at an event's creation block (events whose calldata does not name them: multicalls, nested accounts, or calldata that disagrees with the logs)."),
		detailsFallback: f.CounterVec("mapping_event_details_fallbacks_total", "Events whose creation-block state was unavailable, by the fallback used (latest: getEventDetails at the latest block; none: left zero).", "fallback"),
		metadata:        f.CounterVec("mapping_metadata_documents_total", "Event metadata document lookups, by result (ok, cache, not_found, invalid, unsupported: final; timeout (the document, after the host took the request), error (connecting or reading), busy (429, 502, 503, 504), status, stopped: retried).", "result"),
		metadataSeconds: f.Histogram("mapping_metadata_fetch_seconds", "Time to fetch one event metadata document over the network.", []float64{.01, .05, .1, .25, .5, 1, 2, 5, 10}),
		metadataFills:   f.Counter("mapping_metadata_fills_total", "Event versions written at the head block because a metadata document arrived after the Event was committed."),
		prepareSeconds:  f.HistogramVec("mapping_prepare_seconds", "Time of the Echain mappings' Prepare stages (details: contract calls).", prometheus.ExponentialBuckets(0.001, 4, 9), "stage"),
	}
	if err := f.Err(); err != nil {
		return nil, fmt.Errorf("echain mappings: %w", err)
	}
	return m, nil
}
