package storetest

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/echain/echain-indexer/schema"
	"github.com/echain/echain-indexer/store/ddl"
)

// The helpers below lay down store state directly, for tests that need a history the writer
// would not produce (versions at arbitrary blocks, a cursor without the blocks below it) or a
// dataset too large to commit block by block. They bypass the writer's invariants (vids in
// block order, clamp records, the window matching the cursor) and spell no layout of their own:
// names and block-range fragments come from store/ddl, so a layout change reaches them there.

// Execer runs a statement: *pgxpool.Pool, *pgxpool.Conn, *pgx.Conn and pgx.Tx satisfy it.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// VersionInsert is the INSERT of one version of t: its parameters are the vid ($1), the block
// the version is visible from ($2, int4) and then the given column expressions, in order (the
// caller numbers their parameters from $3).
func VersionInsert(t *schema.EntityType, columns, exprs []string) string {
	from := VisibleFrom(t, "$2::int4")
	cols := ddl.SystemColumns(t)
	for i, c := range cols {
		cols[i] = ddl.Quote(c)
	}
	vals := append([]string{"$1", from}, exprs...)
	return "INSERT INTO " + ddl.TableName(t) + " (" + strings.Join(append(cols, columns...), ", ") + ") VALUES (" + strings.Join(vals, ", ") + ")"
}

// VisibleFrom is the SQL value of the block column (the second of CopyColumns) of a new
// version of t visible from block on; block is an int4 expression.
func VisibleFrom(t *schema.EntityType, block string) string {
	if t.Immutable {
		return block
	}
	return ddl.OpenFrom(block)
}

// EndCurrent ends the current version of entity id of the mutable type t at block: it stays
// visible below block.
func EndCurrent(ctx context.Context, db Execer, t *schema.EntityType, id string, block int64) error {
	if t.Immutable {
		return fmt.Errorf("%s is immutable", t.Name)
	}
	_, err := db.Exec(ctx, "UPDATE "+ddl.TableName(t)+" SET "+ddl.EndAt("", "$2::int4")+" WHERE id = $1 AND "+ddl.Current(""), id, int32(block))
	if err != nil {
		return fmt.Errorf("end %s %s: %w", t.Name, id, err)
	}
	return nil
}

// CopyColumns are the columns of a COPY of versions of t, system columns first; CopyFrom
// gives the value of the second one.
func CopyColumns(t *schema.EntityType) []string {
	cols := ddl.SystemColumns(t)
	for _, c := range t.Columns {
		cols = append(cols, c.Column)
	}
	return cols
}

// CopyFrom is the value of a COPY's block column (CopyColumns) for a version visible from block
// on: the creation block of an immutable entity, else an open block range.
func CopyFrom(t *schema.EntityType, block int64) any {
	if t.Immutable {
		return int32(block)
	}
	return pgtype.Range[pgtype.Int4]{Lower: pgtype.Int4{Int32: int32(block), Valid: true}, LowerType: pgtype.Inclusive, UpperType: pgtype.Unbounded, Valid: true}
}

// Cursor is the store's cursor as SetCursor writes it.
type Cursor struct {
	Number           int64
	Hash, ParentHash []byte
	Timestamp        int64
	HistoryFrom      int64 // time travel is exact from this block on
}

// SetCursor moves the cursor.
func SetCursor(ctx context.Context, db Execer, c Cursor) error {
	_, err := db.Exec(ctx, `UPDATE `+ddl.HeadTable+` SET number = $1, hash = $2, parent_hash = $3, "timestamp" = $4, history_from = $5`,
		c.Number, c.Hash, c.ParentHash, c.Timestamp, c.HistoryFrom)
	if err != nil {
		return fmt.Errorf("set the cursor: %w", err)
	}
	return nil
}

// PutWindowBlock records (or replaces) block c in the unfinalized window; firstVid is the first
// version id the block wrote.
func PutWindowBlock(ctx context.Context, db Execer, c Cursor, firstVid int64) error {
	_, err := db.Exec(ctx, `INSERT INTO `+ddl.BlocksTable+` (number, hash, parent_hash, "timestamp", first_vid) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (number) DO UPDATE SET hash = EXCLUDED.hash, parent_hash = EXCLUDED.parent_hash, "timestamp" = EXCLUDED."timestamp"`,
		c.Number, c.Hash, c.ParentHash, c.Timestamp, firstVid)
	if err != nil {
		return fmt.Errorf("record block %d in the window: %w", c.Number, err)
	}
	return nil
}

// InsertSeries inserts n versions of t with one INSERT ... SELECT over generate_series: g runs
// from 0 to n-1 (int8) and may appear in every expression. Versions get vids vid0+1..vid0+n; block
// is the SQL value of the block column (the second of CopyColumns: VisibleFrom, or a closed
// range from ddl.BlockRange); exprs gives each field's value by field name. A non-null field
// without a value is an error, a nullable one is NULL.
func InsertSeries(ctx context.Context, db Execer, t *schema.EntityType, n int, vid0 int64, block string, exprs map[string]string) error {
	cols := CopyColumns(t)
	for i, c := range cols {
		cols[i] = ddl.Quote(c)
	}
	sel := []string{strconv.FormatInt(vid0+1, 10) + " + g", block}
	for _, c := range t.Columns {
		x, ok := exprs[c.Name]
		if !ok {
			if c.NonNull {
				return fmt.Errorf("%s: no value for %s", t.Name, c.Name)
			}
			x = "NULL"
		}
		sel = append(sel, x)
	}
	q := "INSERT INTO " + ddl.TableName(t) + " (" + strings.Join(cols, ", ") + ") SELECT " + strings.Join(sel, ", ") +
		" FROM generate_series(0::int8, " + strconv.Itoa(n-1) + ") g"
	if _, err := db.Exec(ctx, q); err != nil {
		return fmt.Errorf("insert %d %s: %w", n, t.Name, err)
	}
	return nil
}
