package ddl

import "github.com/echain/echain-indexer/schema"

// This file is the one place that spells the database layout: the schema and table names, the
// system columns of the versioned entity tables, and every SQL fragment that reads or writes a
// version's block range (graph-node keeps these in block_range.rs; go-ethereum declares every
// key in core/rawdb/schema.go). Only package store and this package use the system tables;
// readers elsewhere (the GraphQL engine, subscriptions, the status command, test helpers) take
// table names and block-range conditions from here and the cursor and window from store's
// accessors (store/layout.go). To change how a version records its blocks, change this file and
// the writer in store; nothing else spells it.

// Schemas and roles of the layout.
const (
	SystemSchema = "indexer"       // the cursor, the block window and the store's bookkeeping (migrations/)
	EntitySchema = "entities"      // versioned entity tables
	ViewSchema   = "echain"        // analyst views of current state
	ReaderRole   = "echain_reader" // read-only role for the views
)

// System tables, created by migrations/NNNN_*.sql (columns in docs/ARCHITECTURE.md).
const (
	HeadTable          = SystemSchema + ".head"              // one row: the cursor
	BlocksTable        = SystemSchema + ".blocks"            // the unfinalized window
	ClampsTable        = SystemSchema + ".clamps"            // versions closed per block, for reverts
	DataSourcesTable   = SystemSchema + ".data_sources"      // contracts learned from logs
	EntitySchemaTable  = SystemSchema + ".entity_schema"     // the layout fingerprint
	ResyncTable        = SystemSchema + ".resync_requests"   // operator resync requests
	IndexingErrorTable = SystemSchema + ".indexing_errors"   // handler failures by block
	MetadataCacheTable = SystemSchema + ".metadata_cache"    // fetched metadata documents
	MigrationsTable    = SystemSchema + ".schema_migrations" // applied migrations
)

// System columns of the entity tables. A schema field whose column would take one of these
// names is rejected.
const (
	ColVid        = "vid"         // version id, assigned by the writer in block order
	ColBlockRange = "block_range" // mutable tables: the blocks a version is visible at (int4range)
	ColBlock      = "block"       // immutable tables: the block the entity was created at (int4)
	ColViewBlock  = "_block"      // views: the block the shown version was written at
)

// TableName is the schema-qualified, quoted table of an entity type, e.g. "entities"."ticket".
func TableName(t *schema.EntityType) string { return Quote(EntitySchema) + "." + Quote(t.Table) }

// SystemColumns are the columns every version of t carries before its fields, in table order:
// the version id and its block range (mutable) or creation block (immutable).
func SystemColumns(t *schema.EntityType) []string {
	if t.Immutable {
		return []string{ColVid, ColBlock}
	}
	return []string{ColVid, ColBlockRange}
}

// The fragments below take the alias a statement reads the table through ("" for an unqualified
// column, which they quote as the DDL does) and block numbers as SQL expressions of type int4
// (a parameter such as "$1::int4", a literal, or a column). Every one keeps the shape the
// indexes were built for: `upper_inf(block_range)` is the predicate of the partial indexes on
// current rows, and `lower(block_range)` is the second key of the (id, lower(block_range))
// index.

func column(alias, name string) string {
	if alias == "" {
		return Quote(name)
	}
	return alias + "." + name
}

// Current is the condition that a version of a mutable table is the latest one.
func Current(alias string) string { return "upper_inf(" + column(alias, ColBlockRange) + ")" }

// Visible is the condition that a version of a table of t read through alias is visible at block
// at; at == "" asks for the current state. It is "" when every row qualifies (an immutable table
// read at the head).
func Visible(t *schema.EntityType, alias, at string) string {
	switch {
	case t.Immutable && at == "":
		return ""
	case t.Immutable:
		return column(alias, ColBlock) + " <= " + at
	case at == "":
		return Current(alias)
	}
	return column(alias, ColBlockRange) + " @> " + at
}

// VersionStart is the block a version was written at: the lower bound of its range, or the
// creation block of an immutable entity.
func VersionStart(t *schema.EntityType, alias string) string {
	if t.Immutable {
		return column(alias, ColBlock)
	}
	return "lower(" + column(alias, ColBlockRange) + ")"
}

// ChangedSince is the condition that a version was written at block from or later
// (`_change_block: {number_gte}`).
func ChangedSince(t *schema.EntityType, alias, from string) string {
	return VersionStart(t, alias) + " >= " + from
}

// WrittenAfter is the condition that a version was written after block b (a revert deletes it).
func WrittenAfter(t *schema.EntityType, alias, b string) string {
	return VersionStart(t, alias) + " > " + b
}

// ClosedAfter is the condition that a mutable version was superseded after block b (a revert
// reopens it).
func ClosedAfter(alias, b string) string {
	br := column(alias, ColBlockRange)
	return "NOT upper_inf(" + br + ") AND upper(" + br + ") > " + b
}

// OpenFrom is the value of a new mutable version's block range: visible from block from on.
func OpenFrom(from string) string { return BlockRange(from, "NULL") }

// BlockRange is the value of a mutable version's block range: visible from block from until
// block to (exclusive; "NULL" while current).
func BlockRange(from, to string) string { return "int4range(" + from + ", " + to + ")" }

// EndAt assigns a mutable version's block range its end: visible until block upper
// (exclusive), or again open-ended when upper is "NULL" (a revert reopening it). alias is the
// table's alias in the UPDATE, "" when it has none.
func EndAt(alias, upper string) string {
	return Quote(ColBlockRange) + " = int4range(lower(" + column(alias, ColBlockRange) + "), " + upper + ")"
}
