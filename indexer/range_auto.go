package indexer

import (
	"context"
	"log/slog"
	"sync"

	"github.com/echain/echain-indexer/indexer/source"
)

// densitySample is how many blocks without handled logs have their transactions counted per
// range in getLogs mode, for receiptsMode's estimate.
const densitySample = 16

// decideBlocks caps the size of the ranges fetched while auto has no observation yet, and
// decideProbes how many of them are fetched one at a time for it.
const (
	decideBlocks = 32
	decideProbes = 3
)

// observeDensity feeds receiptsMode with how much of the range's blocks the handled
// transactions were.
func (fl *Follower) observeDensity(ctx context.Context, j *rangeJob, contents []source.BlockContent, stats source.TxStats) {
	blocks := int(j.to - j.from + 1)
	wanted := 0
	for _, blk := range j.blocks {
		wanted += len(blk.Txs)
	}
	if contents != nil {
		all := 0
		for i := range contents {
			all += len(contents[i].Txs)
		}
		fl.rcptMode.observe(fl.log, float64(wanted), float64(all))
		return
	}
	if !fl.rcptMode.deciding() {
		return // nothing to decide: spare the node the counts
	}
	if stats.Blocks == 0 {
		// No block said how many transactions it holds (no handled logs, or no block receipts):
		// count a transaction per block, enough to say "not worth the receipts".
		fl.rcptMode.observe(fl.log, float64(wanted), float64(max(blocks, wanted)))
		return
	}
	// Counting the quiet blocks can only add transactions, lowering the share: where the share
	// without them already stays below the switch, the counts would not change the decision.
	if known := rangeTxs(blocks, len(j.blocks), wanted, stats, nil); !fl.rcptMode.couldSwitchOn(float64(wanted), known) {
		fl.rcptMode.observe(fl.log, float64(wanted), known)
		return
	}
	var counts []uint64
	if sample := sampleQuietBlocks(j.from, j.to, j.blocks, densitySample); len(sample) > 0 {
		var err error
		if counts, err = fl.src.BlockTxCounts(ctx, sample); err != nil {
			fl.log.Debug("backfill: block transaction counts unavailable; range not observed", "from", j.from, "to", j.to, "err", err)
			return
		}
	}
	fl.rcptMode.observe(fl.log, float64(wanted), rangeTxs(blocks, len(j.blocks), wanted, stats, counts))
}

// rangeTxs estimates how many transactions a range's blocks hold in getLogs mode, where only
// some counts are known: those of the blocks with handled logs whose receipts the node sent
// (stats), exactly; the other blocks with handled logs at the handled share measured in those;
// and the blocks without handled logs, which may be empty (a quiet chain) or full of other
// contracts' transactions (a public one), by the mean of a sample of their counts.
func rangeTxs(blocks, logBlocks, wanted int, stats source.TxStats, quietSample []uint64) float64 {
	all := float64(stats.BlockTxs)
	if rest := wanted - stats.Wanted; rest > 0 && stats.Wanted > 0 {
		all += float64(rest) * float64(stats.BlockTxs) / float64(stats.Wanted)
	}
	if quiet := blocks - logBlocks; quiet > 0 && len(quietSample) > 0 {
		var sum uint64
		for _, n := range quietSample {
			sum += n
		}
		all += float64(quiet) * float64(sum) / float64(len(quietSample))
	}
	return max(all, float64(wanted))
}

// sampleQuietBlocks picks up to k numbers of from..to without handled logs (blocks lists those
// with), spread evenly over the range.
func sampleQuietBlocks(from, to int64, blocks []*Block, k int) []uint64 {
	busy := make(map[int64]bool, len(blocks))
	for _, b := range blocks {
		busy[b.Ptr.Number] = true
	}
	quiet := int(to-from+1) - len(busy)
	if quiet <= 0 || k <= 0 {
		return nil
	}
	step := max(1, quiet/k)
	var out []uint64
	i := 0
	for n := from; n <= to && len(out) < k; n++ {
		if busy[n] {
			continue
		}
		if i%step == 0 {
			out = append(out, uint64(n))
		}
		i++
	}
	return out
}

// receiptsMode decides whether backfill ranges take their logs and transactions from the
// blocks' receipts (source.BlockContents: eth_getBlockReceipts + the block with its
// transactions, per block) instead of eth_getLogs plus receipts and transactions of the blocks
// with handled logs. The receipts carry every log, so where the handled transactions are most
// of the blocks' transactions (a chain or a stretch of history that is mostly ours) the
// eth_getLogs call is work the node does twice; where they are few (a public chain: Base's
// blocks hold hundreds of other transactions) receipts for every block would cost far more.
// The choice follows the measured share of handled transactions among the blocks'
// transactions, with hysteresis, in both modes.
type receiptsMode struct {
	setting     string // Config.BackfillLogSource
	mu          sync.Mutex
	wanted, all float64 // decayed transaction counts: handled ones, all in the ranges' blocks
	ranges      int
	on, never   bool
}

const (
	receiptsEnter = 0.75 // handled share of the blocks' transactions to switch to receipts
	receiptsLeave = 0.5  // and back to eth_getLogs
	receiptsKeep  = 0.5  // decay per observed range
)

// deciding reports whether observations can still switch the mode (auto, receipts available).
func (m *receiptsMode) deciding() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.setting == LogSourceAuto && !m.never
}

// undecided reports whether auto has not observed a range yet: its choice is still the
// default, eth_getLogs, whatever the chain.
func (m *receiptsMode) undecided() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.setting == LogSourceAuto && !m.never && m.ranges == 0
}

func (m *receiptsMode) use() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.never || m.setting == LogSourceLogs:
		return false
	case m.setting == LogSourceReceipts:
		return true
	}
	return m.on
}

// unsupported turns receipts mode off for good: the endpoint cannot serve it.
func (m *receiptsMode) unsupported(log *slog.Logger, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.never {
		log.Info("backfill log source: eth_getLogs (block receipts unavailable)", "err", err)
	}
	m.never = true
}

// couldSwitchOn reports whether observing a range of wanted handled transactions among at
// least atLeast could switch receipts mode on (the more transactions, the lower the share).
func (m *receiptsMode) couldSwitchOn(wanted, atLeast float64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	all := m.all*receiptsKeep + atLeast
	return !m.on && all > 0 && (m.wanted*receiptsKeep+wanted)/all >= receiptsEnter
}

func (m *receiptsMode) observe(log *slog.Logger, wanted, all float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.wanted = m.wanted*receiptsKeep + wanted
	m.all = m.all*receiptsKeep + all
	m.ranges++
	if m.never || m.setting != LogSourceAuto || m.all <= 0 {
		return
	}
	share := m.wanted / m.all
	switch {
	case !m.on && share >= receiptsEnter:
		m.on = true
		log.Info("backfill log source: block receipts", "handled_tx_share", round1(share*100)/100)
	case m.on && share < receiptsLeave:
		m.on = false
		log.Info("backfill log source: eth_getLogs", "handled_tx_share", round1(share*100)/100)
	}
}
