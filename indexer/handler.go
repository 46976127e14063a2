package indexer

import (
	"context"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/echain/echain-indexer/indexer/source"
	"github.com/echain/echain-indexer/store"
)

// Block is one block as the follower hands it to the mappings.
type Block struct {
	Ptr  store.BlockPtr
	Logs []types.Log // the handled logs of the block in logIndex order; none removed
	// Txs are every transaction that emitted one of Logs, calldata included, filled before
	// Prepare.
	Txs map[common.Hash]*Tx
	// Sources are the template instances (data sources learned by Discover) that emitted Logs,
	// by address: how a clone's log finds its event.
	Sources map[common.Address]store.DataSource
	Extra   any // whatever Handler.Prepare attached for Apply
}

// Tx is what the Transaction entity needs from a transaction and its receipt.
type Tx = source.Tx

// Contract is a data source at a fixed address.
type Contract struct {
	Name       string
	Address    common.Address
	StartBlock uint64
	Topics     []common.Hash // topic0 values the mappings handle
}

// Template is a data source whose addresses are learned from logs (Handler.Discover).
type Template struct {
	Name   string
	Topics []common.Hash
}

// Batch is what the mappings write to: the store's entity cache for the block or range being
// applied. *store.Batch implements it.
type Batch interface {
	Get(ctx context.Context, typ string, id string) ([]any, error) // nil row when absent
	Set(typ string, row []any)
	AddDataSource(ds store.DataSource)
}

// Handler turns logs into entity changes. The follower knows nothing of Echain beyond it.
type Handler interface {
	// Contracts are the fixed-address data sources.
	Contracts() []Contract
	// Templates are the data sources created by logs.
	Templates() []Template
	// Discover returns the data sources a log creates, so that their logs are fetched from the
	// same block on. It must be a pure function of the log.
	Discover(log *types.Log) []store.DataSource
	// Prepare fetches what Apply needs beyond logs and transactions (contract calls; nothing
	// that may hang, see LateWriter) for blocks about to be applied, into Block.Extra. It may
	// run concurrently for different ranges; it runs after the follower filled Block.Txs, so it
	// reads the transactions there rather than asking the node again; it must not write
	// entities.
	Prepare(ctx context.Context, blocks []*Block) error
	// Apply runs one block's logs through the mappings, in log order.
	Apply(ctx context.Context, blk *Block, b Batch) error
}

// LateWriter is an optional Handler interface for entity changes that come from no log and are
// learned in the background (the Echain mappings' metadata documents), so that no block waits for
// them.
type LateWriter interface {
	// WriteLate runs in every commit after the commit's blocks are applied, with b positioned at
	// the commit's head block: what it sets becomes a version at that block. It must write only
	// what is ready and never wait for more.
	WriteLate(ctx context.Context, head store.BlockPtr, b Batch) error
	// Reverted says the store lost every block after `to` (a reorg or a re-sync), and with them
	// whatever WriteLate wrote there.
	Reverted(to int64)
}
