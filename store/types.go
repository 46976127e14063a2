package store

import "github.com/ethereum/go-ethereum/common"

// BlockPtr identifies a block the store has applied or is about to apply.
type BlockPtr struct {
	Number     int64
	Hash       common.Hash
	ParentHash common.Hash
	Timestamp  int64 // unix seconds
}

// DataSource is a contract the indexer learned from a log (a subgraph "template" instance): for
// Echain, the EventTicket clone an EventCreated announces. It is versioned with the chain: a
// revert below Block forgets it.
type DataSource struct {
	Template string         // template name, e.g. "EventTicket"
	Address  common.Address // the contract to follow from Block on
	Block    int64          // block of the log that created it
	Key      string         // template parameter, e.g. the event id
}
