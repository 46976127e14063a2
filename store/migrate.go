package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/echain/echain-indexer/migrations"
	"github.com/echain/echain-indexer/store/ddl"
)

// Advisory lock keys ("echain" followed by a number), database-wide.
const (
	lockMigrate int64 = 0x6563_6861_696e_0001 // migrations, Reset
	lockIndexes int64 = 0x6563_6861_696e_0002 // EnsureIndexes
	lockWriter  int64 = 0x6563_6861_696e_0003 // the one indexing process
	lockPrune   int64 = 0x6563_6861_696e_0004 // pruning passes
)

// ErrSchemaChanged is matched (errors.Is) by the error Migrate returns when the database was
// indexed with a different entity layout.
var ErrSchemaChanged = errors.New("entity schema changed")

// SchemaChangedError says the tables were made for another layout and how to re-sync.
type SchemaChangedError struct{ Recorded, Current string }

func (e *SchemaChangedError) Error() string {
	return fmt.Sprintf("the entity schema changed since this database was indexed (table layout %.12s, schema.graphql now gives %.12s), "+
		"so its tables no longer fit; re-index with `echain-indexer resync --from-start` "+
		"(drops the entity tables and the cursor, then indexes the chain again from the start block)", e.Recorded, e.Current)
}

// Is makes errors.Is(err, ErrSchemaChanged) hold.
func (e *SchemaChangedError) Is(target error) bool { return target == ErrSchemaChanged }

// Migrate brings the database to this binary's layout: the system tables (migrations/, each
// applied once, in order), then the entity tables, their writer indexes and the analyst views.
// It holds an advisory lock, so processes starting together apply everything once. A database
// indexed with a different entity layout is refused (ErrSchemaChanged) unless nothing was
// indexed yet. On a hot standby, which cannot write, it only checks that replication brought
// this binary's layout (ErrReadOnlyReplica when not yet).
func (s *Store) Migrate(ctx context.Context) error {
	if standby, err := s.InRecovery(ctx); err != nil {
		return err
	} else if standby {
		return s.checkReplica(ctx)
	}
	return s.locked(ctx, lockMigrate, func(conn *pgx.Conn) error {
		if err := migrateSystem(ctx, conn); err != nil {
			return err
		}
		return s.migrateEntities(ctx, conn, false)
	})
}

// Reset drops every entity table and forgets the cursor, the block window, the data sources and
// the indexing errors, then creates the tables of the current schema: the store is as new and
// the indexer starts again from its start block (resync --from-start). The metadata cache and the
// resync requests are kept. The caller must hold the writer lock or know no indexer runs.
func (s *Store) Reset(ctx context.Context) error {
	err := s.locked(ctx, lockMigrate, func(conn *pgx.Conn) error {
		if err := migrateSystem(ctx, conn); err != nil {
			return err
		}
		return s.migrateEntities(ctx, conn, true)
	})
	s.forget()
	// Cached prepared statements name the dropped tables.
	s.pool.Reset()
	if err == nil {
		s.log.Info("store reset: entity tables recreated, cursor cleared")
	}
	return err
}

// locked runs fn on one connection holding the session advisory lock key.
func (s *Store) locked(ctx context.Context, key int64, fn func(*pgx.Conn) error) error {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer pc.Release()
	conn := pc.Conn()
	// Poll rather than block in pg_advisory_lock: a session blocked in a statement holds a
	// snapshot, and CREATE INDEX CONCURRENTLY (run under one of these locks) waits for every
	// snapshot, which would deadlock with a process waiting for the same lock.
	for {
		var got bool
		if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&got); err != nil {
			return fmt.Errorf("store: take lock: %w", err)
		}
		if got {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("store: wait for lock: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	defer func() {
		if _, err := conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", key); err != nil {
			// Never hand a connection that may still hold the lock back to the pool.
			conn.Close(context.Background())
		}
	}()
	return fn(conn)
}

