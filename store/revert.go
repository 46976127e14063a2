package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/echain/echain-indexer/store/ddl"
)

// ErrHistoryPruned is matched (errors.Is) by the error RevertTo returns for a block older than
// the retained history (Options.HistoryBlocks): the versions needed to rebuild it are gone.
var ErrHistoryPruned = errors.New("the history of that block was pruned")

// RevertTo undoes every block after `to` in ONE transaction, in time proportional to what those
// blocks wrote: versions with vid >= the first vid of the first removed block go (a primary key
// range), versions those blocks closed are reopened (vids from the clamp records), the window,
// data sources and indexing errors above `to` are forgotten, and the cursor becomes `to`. It
// takes three round trips: read and lock, every change pipelined, NOTIFY and COMMIT.
// `to` at or above the finalized block takes that path (when `to` is in the window its hash must
// match). Below the finalized block (resync --from-block) the revert scans the tables instead:
// slower, but exact as long as the history there is kept (else ErrHistoryPruned).
func (s *Store) RevertTo(ctx context.Context, to BlockPtr) (err error) {
	start := time.Now()
	defer s.cache.clear() // before and after: nothing cached may outlive a revert
	s.cache.clear()
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("store: revert: %w", err)
	}
	defer pc.Release()
	conn := pc.Conn()
	open := false
	defer func() {
		if open {
			rollback(conn)
		}
		if err != nil {
			s.forget() // a failed COMMIT leaves the outcome unknown
		}
	}()

	// Round trip 1: lock the cursor, read what bounds the revert.
	q := &pgx.Batch{}
	q.Queue("BEGIN")
	q.Queue("SET LOCAL plan_cache_mode = force_custom_plan") // see customPlans
	q.Queue(`SELECT h.number, h.next_vid, h.finalized, h.history_from,
    w.hash, w.parent_hash, w."timestamp",
    (SELECT min(first_vid) FROM `+ddl.BlocksTable+` WHERE number > $1)
FROM `+ddl.HeadTable+` h LEFT JOIN `+ddl.BlocksTable+` w ON w.number = $1
FOR UPDATE OF h`, to.Number)
	open = true
	var headNum, firstVid, winTime *int64
	var nextVid, finalized, historyFrom int64
	var winHash, winParent []byte
	res := conn.SendBatch(ctx, q)
	_, err = res.Exec()
	if err == nil {
		_, err = res.Exec()
	}
	if err == nil {
		err = res.QueryRow().Scan(&headNum, &nextVid, &finalized, &historyFrom, &winHash, &winParent, &winTime, &firstVid)
	}
	if cerr := res.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("store: revert: lock head: %w", notMigrated(err))
	}
	if headNum == nil {
		return fmt.Errorf("store: revert to %d: nothing was applied yet", to.Number)
	}
	if s.checkWriter(nextVid) != nil {
		// Reverting needs no cached knowledge; what was cached is dropped.
		s.log.Warn("another process wrote to the store; caches dropped before the revert")
	}
	if to.Number > *headNum {
		return fmt.Errorf("store: revert to %d: above the head %d", to.Number, *headNum)
	}
	if to.Number < finalized {
		if to.Number < historyFrom {
			return fmt.Errorf("store: revert to %d: %w (history is kept from block %d)", to.Number, ErrHistoryPruned, historyFrom)
		}
		if err := s.revertBelowWindow(ctx, conn, to); err != nil {
			return err
		}
		open = false
		s.forget() // simplest after a rare, large revert: rebuilt on next use
		s.reverted(*headNum, to, start)
		return nil
	}
	// A block that wrote nothing may be missing from the window; the first vids of the blocks
	// above it still bound what to delete.
	if winHash != nil {
		if hash32(winHash) != to.Hash {
			return fmt.Errorf("store: revert to %d %s: the window has %x at that height", to.Number, to.Hash, winHash)
		}
		to.ParentHash, to.Timestamp = hash32(winParent), *winTime
	}
	if to.Number == *headNum {
		open = false
		if _, err := conn.Exec(ctx, "COMMIT"); err != nil {
			return fmt.Errorf("store: revert: %w", err)
		}
		return nil // nothing to undo
	}
	cut := nextVid
	if firstVid != nil {
		cut = *firstVid
	}

	// Round trip 2: versions written after `to` go (by primary key range), then the versions
	// those blocks closed become current again (from the clamp records; those written after `to`
	// are gone already), then the bookkeeping.
	q = &pgx.Batch{}
	for _, t := range s.tables {
		q.Queue(fmt.Sprintf("DELETE FROM %s WHERE vid >= $1 RETURNING id", t.name), cut)
	}
	var reopened []*table
	for _, t := range s.tables {
		if t.typ.Immutable {
			continue
		}
		reopened = append(reopened, t)
		q.Queue(fmt.Sprintf(`UPDATE %s SET %s
WHERE vid IN (SELECT unnest(vids) FROM `+ddl.ClampsTable+` WHERE block > $1 AND entity_type = $2) AND vid < $3 RETURNING id`,
			t.name, ddl.EndAt("", "NULL")), to.Number, t.typ.Name, cut)
	}
	q.Queue("DELETE FROM "+ddl.ClampsTable+" WHERE block > $1", to.Number)
	q.Queue("DELETE FROM "+ddl.BlocksTable+" WHERE number > $1", to.Number)
	q.Queue("DELETE FROM "+ddl.DataSourcesTable+" WHERE block > $1", to.Number)
	q.Queue("DELETE FROM "+ddl.IndexingErrorTable+" WHERE block > $1", to.Number)
	q.Queue(`UPDATE `+ddl.HeadTable+` SET number = $1, hash = $2, parent_hash = $3, "timestamp" = $4, next_vid = $5, updated_at = now()`,
		to.Number, to.Hash.Bytes(), to.ParentHash.Bytes(), to.Timestamp, cut)
	changed := map[string][]string{}
	res = conn.SendBatch(ctx, q)
	for _, t := range append(append([]*table{}, s.tables...), reopened...) {
		ids, err := collectIDs(res)
		if err != nil {
			res.Close()
			return fmt.Errorf("store: revert: %s versions: %w", t.typ.Name, err)
		}
		addIDs(changed, t.typ.Name, ids)
	}
	if err := res.Close(); err != nil {
		return fmt.Errorf("store: revert: window and cursor: %w", err)
	}

	// Round trip 3: tell the listeners, commit.
	q = &pgx.Batch{}
	q.Queue("SELECT pg_notify($1, $2)", NotifyChannel, changePayload(to.Number, to.Hash, true, changed))
	q.Queue("COMMIT")
	open = false
	if err := conn.SendBatch(ctx, q).Close(); err != nil {
		rollback(conn)
		return fmt.Errorf("store: revert: %w", err)
	}
	s.learned(cut, nil) // reverted ids stay in the filter: harmless false positives
	s.reverted(*headNum, to, start)
	return nil
}

