package indexer

import (
	"log/slog"
	"sync"

	"github.com/echain/echain-indexer/indexer/source"
)

// transactions were.
func (fl *Follower) observeDensity(j *rangeJob, contents []source.BlockContent, stats source.TxStats) {
	blocks := float64(j.to - j.from + 1)
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
	if stats.Blocks == 0 {
		// No block said how many transactions it holds (no handled logs, or no block receipts):
		// count a transaction per block, enough to say "not worth the receipts".
		fl.rcptMode.observe(fl.log, float64(wanted), max(blocks, float64(wanted)))
		return
	}
	// Blocks without handled logs hold about as many transactions as those with.
	perBlock := float64(stats.BlockTxs) / float64(stats.Blocks)
	all := float64(stats.BlockTxs) + (blocks-float64(stats.Blocks))*perBlock
	fl.rcptMode.observe(fl.log, float64(stats.Wanted), max(all, float64(stats.Wanted)))
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

func (m *receiptsMode) observe(log *slog.Logger, wanted, all float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.wanted = m.wanted*receiptsKeep + wanted
	m.all = m.all*receiptsKeep + all
	m.ranges++
	if m.never || m.setting != LogSourceAuto || m.ranges < 2 || m.all <= 0 {
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
