package indexer

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	chainHead, indexed, finalized, lagBlocks, lagSeconds prometheus.Gauge
	blocks, logs                                         *prometheus.CounterVec
	commitSeconds                                        *prometheus.HistogramVec
	headToCommit                                         prometheus.Histogram
	backfillTarget, backfillBlocksPerSec                 prometheus.Gauge
	backfillLogsPerSec, backfillETA                      prometheus.Gauge
	rangeSplits                                          prometheus.Counter
	backfillRanges                                       *prometheus.CounterVec
	reorgs, reorgTooDeep                                 prometheus.Counter
	reorgDepth, reorgSeconds                             prometheus.Histogram
	hints                                                *prometheus.CounterVec
	hintLead                                             prometheus.Histogram
	leader                                               prometheus.Gauge
	leaderAcquired                                       prometheus.Counter
	failures                                             *prometheus.CounterVec
	resyncs                                              prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: "echain_indexer_" + name, Help: help})
	}
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "echain_indexer_" + name, Help: help})
	}
	m := &metrics{
		chainHead:  g("chain_head_block", "Number of the latest head the node announced."),
		indexed:    g("indexed_block", "Number of the last block committed to the store (the cursor)."),
		finalized:  g("finalized_block", "Number of the latest block treated as final."),
		lagBlocks:  g("lag_blocks", "Blocks between the chain head and the indexed block."),
		lagSeconds: g("lag_seconds", "Seconds between now and the timestamp of the indexed block."),
		blocks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "echain_indexer_blocks_indexed_total",
			Help: "Blocks committed, by mode (backfill, realtime, hint)."}, []string{"mode"}),
		logs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "echain_indexer_logs_indexed_total",
			Help: "Handled logs committed, by mode."}, []string{"mode"}),
		commitSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "echain_indexer_commit_duration_seconds",
			Help: "Time to apply and commit one batch, by mode.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}, []string{"mode"}),
		headToCommit: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "echain_indexer_head_to_commit_seconds",
			Help: "From a head (or hint) arriving to its block being committed.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		backfillTarget:       g("backfill_target_block", "Last block of the running backfill."),
		backfillBlocksPerSec: g("backfill_blocks_per_second", "Backfill speed in blocks per second since it started."),
		backfillLogsPerSec:   g("backfill_logs_per_second", "Backfill speed in handled logs per second since it started."),
		backfillETA:          g("backfill_eta_seconds", "Estimated seconds until the backfill reaches its target."),
		rangeSplits:          c("getlogs_range_splits_total", "eth_getLogs ranges split because the provider called them too large."),
		backfillRanges: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "echain_indexer_backfill_ranges_total",
			Help: "Backfill ranges fetched, by log source: logs (eth_getLogs) or receipts (every block's receipts)."}, []string{"source"}),
		reorgs:       c("reorgs_total", "Chain reorganisations handled."),
		reorgTooDeep: c("reorg_too_deep_total", "Reorganisations deeper than the kept window (indexing stopped)."),
		reorgDepth: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "echain_indexer_reorg_depth_blocks",
			Help: "Depth of handled reorganisations in blocks.", Buckets: []float64{1, 2, 3, 5, 8, 13, 21, 34, 64, 128}}),
		reorgSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "echain_indexer_reorg_revert_seconds",
			Help: "From detecting a reorganisation to the store reverted to the common ancestor.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		hints: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "echain_indexer_hints_total",
			Help: "Webhook hints by outcome: useful (advanced the cursor), stale, unknown (node lacks the block or tx), mismatch, dropped, failed."}, []string{"result"}),
		hintLead: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "echain_indexer_hint_lead_seconds",
			Help: "How long before its newHeads notification a useful hint had committed the block.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}),
		leader:         g("leader", "1 while this process holds the indexing lock."),
		leaderAcquired: c("leader_acquired_total", "Times this process became the indexing leader."),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "echain_indexer_step_failures_total",
			Help: "Failed indexing steps retried with backoff, by stage."}, []string{"stage"}),
		resyncs: c("resyncs_total", "Re-sync requests carried out."),
	}
	for _, col := range []prometheus.Collector{m.chainHead, m.indexed, m.finalized, m.lagBlocks, m.lagSeconds, m.blocks, m.logs,
		m.commitSeconds, m.headToCommit, m.backfillTarget, m.backfillBlocksPerSec, m.backfillLogsPerSec, m.backfillETA,
		m.rangeSplits, m.backfillRanges, m.reorgs, m.reorgTooDeep, m.reorgDepth, m.reorgSeconds, m.hints, m.hintLead, m.leader, m.leaderAcquired,
		m.failures, m.resyncs} {
		if err := reg.Register(col); err != nil {
			return nil, err
		}
	}
	return m, nil
}
