package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/echain/echain-indexer/store/ddl"
)

// ControlChannel is notified when a resync is requested, so a running indexer need not poll.
const ControlChannel = "echain_indexer_control"

// ErrWriterLocked is returned by LockWriter when another process indexes this database.
var ErrWriterLocked = errors.New("another echain-indexer process is indexing this database")

// WriterLock is held by the one process that indexes a database (invariant 6). It lives as long
// as its connection: a killed process loses it at once.
type WriterLock struct {
	conn *pgxpool.Conn
}

// LockWriter takes the writer lock without waiting (ErrWriterLocked when taken). The lock holds
// one pool connection until Release.
func (s *Store) LockWriter(ctx context.Context) (*WriterLock, error) {
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: writer lock: %w", err)
	}
	var got bool
	if err := c.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", lockWriter).Scan(&got); err != nil {
		c.Release()
		return nil, fmt.Errorf("store: writer lock: %w", err)
	}
	if !got {
		c.Release()
		return nil, ErrWriterLocked
	}
	return &WriterLock{conn: c}, nil
}

// Alive checks that the lock's connection (and so the lock) still stands.
func (w *WriterLock) Alive(ctx context.Context) error {
	if err := w.conn.Ping(ctx); err != nil {
		return fmt.Errorf("store: writer lock lost: %w", err)
	}
	return nil
}

// Release gives the lock up.
func (w *WriterLock) Release() {
	if w.conn == nil {
		return
	}
	if _, err := w.conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", lockWriter); err != nil {
		w.conn.Conn().Close(context.Background())
	}
	w.conn.Release()
	w.conn = nil
}

// ResyncFromStart as a FromBlock asks for a re-index from the start block.
const ResyncFromStart int64 = -1

// ResyncRequest asks the indexing process to re-index from a block (resync --from-block N), or
// from the start (ResyncFromStart).
type ResyncRequest struct {
	ID          int64
	FromBlock   int64
	Reason      string
	Status      string // pending, done or failed
	Error       string // why it failed
	RequestedAt time.Time
	FinishedAt  *time.Time
}

// RequestResync files a request and notifies ControlChannel; it returns the request id.
func (s *Store) RequestResync(ctx context.Context, fromBlock int64, reason string) (int64, error) {
	if fromBlock < ResyncFromStart {
		return 0, fmt.Errorf("store: request resync from block %d: not a block", fromBlock)
	}
	var id int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, "INSERT INTO "+ddl.ResyncTable+" (from_block, reason) VALUES ($1, $2) RETURNING id",
			fromBlock, cleanText(reason)).Scan(&id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "SELECT pg_notify($1, $2)", ControlChannel, fmt.Sprintf(`{"resync":%d}`, id))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: request resync: %w", notMigrated(err))
	}
	return id, nil
}

const resyncCols = "id, from_block, reason, status, error, requested_at, finished_at"

func scanResync(row pgx.Row) (*ResyncRequest, error) {
	var r ResyncRequest
	err := row.Scan(&r.ID, &r.FromBlock, &r.Reason, &r.Status, &r.Error, &r.RequestedAt, &r.FinishedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// NextResync returns the oldest pending request, or nil.
func (s *Store) NextResync(ctx context.Context) (*ResyncRequest, error) {
	r, err := scanResync(s.pool.QueryRow(ctx, "SELECT "+resyncCols+" FROM "+ddl.ResyncTable+" WHERE status = 'pending' ORDER BY id LIMIT 1"))
	if err != nil {
		return nil, fmt.Errorf("store: next resync: %w", notMigrated(err))
	}
	return r, nil
}

// GetResync returns a request by id, or nil.
func (s *Store) GetResync(ctx context.Context, id int64) (*ResyncRequest, error) {
	r, err := scanResync(s.pool.QueryRow(ctx, "SELECT "+resyncCols+" FROM "+ddl.ResyncTable+" WHERE id = $1", id))
	if err != nil {
		return nil, fmt.Errorf("store: resync %d: %w", id, notMigrated(err))
	}
	return r, nil
}

// FinishResync marks a request done, or failed when errMsg is not empty.
func (s *Store) FinishResync(ctx context.Context, id int64, errMsg string) error {
	status := "done"
	if errMsg != "" {
		status = "failed"
	}
	tag, err := s.pool.Exec(ctx, "UPDATE "+ddl.ResyncTable+" SET status = $2, error = $3, finished_at = now() WHERE id = $1",
		id, status, cleanText(errMsg))
	if err != nil {
		return fmt.Errorf("store: finish resync %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: finish resync %d: no such request", id)
	}
	return nil
}

// IndexingError is an error the mappings raised at a block. A revert below its block forgets it.
type IndexingError struct {
	Block         int64
	BlockHash     common.Hash
	Handler       string
	Message       string
	Deterministic bool
	RecordedAt    time.Time
}

// RecordIndexingError stores an indexing error (what _meta.hasIndexingErrors reports).
func (s *Store) RecordIndexingError(ctx context.Context, e IndexingError) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO `+ddl.IndexingErrorTable+` (block, block_hash, handler, message, deterministic) VALUES ($1, $2, $3, $4, $5)`,
		e.Block, e.BlockHash.Bytes(), e.Handler, cleanText(e.Message), e.Deterministic)
	if err != nil {
		return fmt.Errorf("store: record indexing error: %w", notMigrated(err))
	}
	return nil
}

// IndexingErrors lists the recorded errors, oldest first.
func (s *Store) IndexingErrors(ctx context.Context) ([]IndexingError, error) {
	rows, err := s.pool.Query(ctx, `SELECT block, block_hash, handler, message, deterministic, recorded_at FROM `+ddl.IndexingErrorTable+` ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: indexing errors: %w", notMigrated(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (IndexingError, error) {
		var e IndexingError
		var h []byte
		err := r.Scan(&e.Block, &h, &e.Handler, &e.Message, &e.Deterministic, &e.RecordedAt)
		e.BlockHash = common.BytesToHash(h)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: indexing errors: %w", err)
	}
	return out, nil
}

