package store

import (
	"github.com/prometheus/client_golang/prometheus"

	pm "github.com/echain/echain-indexer/metrics"
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
	f := pm.With(reg)
	m := &metrics{
		commitSeconds:  f.Histogram("store_commit_seconds", "Time to flush one batch (versions, window, cursor) in one transaction.", prometheus.ExponentialBuckets(0.001, 2, 16)),
		versions:       f.CounterVec("store_versions_written_total", "Entity versions written, by entity type.", "entity"),
		reverts:        f.Counter("store_reverts_total", "Reverts applied (reorgs)."),
		revertedBlocks: f.Counter("store_reverted_blocks_total", "Blocks undone by reverts."),
		revertSeconds:  f.Histogram("store_revert_seconds", "Time to apply one revert.", prometheus.ExponentialBuckets(0.001, 2, 14)),
		pruned:         f.CounterVec("store_pruned_versions_total", "Old entity versions deleted by history pruning, by entity type.", "entity"),
		pruneSeconds:   f.Histogram("store_prune_seconds", "Time of one pruning pass.", prometheus.ExponentialBuckets(0.001, 2, 16)),
		lookups:        f.CounterVec("store_entity_lookups_total", "Batch.Get lookups by where they were answered: batch, cache or database.", "source"),
	}
	if err := f.Err(); err != nil {
		panic(err) // a programming error: a clashing metric name
	}
	return m
}
