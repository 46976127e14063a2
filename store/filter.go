package store

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/echain/echain-indexer/store/ddl"
)

// idFilter is a Bloom filter of the ids of every committed entity, per type. Most writes of a
// backfill create entities (tickets, transfers, transactions); without the filter each one costs
// a lookup to learn that it is new, in Batch.Get or at Commit, which was a third of the
// server's work per flushed version. A "no" is certain; a "maybe" (about 1% of new ids) falls
// back to the lookup. Reverted ids stay in the filter: they only cost a lookup.
//
// The filter, like the row cache, holds only while this store is the only writer. Commit checks
// that the cursor's next vid is the one this store left; when another process wrote meanwhile
// it drops both and refuses the batch (ErrConcurrentWriter), built as it was on stale knowledge.
type idFilter struct {
	seed  maphash.Seed
	bits  []uint64
	k     int
	n     int // ids added
	limit int // ids the size was chosen for; beyond it false positives grow: rebuild
}

const (
	filterBitsPerID = 10 // ~1% false positives with 7 probes
	filterProbes    = 7
	filterMinIDs    = 1 << 20
)

func newIDFilter(ids int) *idFilter {
	limit := max(2*ids, filterMinIDs)
	words := (limit*filterBitsPerID + 63) / 64
	return &idFilter{seed: maphash.MakeSeed(), bits: make([]uint64, words), k: filterProbes, limit: limit}
}

func (f *idFilter) hashes(t int, id string) (uint64, uint64) {
	var h maphash.Hash
	h.SetSeed(f.seed)
	h.WriteByte(byte(t))
	h.WriteString(id)
	x := h.Sum64()
	// Kirsch-Mitzenmacher: k probes from two halves of one 64-bit hash.
	return x & math.MaxUint32, x>>32 | 1
}

func (f *idFilter) add(t int, id string) {
	a, b := f.hashes(t, id)
	m := uint64(len(f.bits) * 64)
	for i := range uint64(f.k) {
		p := (a + i*b) % m
		f.bits[p/64] |= 1 << (p % 64)
	}
	f.n++
}

func (f *idFilter) mayContain(t int, id string) bool {
	a, b := f.hashes(t, id)
	m := uint64(len(f.bits) * 64)
	for i := range uint64(f.k) {
		p := (a + i*b) % m
		if f.bits[p/64]&(1<<(p%64)) == 0 {
			return false
		}
	}
	return true
}

// ErrConcurrentWriter is returned by Commit when another process changed the store since this
// one last wrote or read it: the batch may rest on stale state. Build it again.
var ErrConcurrentWriter = errors.New("another process wrote to the store")

// knowledge is what the store believes about the database beyond a transaction: the id filter
// and the row cache, valid while the cursor's next vid is nextVid.
type knowledge struct {
	mu      sync.Mutex
	built   bool      // the filter was built (it may still be nil: too big)
	filter  *idFilter // nil: not built, or too big to build
	nextVid int64     // -1: unknown (nothing cached yet)
	// maxFilterIDs bounds the filter's memory (about 1.25 bytes per id); larger stores look
	// every new id up.
	maxFilterIDs int
}

