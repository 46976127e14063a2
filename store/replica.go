package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/jackc/pgx/v5"

	"github.com/echain/echain-indexer/migrations"
	"github.com/echain/echain-indexer/store/ddl"
)

// ErrReadOnlyReplica is matched (errors.Is) by what a write to a hot standby fails with.
var ErrReadOnlyReplica = errors.New("the database is a hot standby in recovery (read-only)")

// Querier is what the replica accessors read through: a connection, a pool or a transaction.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// InRecovery reports whether the database is a hot standby replaying a primary's WAL.
func (s *Store) InRecovery(ctx context.Context) (bool, error) {
	return InRecovery(ctx, s.pool)
}

// InRecovery reports whether the database behind q is a hot standby.
func InRecovery(ctx context.Context, q Querier) (bool, error) {
	var r bool
	if err := q.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&r); err != nil {
		return false, fmt.Errorf("store: pg_is_in_recovery: %w", err)
	}
	return r, nil
}

// HeadPoll is one reading of the cursor as a follower of a replica's replay sees it.
type HeadPoll struct {
	InRecovery bool
	Number     int64  // 0 before the first block
	Hash       string // 0x hex; "" before the first block
	NextVid    int64
}

// PollHead reads the cursor and whether the database is (still) a standby, in one statement:
// what a replica's change feed polls, since a standby refuses LISTEN.
func PollHead(ctx context.Context, q Querier) (HeadPoll, error) {
	var p HeadPoll
	var number, nextVid *int64
	var hash []byte
	err := q.QueryRow(ctx, `SELECT pg_is_in_recovery(), h.number, h.hash, h.next_vid FROM (SELECT 1) one LEFT JOIN `+ddl.HeadTable+` h ON true`).
		Scan(&p.InRecovery, &number, &hash, &nextVid)
	if err != nil {
		return p, fmt.Errorf("store: read the indexer's head: %w", notMigrated(err))
	}
	if number != nil {
		p.Number, p.Hash = *number, common.BytesToHash(hash).Hex()
	}
	if nextVid != nil {
		p.NextVid = *nextVid
	}
	return p, nil
}

// Replication is a database's replication state as `status` and /readyz report it.
type Replication struct {
	InRecovery bool `json:"inRecovery"`
	// ReplayPaused: pg_wal_replay_pause() holds replay.
	ReplayPaused bool `json:"replayPaused,omitempty"`
	// LagSeconds is how far replay trails the primary: 0 when everything received is replayed,
	// else the age of the last replayed commit (pg_last_xact_replay_timestamp()). On a primary 0.
	LagSeconds float64 `json:"lagSeconds"`
	// LastReplayed is the primary's commit time of the last replayed transaction.
	LastReplayed *time.Time `json:"lastReplayed,omitempty"`
}

// ReplicationState reads the replication state of the store's database.
func (s *Store) ReplicationState(ctx context.Context) (*Replication, error) {
	r := &Replication{}
	var lag *float64
	// An idle primary sends nothing, so the age of the last replayed commit alone would grow
	// on a replica that is fully caught up: it counts only while WAL waits to be replayed.
	err := s.pool.QueryRow(ctx, `SELECT pg_is_in_recovery(),
  CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END,
  CASE WHEN NOT pg_is_in_recovery() OR pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
       ELSE greatest(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0)::float8 END,
  pg_last_xact_replay_timestamp()`).Scan(&r.InRecovery, &r.ReplayPaused, &lag, &r.LastReplayed)
	if err != nil {
		return nil, fmt.Errorf("store: replication state: %w", err)
	}
	if lag != nil {
		r.LagSeconds = *lag
	}
	return r, nil
}

// checkReplica is Migrate on a hot standby, which cannot write: the primary's indexer migrates
// and replication brings the result, so here every migration this binary knows must have
// arrived and the entity layout must be this binary's.
func (s *Store) checkReplica(ctx context.Context) error {
	all, err := migrations.All()
	if err != nil {
		return err
	}
	var applied int
	var fingerprint *string
	err = s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM `+ddl.MigrationsTable+`), (SELECT fingerprint FROM `+ddl.EntitySchemaTable+`)`).
		Scan(&applied, &fingerprint)
	if err != nil {
		return fmt.Errorf("store: %w: its primary has not been migrated yet (start the indexer on the primary first): %w", ErrReadOnlyReplica, notMigrated(err))
	}
	if applied < len(all) || fingerprint == nil {
		return fmt.Errorf("store: %w: its primary has %d of this binary's %d migrations (start this version's indexer on the primary first)", ErrReadOnlyReplica, applied, len(all))
	}
	if *fingerprint != s.layout.Fingerprint {
		return &SchemaChangedError{Recorded: *fingerprint, Current: s.layout.Fingerprint}
	}
	return nil
}