func (s *Store) reverted(head int64, to BlockPtr, start time.Time) {
	s.m.reverts.Inc()
	s.m.revertedBlocks.Add(float64(head - to.Number))
	s.m.revertSeconds.Observe(since(start))
	s.log.Info("reverted", "to", to.Number, "from", head, "seconds", since(start))
}

func collectIDs(res pgx.BatchResults) ([]string, error) {
	rows, err := res.Query()
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

func addIDs(m map[string][]string, typ string, ids []string) {
	if len(ids) == 0 {
		return
	}
	seen := map[string]bool{}
	for _, id := range m[typ] {
		seen[id] = true
	}
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			m[typ] = append(m[typ], id)
		}
	}
}

// revertBelowWindow undoes everything after `to` where no window rows or clamp records remain,
// inside the transaction open on conn, and commits: versions are found by their block ranges
// (a scan of each table, fine for a resync). The notification names the changed types only.
func (s *Store) revertBelowWindow(ctx context.Context, conn *pgx.Conn, to BlockPtr) error {
	changed := map[string][]string{}
	for _, t := range s.tables {
		tag, err := conn.Exec(ctx, fmt.Sprintf("DELETE FROM %s WHERE %s", t.name, ddl.WrittenAfter(t.typ, "", "$1")), to.Number)
		if err != nil {
			return fmt.Errorf("store: revert: delete %s: %w", t.typ.Name, err)
		}
		n := tag.RowsAffected()
		if !t.typ.Immutable {
			tag, err = conn.Exec(ctx, fmt.Sprintf("UPDATE %s SET %s WHERE %s", t.name, ddl.EndAt("", "NULL"), ddl.ClosedAfter("", "$1")), to.Number)
			if err != nil {
				return fmt.Errorf("store: revert: reopen %s: %w", t.typ.Name, err)
			}
			n += tag.RowsAffected()
		}
		if n > 0 {
			changed[t.typ.Name] = nil
		}
	}
	q := &pgx.Batch{}
	q.Queue("DELETE FROM "+ddl.ClampsTable+" WHERE block > $1", to.Number)
	q.Queue("DELETE FROM "+ddl.BlocksTable+" WHERE number > $1", to.Number)
	q.Queue("DELETE FROM "+ddl.DataSourcesTable+" WHERE block > $1", to.Number)
	q.Queue("DELETE FROM "+ddl.IndexingErrorTable+" WHERE block > $1", to.Number)
	q.Queue(`UPDATE `+ddl.HeadTable+` SET number = $1, hash = $2, parent_hash = $3, "timestamp" = $4, finalized = LEAST(finalized, $1), updated_at = now()`,
		to.Number, to.Hash.Bytes(), to.ParentHash.Bytes(), to.Timestamp)
	q.Queue("SELECT pg_notify($1, $2)", NotifyChannel, changePayload(to.Number, to.Hash, true, changed))
	q.Queue("COMMIT")
	if err := conn.SendBatch(ctx, q).Close(); err != nil {
		rollback(conn)
		return fmt.Errorf("store: revert: window and cursor: %w", err)
	}
	return nil
}
