package indexer

import (
	"fmt"
	"time"

	"github.com/echain/echain-indexer/indexer/source"
)

// Config tunes the follower. Zero values take the defaults named on each field.
type Config struct {
	// StartBlock is the first block indexed; 0 means the lowest StartBlock of the handler's contracts.
	StartBlock int64
	// FinalityDepth: blocks this far below the chain head are final when UseFinalizedTag is off
	// (default 64). It bounds the reorgs the follower can undo.
	FinalityDepth int64
	// UseFinalizedTag takes finality from the node's `finalized` block instead of a depth. Leave it
	// off on the dev chain: its simulated tag follows 32-block epochs that forks ignore.
	UseFinalizedTag bool
	// Range tunes the adaptive eth_getLogs range sizing of the backfill.
	Range source.RangeSizerConfig
	// BackfillLogSource is where backfill ranges get their logs: "logs" (eth_getLogs, then the
	// receipts and transactions of the blocks with handled logs), "receipts" (every block's
	// receipts and transactions, which carry all its logs: no eth_getLogs), or "auto" (default:
	// receipts while the handled transactions are most of the blocks' transactions, as on a
	// chain or stretch of history that is mostly ours; eth_getLogs otherwise, as on Base).
	BackfillLogSource string
	// BackfillConcurrency is the number of block ranges fetched at once (default 3).
	BackfillConcurrency int
	// AddressChunk caps the addresses of one eth_getLogs (default 1000, geth's own limit).
	AddressChunk int
	// BackfillMinBlocks: the follower backfills (range getLogs) when the final part of the chain it
	// has not indexed is at least this long (default 100); shorter gaps go block by block.
	BackfillMinBlocks int64
	// MaxBlocksPerCommit bounds how many blocks one realtime catch-up transaction covers (default 50).
	MaxBlocksPerCommit int
	// ProgressInterval is how often backfill progress is logged (default 5s).
	ProgressInterval time.Duration
	// LeaderLockKey is the PostgreSQL advisory lock key that elects the indexing process.
	LeaderLockKey int64
	// LeaderCheckInterval is how often the leader checks that its lock connection is alive (1s).
	LeaderCheckInterval time.Duration
	// ResyncPoll is how often the leader looks for re-sync requests (default 1s).
	ResyncPoll time.Duration
	// FinalizedRefresh bounds how often the node's finalized block is asked for (default 2s).
	FinalizedRefresh time.Duration
	// RetryBackoff is the first wait after a failed step; it doubles up to RetryBackoffMax
	// (defaults 250ms and 15s).
	RetryBackoff, RetryBackoffMax time.Duration
	// HintQueue is the capacity of the hint queue; hints beyond it are dropped (default 256).
	HintQueue int
}

// Config.BackfillLogSource values.
const (
	LogSourceAuto     = "auto"
	LogSourceLogs     = "logs"
	LogSourceReceipts = "receipts"
)

// DefaultLeaderLockKey is the advisory lock key ("echidx" in ASCII) the indexing processes of one
// database compete for.
const DefaultLeaderLockKey int64 = 0x6563686964780001

func (c Config) withDefaults() Config {
	if c.FinalityDepth == 0 {
		c.FinalityDepth = 64
	}
	if c.BackfillLogSource == "" {
		c.BackfillLogSource = LogSourceAuto
	}
	if c.BackfillConcurrency == 0 {
		c.BackfillConcurrency = 3
	}
	if c.AddressChunk == 0 {
		c.AddressChunk = 1000
	}
	if c.BackfillMinBlocks == 0 {
		c.BackfillMinBlocks = 100
	}
	if c.MaxBlocksPerCommit == 0 {
		c.MaxBlocksPerCommit = 50
	}
	if c.ProgressInterval == 0 {
		c.ProgressInterval = 5 * time.Second
	}
	if c.LeaderLockKey == 0 {
		c.LeaderLockKey = DefaultLeaderLockKey
	}
	if c.LeaderCheckInterval == 0 {
		c.LeaderCheckInterval = time.Second
	}
	if c.ResyncPoll == 0 {
		c.ResyncPoll = time.Second
	}
	if c.FinalizedRefresh == 0 {
		c.FinalizedRefresh = 2 * time.Second
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = 250 * time.Millisecond
	}
	if c.RetryBackoffMax == 0 {
		c.RetryBackoffMax = 15 * time.Second
	}
	if c.HintQueue == 0 {
		c.HintQueue = 256
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.StartBlock < 0:
		return fmt.Errorf("indexer config: StartBlock %d is negative", c.StartBlock)
	case c.FinalityDepth < 1:
		return fmt.Errorf("indexer config: FinalityDepth %d must be at least 1", c.FinalityDepth)
	case c.BackfillLogSource != LogSourceAuto && c.BackfillLogSource != LogSourceLogs && c.BackfillLogSource != LogSourceReceipts:
		return fmt.Errorf("indexer config: BackfillLogSource %q: want %q, %q or %q", c.BackfillLogSource, LogSourceAuto, LogSourceLogs, LogSourceReceipts)
	case c.BackfillConcurrency < 1:
		return fmt.Errorf("indexer config: BackfillConcurrency %d must be at least 1", c.BackfillConcurrency)
	case c.AddressChunk < 1:
		return fmt.Errorf("indexer config: AddressChunk %d must be at least 1", c.AddressChunk)
	case c.MaxBlocksPerCommit < 1:
		return fmt.Errorf("indexer config: MaxBlocksPerCommit %d must be at least 1", c.MaxBlocksPerCommit)
	}
	return nil
}
