package store

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	commitSeconds  prometheus.Histogram
	versions       *prometheus.CounterVec
	reverts        prometheus.Counter
	revertedBlocks prometheus.Counter
	revertSeconds  prometheus.Histogram
	pruned         *prometheus.CounterVec
	pruneSeconds   prometheus.Histogram
	lookups        *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "echain_indexer_store_commit_seconds",
			Help:    "Time to flush one batch (versions, window, cursor) in one transaction.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		versions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "echain_indexer_store_versions_written_total",
			Help: "Entity versions written, by entity type.",
		}, []string{"entity"}),
		reverts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "echain_indexer_store_reverts_total",
			Help: "Reverts applied (reorgs).",
		}),
		revertedBlocks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "echain_indexer_store_reverted_blocks_total",
			Help: "Blocks undone by reverts.",
		}),
		revertSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "echain_indexer_store_revert_seconds",
			Help:    "Time to apply one revert.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		pruned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "echain_indexer_store_pruned_versions_total",
			Help: "Old entity versions deleted by history pruning, by entity type.",
		}, []string{"entity"}),
		pruneSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "echain_indexer_store_prune_seconds",
			Help:    "Time of one pruning pass.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "echain_indexer_store_entity_lookups_total",
			Help: "Batch.Get lookups by where they were answered: batch, cache or database.",
		}, []string{"source"}),
	}
	if reg != nil {
		m.commitSeconds = register(reg, m.commitSeconds)
		m.versions = register(reg, m.versions)
		m.reverts = register(reg, m.reverts)
		m.revertedBlocks = register(reg, m.revertedBlocks)
		m.revertSeconds = register(reg, m.revertSeconds)
		m.pruned = register(reg, m.pruned)
		m.pruneSeconds = register(reg, m.pruneSeconds)
		m.lookups = register(reg, m.lookups)
	}
	return m
}

// register adds c, or returns the collector already registered under its name (two stores in
// one process share their metrics).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err) // a programming error: a clashing metric name
	}
	return c
}