// filterLocked returns the filter, building it when missing (nil when too big or disabled).
// It must be called with know.mu held.
func (s *Store) filterLocked(ctx context.Context) (*idFilter, error) {
	k := &s.know
	if k.built {
		return k.filter, nil
	}
	// One snapshot: the ids and the next vid they correspond to.
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("store: id filter: %w", err)
	}
	defer tx.Rollback(context.Background())
	var next int64
	if err := tx.QueryRow(ctx, "SELECT next_vid FROM "+ddl.HeadTable).Scan(&next); err != nil {
		return nil, fmt.Errorf("store: id filter: %w", notMigrated(err))
	}
	total := 0
	counts := make([]int64, len(s.tables))
	for _, t := range s.tables {
		// PostgreSQL's estimate is enough to size the filter, and to refuse a huge one early.
		if err := tx.QueryRow(ctx, rowEstimateSQL, t.name).Scan(&counts[t.idx]); err != nil {
			return nil, fmt.Errorf("store: id filter: %w", err)
		}
		total += int(counts[t.idx])
	}
	if k.nextVid >= 0 && k.nextVid != next {
		s.cache.clear() // cached rows predate a foreign write
	}
	k.nextVid = next
	if total > k.maxFilterIDs {
		if k.maxFilterIDs > 0 {
			s.log.Info("too many entities for the id filter: new ids are looked up", "entities", total, "limit", k.maxFilterIDs)
		}
		k.built, k.filter = true, nil
		return nil, nil
	}
	f := newIDFilter(total)
	for _, t := range s.tables {
		q := fmt.Sprintf("SELECT id FROM %s", t.name)
		if c := ddl.Visible(t.typ, "", ""); c != "" {
			q += " WHERE " + c
		}
		rows, err := tx.Query(ctx, q, pgx.QueryResultFormats{pgx.TextFormatCode})
		if err != nil {
			return nil, fmt.Errorf("store: id filter: %w", err)
		}
		for rows.Next() {
			raw := rows.RawValues()
			f.add(t.idx, string(raw[0]))
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("store: id filter: %w", err)
		}
	}
	if f.n > k.maxFilterIDs {
		f = nil
	}
	k.built, k.filter = true, f
	return f, nil
}

// absent reports whether the entity certainly does not exist (no lookup needed), building the
// filter on first use.
func (s *Store) absent(ctx context.Context, t *table, id string) (bool, error) {
	s.know.mu.Lock()
	defer s.know.mu.Unlock()
	f, err := s.filterLocked(ctx)
	if err != nil || f == nil {
		return false, err
	}
	return !f.mayContain(t.idx, id), nil
}

// ensureFilter builds the filter if needed; Commit calls it before taking its connection (the
// build reads on a connection of its own).
func (s *Store) ensureFilter(ctx context.Context) error {
	s.know.mu.Lock()
	defer s.know.mu.Unlock()
	_, err := s.filterLocked(ctx)
	return err
}

// knownAbsent is absent without building: inside a transaction, a missing filter means a lookup.
func (s *Store) knownAbsent(t *table, id string) bool {
	s.know.mu.Lock()
	defer s.know.mu.Unlock()
	return s.know.filter != nil && !s.know.filter.mayContain(t.idx, id)
}

// checkWriter verifies, inside a commit or revert holding the cursor row, that no other process
// wrote since this store's knowledge was gathered; otherwise it drops that knowledge.
func (s *Store) checkWriter(nextVid int64) error {
	s.know.mu.Lock()
	defer s.know.mu.Unlock()
	if s.know.nextVid >= 0 && s.know.nextVid != nextVid {
		s.forgetLocked()
		return fmt.Errorf("%w (next vid %d, this store expected %d): caches dropped; apply the blocks again", ErrConcurrentWriter, nextVid, s.know.nextVid)
	}
	return nil
}

// learned records the state a successful commit or revert left, and the ids it created.
func (s *Store) learned(nextVid int64, added func(f *idFilter)) {
	s.know.mu.Lock()
	defer s.know.mu.Unlock()
	s.know.nextVid = nextVid
	if f := s.know.filter; f != nil && added != nil {
		added(f)
		if f.n > f.limit {
			s.know.built, s.know.filter = false, nil // rebuilt, larger, on next use
		}
	}
}

// forget drops the filter and the row cache (after a failed commit, a reset).
func (s *Store) forget() {
	s.know.mu.Lock()
	defer s.know.mu.Unlock()
	s.forgetLocked()
}

func (s *Store) forgetLocked() {
	s.know.built, s.know.filter, s.know.nextVid = false, nil, -1
	s.cache.clear()
}
