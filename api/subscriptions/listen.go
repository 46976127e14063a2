package subscriptions

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/echain/echain-indexer/store"
)

// feedPing is how long the LISTEN connection may stay silent before it is checked: a peer that
// vanished without a FIN would otherwise hold the feed forever.
const feedPing = 15 * time.Second

// ListenerApplicationName names the LISTEN connection in pg_stat_activity.
const ListenerApplicationName = "echain-indexer subscriptions"

// listen keeps a dedicated connection LISTENing on store.NotifyChannel and forwards each
// change. Every (re)connection first reads the cursor and sends a resync change: whatever was
// notified while the feed was down is then covered by re-running every operation once.
func (s *Server) listen(ctx context.Context, out chan<- change) {
	backoff := 100 * time.Millisecond
	for {
		connected, err := s.listenOnce(ctx, out)
		s.met.feedConnected.Set(0)
		if ctx.Err() != nil {
			return
		}
		if connected {
			backoff = 100 * time.Millisecond
		}
		s.met.reconnects.Inc()
		s.log.Warn("subscriptions: change feed lost; reconnecting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (s *Server) listenOnce(ctx context.Context, out chan<- change) (connected bool, err error) {
	cfg := s.pool.Config().ConnConfig.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = ListenerApplicationName
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.ConnectConfig(cctx, cfg)
	cancel()
	if err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if standby, err := store.InRecovery(ctx, conn); err != nil {
		return false, err
	} else if standby {
		return s.followReplay(ctx, conn, out)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{store.NotifyChannel}.Sanitize()); err != nil {
		return false, fmt.Errorf("listen: %w", err)
	}
	// After LISTEN: a commit from now on is either in this read or notified.
	number, hash, err := readHead(ctx, conn)
	if err != nil {
		return false, err
	}
	s.met.feedConnected.Set(1)
	if !s.emit(ctx, out, change{block: number, hash: hash, kind: "resync", all: true, notified: time.Now()}) {
		return true, nil
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, feedPing)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return true, nil
			}
			if errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
				pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				err = conn.Ping(pctx)
				cancel()
				if err != nil {
					return true, fmt.Errorf("ping: %w", err)
				}
				continue
			}
			return true, fmt.Errorf("wait for notification: %w", err)
		}
		now := time.Now()
		ch, err := store.ParseChange(n.Payload)
		if err != nil {
			// Unreadable: assume anything changed at the current head.
			s.log.Error("subscriptions: bad change notification; re-running every subscription", "err", err, "payload", n.Payload)
			number, hash, herr := readHead(ctx, conn)
			if herr != nil {
				return true, herr
			}
			if !s.emit(ctx, out, change{block: number, hash: hash, kind: "resync", all: true, notified: now}) {
				return true, nil
			}
			continue
		}
		kind := "commit"
		if ch.Revert {
			kind = "revert"
		}
		types := ch.Types
		if types == nil {
			types = map[string][]string{}
		}
		if !s.emit(ctx, out, change{block: ch.Block, hash: ch.Hash, kind: kind, types: types, notified: now}) {
			return true, nil
		}
	}
}

func (s *Server) emit(ctx context.Context, out chan<- change, ch change) bool {
	select {
	case out <- ch:
		return true
	case <-ctx.Done():
		return false
	}
}

// readHead reads the cursor: number 0 and hash "" before the indexer's first block.
func readHead(ctx context.Context, conn *pgx.Conn) (int64, string, error) {
	h, err := store.ReadHead(ctx, conn)
	if err != nil {
		return 0, "", fmt.Errorf("read the indexer's head: %w", err)
	}
	if h == nil {
		return 0, "", nil
	}
	return h.Number, h.Hash.Hex(), nil
}

// followReplay is the change feed of a hot standby, which refuses LISTEN (and whose primary's
// notifications would arrive before the standby has replayed the commit they announce): it
// polls the cursor the standby replayed every Options.ReplicaPoll. A change is emitted only
// once the standby holds it, so a push never reflects a block the replica lacks. The ids a
// commit touched travel in the notification only, so each new head re-runs every operation
// (results that did not change are not pushed). Promotion ends it: the caller reconnects and
// LISTENs.
func (s *Server) followReplay(ctx context.Context, conn *pgx.Conn, out chan<- change) (connected bool, err error) {
	s.log.Info("subscriptions: the database is a hot standby; following its replayed head", "every", s.opts.ReplicaPoll)
	last, err := store.PollHead(ctx, conn)
	if err != nil {
		return false, err
	}
	s.met.feedConnected.Set(1)
	if !s.emit(ctx, out, change{block: last.Number, hash: last.Hash, kind: "resync", all: true, notified: time.Now()}) {
		return true, nil
	}
	t := time.NewTicker(s.opts.ReplicaPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return true, nil
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		p, err := store.PollHead(pctx, conn)
		cancel()
		switch {
		case ctx.Err() != nil:
			return true, nil
		case err != nil:
			return true, err
		case !p.InRecovery:
			return true, errors.New("the standby was promoted: switching to LISTEN")
		case p.Number == last.Number && p.Hash == last.Hash && p.NextVid == last.NextVid:
			continue
		}
		kind := "commit"
		if p.Number < last.Number || (p.Number == last.Number && p.Hash != last.Hash) {
			kind = "revert"
		}
		last = p
		if !s.emit(ctx, out, change{block: p.Number, hash: p.Hash, kind: kind, all: true, notified: time.Now()}) {
			return true, nil
		}
	}
}
