package indexer

import (
	"context"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/jackc/pgx/v5"

	"github.com/echain/echain-indexer/indexer/source"
	"github.com/echain/echain-indexer/store"
)

// The follower reaches the node and the database through these two narrow views; wire.go maps
// them onto indexer/source and store. Keeping them small documents exactly what the follower
// relies on from each.

// chainSource is what the follower asks of the RPC layer.
type chainSource interface {
	// HeaderByNumber returns the canonical header at number (nil: latest); a nil header with a
	// nil error means the node does not have it.
	HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error)
	// HeaderByHash is like HeaderByNumber, by hash.
	HeaderByHash(ctx context.Context, hash common.Hash) (*types.Header, error)
	// Finalized is the node's finalized header.
	Finalized(ctx context.Context) (*types.Header, error)
	// Logs runs eth_getLogs; an oversized range fails with an error rangeHint understands.
	Logs(ctx context.Context, q ethereum.FilterQuery) ([]types.Log, error)
	// TxsManyStats returns transaction data for transactions of several blocks, in few
	// batches, and how much of those blocks they are where the node said.
	TxsManyStats(ctx context.Context, reqs []source.TxRequest) (map[common.Hash]*Tx, source.TxStats, error)
	// BlockContents returns every log and transaction of blocks from..to from their receipts;
	// the error matches source.ErrReceiptsUnsupported when the node cannot.
	BlockContents(ctx context.Context, from, to uint64) ([]source.BlockContent, error)
	// TxBlock locates a transaction; found is false when the node does not know it.
	TxBlock(ctx context.Context, tx common.Hash) (number uint64, blockHash common.Hash, found bool, err error)
	// SubscribeNewHeads delivers new heads until ctx ends, reconnecting and polling by itself.
	SubscribeNewHeads(ctx context.Context) (<-chan *types.Header, error)
	// NewRangeSizer returns a fresh adaptive getLogs range sizer.
	NewRangeSizer(cfg source.RangeSizerConfig) rangeSizer
	// Endpoints reports each endpoint's head and health, for Status.
	Endpoints() []source.EndpointStatus
}

// rangeSizer picks backfill range lengths from how earlier ones went (*source.RangeSizer).
type rangeSizer interface {
	// Next is the end of the range starting at from, at most limit.
	Next(from, limit uint64) uint64
	// Success reports a range answered with logs logs in took.
	Success(blocks uint64, logs int, took time.Duration)
	// Failure shrinks after a too-large error and returns the end of the range to retry from
	// `from`; ok is false when err is not about size or the range cannot shrink.
	Failure(from, to uint64, err error) (retryTo uint64, ok bool)
}

// storage is what the follower asks of the store.
type storage interface {
	Head(ctx context.Context) (*store.BlockPtr, error)
	Window(ctx context.Context) ([]store.BlockPtr, error)
	DataSources(ctx context.Context) ([]store.DataSource, error)
	NewBatch() writeBatch
	// Commit writes the batch's versions, the window, the new data sources and the cursor in
	// one transaction.
	Commit(ctx context.Context, b writeBatch, c commitInfo) error
	// RevertTo undoes every block after `to` in one transaction.
	RevertTo(ctx context.Context, to store.BlockPtr) error
	EnsureIndexes(ctx context.Context) error
	// LockConnConfig is the configuration of the dedicated leader-lock connection.
	LockConnConfig() *pgx.ConnConfig
	RequestResync(ctx context.Context, from int64) (int64, error)
	NextResync(ctx context.Context) (*resyncRequest, error)
	FinishResync(ctx context.Context, id int64, errMsg string) error
	GetResync(ctx context.Context, id int64) (*resyncRequest, error)
}

// writeBatch is the store's per-commit entity cache.
type writeBatch interface {
	Batch
	StartBlock(ptr store.BlockPtr)
}

// commitInfo mirrors store.Commit.
type commitInfo struct {
	Head      store.BlockPtr
	Window    []store.BlockPtr
	Finalized int64
}

// resyncRequest mirrors a row of the store's re-sync request table.
type resyncRequest struct {
	ID        int64
	FromBlock int64
	Status    string // pending, done, failed
	Error     string
}