func migrateSystem(ctx context.Context, conn *pgx.Conn) error {
	all, err := migrations.All()
	if err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS indexer;
CREATE TABLE IF NOT EXISTS `+ddl.MigrationsTable+` (
    version    int PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)`, pgx.QueryExecModeSimpleProtocol); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	rows, err := conn.Query(ctx, "SELECT version FROM "+ddl.MigrationsTable)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	applied, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	done := map[int]bool{}
	for _, v := range applied {
		done[int(v)] = true
		if len(all) > 0 && int(v) > all[len(all)-1].Version {
			return fmt.Errorf("store: the database has migration %d, newer than this binary knows (%d): run a newer echain-indexer", v, all[len(all)-1].Version)
		}
	}
	for _, m := range all {
		if done[m.Version] {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL, pgx.QueryExecModeSimpleProtocol); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO "+ddl.MigrationsTable+" (version, name) VALUES ($1, $2)", m.Version, m.Name)
			return err
		})
		if err != nil {
			return fmt.Errorf("store: migration %s: %w", m.Name, err)
		}
	}
	return nil
}

// migrateEntities creates the entity layout, or checks the recorded one; reset drops it first.
func (s *Store) migrateEntities(ctx context.Context, conn *pgx.Conn, reset bool) error {
	views := s.viewsFingerprint()
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var recorded, recordedViews string
		err := tx.QueryRow(ctx, "SELECT fingerprint, views_fingerprint FROM "+ddl.EntitySchemaTable).Scan(&recorded, &recordedViews)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("store: read schema fingerprint: %w", err)
		}
		if !reset && recorded != "" && recorded != s.layout.Fingerprint {
			var indexed bool
			if err := tx.QueryRow(ctx, "SELECT number IS NOT NULL FROM "+ddl.HeadTable).Scan(&indexed); err != nil {
				return fmt.Errorf("store: read head: %w", err)
			}
			if indexed {
				return &SchemaChangedError{Recorded: recorded, Current: s.layout.Fingerprint}
			}
			// Nothing was indexed with the old layout: replace it.
			reset = true
			s.log.Info("entity schema changed before anything was indexed: recreating the tables")
		}
		if reset {
			if _, err := tx.Exec(ctx, `DROP SCHEMA IF EXISTS `+ddl.Quote(ddl.EntitySchema)+` CASCADE;
TRUNCATE `+ddl.BlocksTable+`, `+ddl.ClampsTable+`, `+ddl.DataSourcesTable+`, `+ddl.IndexingErrorTable+`;
UPDATE `+ddl.HeadTable+` SET number = NULL, hash = NULL, parent_hash = NULL, "timestamp" = NULL,
    finalized = -1, next_vid = 1, history_from = 0, updated_at = now()`, pgx.QueryExecModeSimpleProtocol); err != nil {
				return fmt.Errorf("store: reset: %w", err)
			}
			recorded, recordedViews = "", ""
		}
		if recorded == "" {
			stmts := []string{"CREATE SCHEMA IF NOT EXISTS " + ddl.Quote(ddl.EntitySchema), "CREATE SCHEMA IF NOT EXISTS " + ddl.Quote(ddl.ViewSchema)}
			for _, t := range s.layout.Tables {
				stmts = append(stmts, t.Create...)
			}
			if _, err := tx.Exec(ctx, strings.Join(stmts, ";\n"), pgx.QueryExecModeSimpleProtocol); err != nil {
				return fmt.Errorf("store: create entity tables: %w", err)
			}
		}
		if recordedViews != views {
			var stmts []string
			for _, t := range s.layout.Tables {
				stmts = append(stmts, t.View...)
			}
			stmts = append(stmts, s.layout.Grants...)
			if _, err := tx.Exec(ctx, strings.Join(stmts, ";\n"), pgx.QueryExecModeSimpleProtocol); err != nil {
				return fmt.Errorf("store: create analyst views: %w", err)
			}
		}
		_, err = tx.Exec(ctx, `INSERT INTO `+ddl.EntitySchemaTable+` (singleton, fingerprint, source_fingerprint, views_fingerprint) VALUES (true, $1, $2, $3)
ON CONFLICT (singleton) DO UPDATE SET fingerprint = $1, source_fingerprint = $2, views_fingerprint = $3`,
			s.layout.Fingerprint, s.sch.Fingerprint, views)
		if err != nil {
			return fmt.Errorf("store: record schema fingerprint: %w", err)
		}
		return nil
	})
}

func (s *Store) viewsFingerprint() string {
	h := sha256.New()
	for _, t := range s.layout.Tables {
		for _, q := range t.View {
			h.Write([]byte(q))
			h.Write([]byte{0})
		}
	}
	for _, q := range s.layout.Grants {
		h.Write([]byte(q))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// EnsureIndexes builds the secondary indexes the API uses (lookups by reference, owner, order
// fields, unique current ids). They are left out of the tables during backfill, where each
// would cost every COPYed row a random btree insert; the follower calls this when backfill nears
// the head. Indexes are built one at a time with CREATE INDEX CONCURRENTLY, so commits continue
// meanwhile; an index a crash left invalid is dropped and rebuilt, and an index the layout no
// longer has (the index rule or an @index changed) is dropped. Safe to call repeatedly and from
// several processes (one builds, the others wait and find them built).
func (s *Store) EnsureIndexes(ctx context.Context) error {
	return s.locked(ctx, lockIndexes, func(conn *pgx.Conn) error {
		if _, err := conn.Exec(ctx, "SET maintenance_work_mem = '256MB'"); err != nil {
			return fmt.Errorf("store: ensure indexes: %w", err)
		}
		defer conn.Exec(context.Background(), "RESET maintenance_work_mem")
		for _, t := range s.layout.Tables {
			for _, ix := range t.Deferred {
				valid, exists, err := indexState(ctx, conn, ix.Name)
				if err != nil {
					return err
				}
				if exists && valid {
					if err := s.dropReplaced(ctx, conn, ix); err != nil {
						return err
					}
					continue
				}
				qn := ddl.Quote(ddl.EntitySchema) + "." + ddl.Quote(ix.Name)
				if exists {
					s.log.Warn("dropping an invalid index left by an interrupted build", "index", ix.Name)
					if _, err := conn.Exec(ctx, "DROP INDEX CONCURRENTLY IF EXISTS "+qn, pgx.QueryExecModeSimpleProtocol); err != nil {
						return fmt.Errorf("store: drop invalid index %s: %w", ix.Name, err)
					}
				}
				start := time.Now()
				q := strings.Replace(ix.Create, "INDEX IF NOT EXISTS", "INDEX CONCURRENTLY IF NOT EXISTS", 1)
				if _, err := conn.Exec(ctx, q, pgx.QueryExecModeSimpleProtocol); err != nil {
					return fmt.Errorf("store: build index %s: %w", ix.Name, err)
				}
				s.log.Info("built index", "index", ix.Name, "table", t.Type.Name, "seconds", since(start))
				if err := s.dropReplaced(ctx, conn, ix); err != nil {
					return err
				}
			}
			if err := s.dropObsolete(ctx, conn, t); err != nil {
				return err
			}
		}
		return nil
	})
}

// dropObsolete drops the secondary indexes of a table that the layout no longer lists.
func (s *Store) dropObsolete(ctx context.Context, conn *pgx.Conn, t *ddl.Table) error {
	keep := map[string]bool{t.Type.Table + "_pkey": true, ddl.IndexName(t.Type.Table, "id", "hash"): true}
	for _, ix := range t.Deferred {
		keep[ix.Name] = true
	}
	rows, err := conn.Query(ctx, "SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = $2", ddl.EntitySchema, t.Type.Table)
	if err != nil {
		return fmt.Errorf("store: list indexes of %s: %w", t.Type.Table, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("store: list indexes of %s: %w", t.Type.Table, err)
	}
	for _, n := range names {
		if keep[n] {
			continue
		}
		s.log.Info("dropping an index the layout no longer has", "index", n, "table", t.Type.Name)
		if _, err := conn.Exec(ctx, "DROP INDEX CONCURRENTLY IF EXISTS "+ddl.Quote(ddl.EntitySchema)+"."+ddl.Quote(n), pgx.QueryExecModeSimpleProtocol); err != nil {
			return fmt.Errorf("store: drop index %s: %w", n, err)
		}
	}
	return nil
}

// dropReplaced drops the writer's index a valid deferred index made redundant.
func (s *Store) dropReplaced(ctx context.Context, conn *pgx.Conn, ix ddl.Index) error {
	if ix.Replaces == "" {
		return nil
	}
	if _, err := conn.Exec(ctx, "DROP INDEX CONCURRENTLY IF EXISTS "+ddl.Quote(ddl.EntitySchema)+"."+ddl.Quote(ix.Replaces), pgx.QueryExecModeSimpleProtocol); err != nil {
		return fmt.Errorf("store: drop index %s: %w", ix.Replaces, err)
	}
	return nil
}

// IndexesReady reports whether every secondary index exists and is valid.
func (s *Store) IndexesReady(ctx context.Context) (bool, error) {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return false, fmt.Errorf("store: %w", err)
	}
	defer pc.Release()
	for _, t := range s.layout.Tables {
		for _, ix := range t.Deferred {
			valid, exists, err := indexState(ctx, pc.Conn(), ix.Name)
			if err != nil {
				return false, err
			}
			if !exists || !valid {
				return false, nil
			}
		}
	}
	return true, nil
}

func indexState(ctx context.Context, conn *pgx.Conn, name string) (valid, exists bool, err error) {
	err = conn.QueryRow(ctx, `SELECT i.indisvalid FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relname = $2`, ddl.EntitySchema, name).Scan(&valid)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("store: index %s: %w", name, err)
	}
	return valid, true, nil
}
