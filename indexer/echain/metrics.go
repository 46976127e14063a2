package echain

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	logs            *prometheus.CounterVec   // handled logs by event name
	skipped         *prometheus.CounterVec   // logs that changed nothing, by reason
	detailsCalldata prometheus.Counter       // events whose details the createEvent calldata gave
	detailsCalls    prometheus.Counter       // getEventDetails calls at the creation block
	detailsFallback *prometheus.CounterVec   // fallbacks when that state was unavailable
	metadata        *prometheus.CounterVec   // document lookups by result
	metadataSeconds prometheus.Histogram     // time of one document fetch over the network
	metadataFills   prometheus.Counter       // Event versions written when a document arrived
	prepareSeconds  *prometheus.HistogramVec // Prepare stages
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		logs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "echain_indexer_mapping_logs_total",
			Help: "Logs run through the Echain mappings, by event.",
		}, []string{"event"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "echain_indexer_mapping_skipped_logs_total",
			Help: "Logs the Echain mappings could not use (undecodable, unknown listing or ticket contract), by reason.",
		}, []string{"reason"}),
		detailsCalldata: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "echain_indexer_mapping_event_details_calldata_total",
			Help: "New events whose startTime, endTime and metadataURI were decoded from a direct createEvent call (no contract call).",
		}),
		detailsCalls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "echain_indexer_mapping_event_details_calls_total",
			Help: "getEventDetails calls made at an event's creation block (events not created by a direct createEvent call).",
		}),
		detailsFallback: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "echain_indexer_mapping_event_details_fallbacks_total",
			Help: "Events whose creation-block state was unavailable, by the fallback used (latest: getEventDetails at the latest block; none: left zero).",
		}, []string{"fallback"}),
		metadata: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "echain_indexer_mapping_metadata_documents_total",
			Help: "Event metadata document lookups, by result (ok, cache, not_found, invalid, unsupported: final; timeout, error, busy, status, stopped: retried).",
		}, []string{"result"}),
		metadataSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "echain_indexer_mapping_metadata_fetch_seconds",
			Help:    "Time to fetch one event metadata document over the network.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2, 5, 10},
		}),
		metadataFills: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "echain_indexer_mapping_metadata_fills_total",
			Help: "Event versions written at the head block because a metadata document arrived after the Event was committed.",
		}),
		prepareSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "echain_indexer_mapping_prepare_seconds",
			Help:    "Time of the Echain mappings' Prepare stages (details: contract calls).",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 9),
		}, []string{"stage"}),
	}
	for _, c := range []prometheus.Collector{m.logs, m.skipped, m.detailsCalldata, m.detailsCalls, m.detailsFallback, m.metadata, m.metadataSeconds, m.metadataFills, m.prepareSeconds} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register echain mapping metrics: %w", err)
		}
	}
	return m, nil
}
