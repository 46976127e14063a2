package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/echain/echain-indexer/store/ddl"
)

// pruneChunkBlocks bounds the clamp records one pruning transaction handles, so that a pass
// over a long backlog holds the cursor row only briefly at a time.
const pruneChunkBlocks = 500

// afterCommit starts a background pruning pass when history is bounded and the head moved on
// by a tenth of the retained blocks since the last pass.
func (s *Store) afterCommit(head, finalized int64) {
	if s.opts.HistoryBlocks <= 0 {
		return
	}
	s.pruneMu.Lock()
	defer s.pruneMu.Unlock()
	every := max(s.opts.HistoryBlocks/10, 1)
	if s.pruning || head-s.lastPruned < every || s.ctx.Err() != nil {
		return
	}
	s.pruning = true
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		n, err := s.Prune(s.ctx)
		s.pruneMu.Lock()
		s.pruning = false
		if err == nil {
			s.lastPruned = head
		}
		s.pruneMu.Unlock()
		if err != nil && s.ctx.Err() == nil {
			s.log.Warn("pruning history failed; retrying after a later commit", "err", err)
		} else if n > 0 {
			s.log.Debug("pruned history", "versions", n, "head", head)
		}
	}()
}

// Prune deletes the versions that stopped being current before the retained history
// (Options.HistoryBlocks before the head, and never above the finalized block), using the clamp
// records rather than scanning tables. It returns how many versions it deleted. Commits start
// it in the background; calling it directly is safe (passes take turns).
func (s *Store) Prune(ctx context.Context) (int64, error) {
	if s.opts.HistoryBlocks <= 0 {
		return 0, nil
	}
	start := time.Now()
	var total int64
	for {
		n, more, err := s.pruneChunk(ctx)
		total += n
		if err != nil {
			return total, err
		}
		if !more {
			break
		}
	}
	s.m.pruneSeconds.Observe(since(start))
	return total, nil
}

func (s *Store) pruneChunk(ctx context.Context) (deleted int64, more bool, err error) {
	counts := map[string]int64{}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := customPlans(ctx, tx); err != nil {
			return err
		}
		// Passes of several processes take turns (within one process they never overlap).
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockPrune); err != nil {
			return err
		}
		var head *int64
		var finalized int64
		if err := tx.QueryRow(ctx, "SELECT number, finalized FROM "+ddl.HeadTable).Scan(&head, &finalized); err != nil {
			return err
		}
		if head == nil {
			return nil
		}
		cutoff := min(*head-s.opts.HistoryBlocks, finalized)
		var bound *int64
		if err := tx.QueryRow(ctx, `SELECT max(block) FROM (SELECT block FROM `+ddl.ClampsTable+` WHERE block <= $1 ORDER BY block LIMIT $2) s`,
			cutoff, pruneChunkBlocks).Scan(&bound); err != nil {
			return err
		}
		if bound == nil {
			// Nothing left to delete: time travel is exact from the cutoff on.
			_, err := tx.Exec(ctx, "UPDATE "+ddl.HeadTable+" SET history_from = GREATEST(history_from, $1)", max(cutoff, 0))
			return err
		}
		rows, err := tx.Query(ctx, "DELETE FROM "+ddl.ClampsTable+" WHERE block <= $1 RETURNING entity_type, vids", *bound)
		if err != nil {
			return err
		}
		byType := map[string][]int64{}
		for rows.Next() {
			var typ string
			var vids []int64
			if err := rows.Scan(&typ, &vids); err != nil {
				rows.Close()
				return err
			}
			byType[typ] = append(byType[typ], vids...)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for typ, vids := range byType {
			t := s.byType[typ]
			if t == nil {
				continue // a type no longer in the schema cannot have rows after a reset
			}
			tag, err := tx.Exec(ctx, fmt.Sprintf("DELETE FROM %s WHERE vid = ANY($1::int8[])", t.name), vids)
			if err != nil {
				return fmt.Errorf("delete %s versions: %w", typ, err)
			}
			counts[typ] += tag.RowsAffected()
		}
		if _, err := tx.Exec(ctx, "UPDATE "+ddl.HeadTable+" SET history_from = GREATEST(history_from, $1)", *bound); err != nil {
			return err
		}
		more = true
		return nil
	})
	if err != nil {
		return 0, false, fmt.Errorf("store: prune: %w", err)
	}
	for typ, n := range counts {
		deleted += n
		s.m.pruned.WithLabelValues(typ).Add(float64(n))
	}
	return deleted, more, nil
}
