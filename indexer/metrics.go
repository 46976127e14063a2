package indexer

import (
	"github.com/prometheus/client_golang/prometheus"

	pm "github.com/echain/echain-indexer/metrics"
)

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
	f := pm.With(reg)
	g, c := f.Gauge, f.Counter
	m := &metrics{
		chainHead:            g("chain_head_block", "Number of the latest head the node announced."),
		indexed:              g("indexed_block", "Number of the last block committed to the store (the cursor)."),
		finalized:            g("finalized_block", "Number of the latest block treated as final."),
		lagBlocks:            g("lag_blocks", "Blocks between the chain head and the indexed block."),
		lagSeconds:           g("lag_seconds", "Seconds between now and the timestamp of the indexed block."),
		blocks:               f.CounterVec("blocks_indexed_total", "Blocks committed, by mode (backfill, realtime, hint).", "mode"),
		logs:                 f.CounterVec("logs_indexed_total", "Handled logs committed, by mode.", "mode"),
		commitSeconds:        f.HistogramVec("commit_duration_seconds", "Time to apply and commit one batch, by mode.", prometheus.ExponentialBuckets(0.001, 2, 16), "mode"),
		headToCommit:         f.Histogram("head_to_commit_seconds", "From a head (or hint) arriving to its block being committed.", prometheus.ExponentialBuckets(0.001, 2, 14)),
		backfillTarget:       g("backfill_target_block", "Last block of the running backfill."),
		backfillBlocksPerSec: g("backfill_blocks_per_second", "Backfill speed in blocks per second since it started."),
		backfillLogsPerSec:   g("backfill_logs_per_second", "Backfill speed in handled logs per second since it started."),
		backfillETA:          g("backfill_eta_seconds", "Estimated seconds until the backfill reaches its target."),
		rangeSplits:          c("getlogs_range_splits_total", "eth_getLogs ranges split because the provider called them too large."),
		backfillRanges:       f.CounterVec("backfill_ranges_total", "Backfill ranges fetched, by log source: logs (eth_getLogs) or receipts (every block's receipts).", "source"),
		reorgs:               c("reorgs_total", "Chain reorganisations handled."),
		reorgTooDeep:         c("reorg_too_deep_total", "Reorganisations deeper than the kept window (indexing stopped)."),
		reorgDepth:           f.Histogram("reorg_depth_blocks", "Depth of handled reorganisations in blocks.", []float64{1, 2, 3, 5, 8, 13, 21, 34, 64, 128}),
		reorgSeconds:         f.Histogram("reorg_revert_seconds", "From detecting a reorganisation to the store reverted to the common ancestor.", prometheus.ExponentialBuckets(0.001, 2, 14)),
		hints:                f.CounterVec("hints_total", "Webhook hints by outcome: useful (advanced the cursor), stale, unknown (node lacks the block or tx), mismatch, dropped, failed.", "result"),
		hintLead:             f.Histogram("hint_lead_seconds", "How long before its newHeads notification a useful hint had committed the block.", prometheus.ExponentialBuckets(0.005, 2, 12)),
		leader:               g("leader", "1 while this process holds the indexing lock."),
		leaderAcquired:       c("leader_acquired_total", "Times this process became the indexing leader."),
		failures:             f.CounterVec("step_failures_total", "Failed indexing steps retried with backoff, by stage.", "stage"),
		resyncs:              c("resyncs_total", "Re-sync requests carried out."),
	}
	if err := f.Err(); err != nil {
		return nil, err
	}
	return m, nil
}
