package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/jackc/pgx/v5"

	"github.com/echain/echain-indexer/store/ddl"
)

// The accessors below are how readers outside the store (the GraphQL engine, subscriptions, the
// status command, tests) see the system tables: names and block-range fragments are declared in
// store/ddl/layout.go, and only this package reads or writes the tables. Each accessor takes the
// Querier (replica.go) it runs on, so a reader can use it inside its own snapshot (a REPEATABLE READ
// transaction, a dedicated LISTEN connection) rather than the store's pool.

// ReadCursor is the cursor as a reader's snapshot sees it.
type ReadCursor struct {
	Head        *ReadBlock // nil before the indexer applied its first block
	HistoryFrom int64      // time travel is exact from this block on
	ErrorBlock  *int64     // lowest block with a recorded indexing error
	Finalized   int64      // blocks at or below are final and outside the window (-1: none)
}

// ReadBlock is a block the store keeps (the cursor or a block of the unfinalized window).
type ReadBlock struct {
	Number           int64
	Hash, ParentHash []byte
	Timestamp        *int64
}

// CursorQuery is the statement ScanCursor reads. pre are select items evaluated before the
// cursor columns (a reader sets its transaction's settings in the same statement, so the
// snapshot begins, is configured and reads the cursor in one round trip); ScanCursor scans them
// into its preDest. The statement returns one row also before migration fills the cursor.
func CursorQuery(pre ...string) string {
	items := append(append([]string{}, pre...),
		`h.number, h.hash, h.parent_hash, h."timestamp", h.history_from, (SELECT min(block) FROM `+ddl.IndexingErrorTable+`), coalesce(h.finalized, -1)`)
	return "SELECT " + strings.Join(items, ", ") + "\nFROM (SELECT 1) one LEFT JOIN " + ddl.HeadTable + " h ON true"
}

// ScanCursor scans the row of CursorQuery; preDest receive the pre items.
func ScanCursor(row pgx.Row, preDest ...any) (ReadCursor, error) {
	var (
		c                              ReadCursor
		number, ts, histFrom, errBlock *int64
		hash, parent                   []byte
	)
	dest := append(append([]any{}, preDest...), &number, &hash, &parent, &ts, &histFrom, &errBlock, &c.Finalized)
	if err := row.Scan(dest...); err != nil {
		return c, fmt.Errorf("store: read the cursor: %w", notMigrated(err))
	}
	if number != nil {
		c.Head = &ReadBlock{Number: *number, Hash: hash, ParentHash: parent, Timestamp: ts}
	}
	if histFrom != nil {
		c.HistoryFrom = *histFrom
	}
	c.ErrorBlock = errBlock
	return c, nil
}

// ReadHead reads the last applied block through q; nil before the first.
func ReadHead(ctx context.Context, q Querier) (*BlockPtr, error) {
	var num, ts *int64
	var hash, parent []byte
	err := q.QueryRow(ctx, `SELECT number, hash, parent_hash, "timestamp" FROM `+ddl.HeadTable).Scan(&num, &hash, &parent, &ts)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: read head: %w", notMigrated(err))
	}
	if num == nil {
		return nil, nil
	}
	p := &BlockPtr{Number: *num, Hash: common.BytesToHash(hash), ParentHash: common.BytesToHash(parent)}
	if ts != nil {
		p.Timestamp = *ts
	}
	return p, nil
}

// WindowBlockByHash finds the number of a block of the unfinalized window by its hash; ok is
// false when the store does not keep it (finalized blocks keep no hash).
func WindowBlockByHash(ctx context.Context, q Querier, hash []byte) (n int64, ok bool, err error) {
	err = q.QueryRow(ctx, `SELECT number FROM `+ddl.BlocksTable+` WHERE hash = $1`, hash).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("store: find block by hash: %w", notMigrated(err))
	}
	return n, true, nil
}

// WindowBlock returns block n of the unfinalized window; nil when the store does not keep it.
func WindowBlock(ctx context.Context, q Querier, n int64) (*ReadBlock, error) {
	b := &ReadBlock{Number: n}
	var ts int64
	err := q.QueryRow(ctx, `SELECT hash, parent_hash, "timestamp" FROM `+ddl.BlocksTable+` WHERE number = $1`, n).Scan(&b.Hash, &b.ParentHash, &ts)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: read block %d: %w", n, notMigrated(err))
	}
	b.Timestamp = &ts
	return b, nil
}

// CountVersions counts the versions of an entity table and how many of them are current, by
// reading the whole table (EstimatedRows is the cheap estimate).
func CountVersions(ctx context.Context, q Querier, t *ddl.Table) (versions, current int64, err error) {
	cur := ddl.Visible(t.Type, "", "")
	if cur == "" {
		cur = "true"
	}
	err = q.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE `+cur+`) FROM `+t.Name).Scan(&versions, &current)
	if err != nil {
		return 0, 0, fmt.Errorf("store: count %s: %w", t.Name, notMigrated(err))
	}
	return versions, current, nil
}