// HasIndexingErrors reports whether any indexing error is recorded.
func (s *Store) HasIndexingErrors(ctx context.Context) (bool, error) {
	var has bool
	if err := s.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+ddl.IndexingErrorTable+")").Scan(&has); err != nil {
		return false, fmt.Errorf("store: indexing errors: %w", notMigrated(err))
	}
	return has, nil
}

// MetadataGet returns a cached metadata document: found is false when the URI was never
// stored; body is nil when it was stored as unavailable.
func (s *Store) MetadataGet(ctx context.Context, uri string) (body json.RawMessage, fetchedAt time.Time, found bool, err error) {
	var b []byte
	err = s.pool.QueryRow(ctx, "SELECT body, fetched_at FROM indexer.metadata_cache WHERE uri = $1", uri).Scan(&b, &fetchedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, time.Time{}, false, nil
	}
	if err != nil {
		return nil, time.Time{}, false, fmt.Errorf("store: metadata cache: %w", notMigrated(err))
	}
	return b, fetchedAt, true, nil
}

// MetadataPut caches a document by URI; a nil body records "unavailable". The body must be JSON
// (PostgreSQL's jsonb also refuses \u0000 in strings).
func (s *Store) MetadataPut(ctx context.Context, uri string, body json.RawMessage) error {
	var arg any
	if body != nil {
		if !json.Valid(body) {
			return fmt.Errorf("store: metadata cache %s: body is not JSON", uri)
		}
		arg = string(body)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO indexer.metadata_cache (uri, body, fetched_at) VALUES ($1, $2::jsonb, now())
ON CONFLICT (uri) DO UPDATE SET body = EXCLUDED.body, fetched_at = EXCLUDED.fetched_at`, uri, arg)
	if err != nil {
		return fmt.Errorf("store: metadata cache %s: %w", uri, notMigrated(err))
	}
	return nil
}

// CurrentRows calls fn with the current version of every entity of typ, rows as Batch.Get
// returns them. It reads the whole type: for small ones (the Echain mappings read the Events
// whose metadata document is still to be written, after a start or a revert).
func (s *Store) CurrentRows(ctx context.Context, typ string, fn func(row []any) error) error {
	t, err := s.table(typ)
	if err != nil {
		return fmt.Errorf("store: CurrentRows: %w", err)
	}
	// getSQL without its id condition: the one current-version query, so the layout stays in one place.
	sql, found := strings.CutPrefix(strings.Replace(t.getSQL, " WHERE id = $1", " WHERE true", 1), "SELECT ")
	if !found || strings.Contains(sql, "$1") {
		return fmt.Errorf("store: CurrentRows %s: unexpected lookup query", typ)
	}
	rows, err := s.pool.Query(ctx, "SELECT "+sql)
	if err != nil {
		return fmt.Errorf("store: CurrentRows %s: %w", typ, notMigrated(err))
	}
	defer rows.Close()
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return fmt.Errorf("store: CurrentRows %s: %w", typ, err)
		}
		c, err := t.decodeRow(vals)
		if err != nil {
			return fmt.Errorf("store: CurrentRows %s: %w", typ, err)
		}
		if err := fn(c.row); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: CurrentRows %s: %w", typ, err)
	}
	return nil
}
