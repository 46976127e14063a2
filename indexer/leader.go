package indexer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

var errLeadershipLost = errors.New("leader lock connection lost")

// leaderLock is a PostgreSQL session advisory lock held on a connection of its own: pool
// connections come and go, and the lock must live exactly as long as this process leads. When
// the process dies the server ends the session and a standby's pg_advisory_lock returns at once.
type leaderLock struct {
	conn *pgx.Conn
	key  int64
	stop chan struct{}
	done chan struct{}
}

// acquireLeader takes the lock, waiting for it when wait is set; without wait it returns
// (nil, nil) when another process holds it.
func acquireLeader(ctx context.Context, cfg *pgx.ConnConfig, key int64, wait bool) (*leaderLock, error) {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("leader lock: connect: %w", err)
	}
	if wait {
		if err := awaitPromotion(ctx, conn); err != nil {
			conn.Close(context.Background())
			return nil, err
		}
		if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
			conn.Close(context.Background())
			return nil, fmt.Errorf("leader lock: pg_advisory_lock: %w", err)
		}
	} else {
		var got bool
		if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&got); err != nil {
			conn.Close(context.Background())
			return nil, fmt.Errorf("leader lock: pg_try_advisory_lock: %w", err)
		}
		if !got {
			conn.Close(context.Background())
			return nil, nil
		}
	}
	return &leaderLock{conn: conn, key: key, stop: make(chan struct{}), done: make(chan struct{})}, nil
}

// promotionPoll is how often a standby indexer pointed at a hot standby checks whether it was
// promoted.
const promotionPoll = 500 * time.Millisecond

// awaitPromotion returns once the database is no hot standby: an indexer started against a
// replica (the failover spare of its primary's indexer) waits there, and leads as soon as the
// replica is promoted, resuming from the cursor replication carried.
func awaitPromotion(ctx context.Context, conn *pgx.Conn) error {
	for {
		var standby bool
		if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&standby); err != nil {
			return fmt.Errorf("leader lock: pg_is_in_recovery: %w", err)
		}
		if !standby {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(promotionPoll):
		}
	}
}

// watch pings the lock connection; when it fails the lock may already belong to another process,
// so it cancels the leader's context with errLeadershipLost.
func (l *leaderLock) watch(ctx context.Context, every time.Duration, lost context.CancelCauseFunc) {
	defer close(l.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.stop:
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, every*3+time.Second)
			err := l.conn.Ping(pctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				lost(fmt.Errorf("%w: %v", errLeadershipLost, err))
				return
			}
		}
	}
}

// release ends the session, which frees the lock.
func (l *leaderLock) release() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	select {
	case <-l.done:
	case <-time.After(10 * time.Second):
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l.conn.Close(ctx)
}

// releaseUnwatched frees a lock whose watch never ran.
func (l *leaderLock) releaseUnwatched() {
	close(l.done)
	l.release()
}
