package store_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/jackc/pgx/v5"

	"github.com/echain/echain-indexer/store"
)

// Immutable entities: a second Set in the same block replaces the first; a Set in a later block
// of the batch, or of an entity committed earlier (read first, or blind), is an error; a revert
// that removed it allows it again.
func TestImmutableRules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := openStore(t, mustParse(t, smallSDL), store.Options{})
	b := s.NewBatch()
	b.StartBlock(ptr(1, 0))
	b.Set("Ev", []any{"e", "a", int32(1)})
	b.Set("Ev", []any{"e", "a", int32(2)})
	commitBlocks(t, s, b, []store.BlockPtr{ptr(1, 0)}, 0)
	if row, err := s.NewBatch().Get(ctx, "Ev", "e"); err != nil || row[2] != int32(2) {
		t.Fatalf("same-block replace: %v %v", row, err)
	}

	var ie *store.ImmutableError
	// Later block of the same batch.
	b = s.NewBatch()
	b.StartBlock(ptr(2, 0))
	b.Set("Ev", []any{"f", "a", int32(1)})
	b.StartBlock(ptr(3, 0))
	b.Set("Ev", []any{"f", "a", int32(2)})
	if err := s.Commit(ctx, b, commitOf([]store.BlockPtr{ptr(2, 0), ptr(3, 0)}, 0)); !errors.As(err, &ie) || ie.ID != "f" || ie.Block != 2 {
		t.Fatalf("set in a later block: %v", err)
	}
	// Committed earlier, known from the cache or a Get.
	b = s.NewBatch()
	b.StartBlock(ptr(2, 0))
	if _, err := b.Get(ctx, "Ev", "e"); err != nil {
		t.Fatal(err)
	}
	b.Set("Ev", []any{"e", "a", int32(3)})
	if err := s.Commit(ctx, b, commitOf([]store.BlockPtr{ptr(2, 0)}, 0)); !errors.As(err, &ie) || ie.Block != 1 {
		t.Fatalf("set after Get: %v", err)
	}
	// Committed earlier, blind Set with a cold cache (found at commit).
	cold := openURLNoMigrate(t, s)
	b = cold.NewBatch()
	b.StartBlock(ptr(2, 0))
	b.Set("Ev", []any{"e", "a", int32(3)})
	if err := cold.Commit(ctx, b, commitOf([]store.BlockPtr{ptr(2, 0)}, 0)); !errors.As(err, &ie) || ie.Block != 1 || !strings.Contains(err.Error(), "immutable") {
		t.Fatalf("blind set: %v", err)
	}
	// After reverting block 1 away, the id may be created again.
	b = s.NewBatch()
	b.StartBlock(ptr(2, 0))
	commitBlocks(t, s, b, []store.BlockPtr{ptr(2, 0)}, 0)
	if err := s.RevertTo(ctx, ptr(0, 0)); err != nil {
		t.Fatal(err)
	}
	b = s.NewBatch()
	p1 := ptr(1, 1)
	p1.ParentHash = ptr(0, 0).Hash
	b.StartBlock(p1)
	b.Set("Ev", []any{"e", "a", int32(9)})
	commitBlocks(t, s, b, []store.BlockPtr{p1}, 0)
	if row, err := s.NewBatch().Get(ctx, "Ev", "e"); err != nil || row[2] != int32(9) {
		t.Fatalf("re-created after revert: %v %v", row, err)
	}
}

// openURLNoMigrate opens a second store (own cache) on the database of s.
func openURLNoMigrate(t *testing.T, s *store.Store) *store.Store {
	t.Helper()
	o, err := store.Open(context.Background(), s.Pool().Config().ConnString(), s.Schema(), store.Options{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(o.Close)
	return o
}

// Commit refuses batches that do not follow the head or would lose reorg information.
func TestCommitValidation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := openStore(t, mustParse(t, smallSDL), store.Options{})
	b := s.NewBatch()
	b.StartBlock(ptr(1, 0))
	b.Set("Acct", []any{"a", int32(1), nil, []string{}})
	commitBlocks(t, s, b, []store.BlockPtr{ptr(1, 0)}, 0)
	before := dump(t, s)

	cases := map[string]struct {
		blocks []store.BlockPtr
		c      func([]store.BlockPtr) store.Commit
		want   string
	}{
		"not above head":  {[]store.BlockPtr{ptr(1, 0)}, func(p []store.BlockPtr) store.Commit { return commitOf(p, 0) }, "is not above the head 1"},
		"head moved back": {nil, func([]store.BlockPtr) store.Commit { return store.Commit{Head: ptr(0, 0)} }, "does not follow the head"},
		"other branch":    {[]store.BlockPtr{ptr(2, 7)}, func(p []store.BlockPtr) store.Commit { return commitOf(p, 0) }, "has parent"},
		"missing window":  {[]store.BlockPtr{ptr(2, 0)}, func(p []store.BlockPtr) store.Commit { return store.Commit{Head: p[0]} }, "not in the window"},
		"head below":      {[]store.BlockPtr{ptr(2, 0), ptr(3, 0)}, func(p []store.BlockPtr) store.Commit { return store.Commit{Head: p[0], Window: p[:1]} }, "below the batch's last block"},
		"window unsorted": {[]store.BlockPtr{ptr(2, 0), ptr(3, 0)}, func(p []store.BlockPtr) store.Commit {
			return store.Commit{Head: p[1], Window: []store.BlockPtr{p[1], p[0]}}
		}, "must ascend"},
	}
	for name, c := range cases {
		b := s.NewBatch()
		for _, p := range c.blocks {
			b.StartBlock(p)
			b.Set("Acct", []any{"a", int32(p.Number), nil, []string{}})
		}
		err := s.Commit(ctx, b, c.c(c.blocks))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", name, err, c.want)
		}
	}
	b = s.NewBatch()
	b.StartBlock(ptr(3, 0))
	b.StartBlock(ptr(2, 0))
	if err := b.Err(); err == nil || !strings.Contains(err.Error(), "must ascend") {
		t.Errorf("StartBlock descending: %v", err)
	}
	if after := dump(t, s); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Fatal("a refused commit changed the tables")
	}
	// A backfill batch below the chain's finalized block is final up to its own head.
	b = s.NewBatch()
	b.StartBlock(ptr(2, 0))
	if err := s.Commit(ctx, b, store.Commit{Head: ptr(2, 0), Finalized: 1000}); err != nil {
		t.Fatal(err)
	}
	if st, err := s.Status(ctx); err != nil || st.Finalized != 2 {
		t.Fatalf("finalized above the head: %+v %v", st, err)
	}
}

// A commit that dies in the middle (context cancelled while a COPY waits, or the connection
// killed) leaves the store exactly at the previous commit, and the same batch can be retried.
func TestInterruptedCommitLeavesLastCommit(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"cancel", "terminate"} {
		t.Run(how, func(t *testing.T) {
			ctx := context.Background()
			s, url := openStore(t, mustParse(t, smallSDL), store.Options{})
			b := s.NewBatch()
			b.StartBlock(ptr(1, 0))
			b.Set("Acct", []any{"a", int32(1), nil, []string{}})
			commitBlocks(t, s, b, []store.BlockPtr{ptr(1, 0)}, 0)
			before := dump(t, s)

			// Hold the Ev table against writes (reads pass): the commit clamps and COPYs Acct,
			// then waits on Ev.
			locker, err := pgx.Connect(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			defer locker.Close(ctx)
			tx, err := locker.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, "LOCK TABLE entities.ev IN SHARE MODE"); err != nil {
				t.Fatal(err)
			}
			fill := func() *store.Batch {
				b := s.NewBatch()
				b.StartBlock(ptr(2, 0))
				b.Set("Acct", []any{"a", int32(2), nil, []string{}})
				for i := range 2000 {
					b.Set("Acct", []any{"n" + itoa(i), int32(i), nil, []string{}})
				}
				b.Set("Ev", []any{"e", "a", int32(1)})
				return b
			}
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			var wg sync.WaitGroup
			var commitErr error
			wg.Add(1)
			go func() {
				defer wg.Done()
				commitErr = s.Commit(cctx, fill(), commitOf([]store.BlockPtr{ptr(2, 0)}, 0))
			}()
			// Wait until the commit waits for the Ev table while holding Acct for writing: the
			// Acct versions are in, the Ev ones not.
			var pid int32
			deadline := time.Now().Add(20 * time.Second)
			for {
				err := locker.QueryRow(ctx, `SELECT w.pid FROM pg_locks w JOIN pg_locks a ON a.pid = w.pid
WHERE NOT w.granted AND w.relation = 'entities.ev'::regclass
AND a.granted AND a.relation = 'entities.acct'::regclass AND a.mode = 'RowExclusiveLock'`).Scan(&pid)
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the commit never waited on the Ev table: %v", err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			if how == "cancel" {
				cancel()
			} else if _, err := locker.Exec(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			if commitErr == nil {
				t.Fatal("the interrupted commit reported success")
			}
			if err := tx.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			if after := dump(t, s); strings.Join(after, "\n") != strings.Join(before, "\n") {
				t.Fatalf("the interrupted commit left rows behind:\n%s", diff(after, before))
			}
			if h, err := s.Head(ctx); err != nil || h.Number != 1 {
				t.Fatalf("head after the interrupted commit: %v %v", h, err)
			}
			// Retry (the follower rebuilds the batch).
			commitBlocks(t, s, fill(), []store.BlockPtr{ptr(2, 0)}, 0)
			if row, err := s.NewBatch().Get(ctx, "Acct", "a"); err != nil || row[1] != int32(2) {
				t.Fatalf("after retry: %v %v", row, err)
			}
			checkVersions(t, s)
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// Data sources are recorded with the block and forgotten by a revert below it.
func TestDataSourcesFollowReverts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := openStore(t, mustParse(t, smallSDL), store.Options{})
	for n := int64(1); n <= 3; n++ {
		b := s.NewBatch()
		b.StartBlock(ptr(n, 0))
		b.AddDataSource(store.DataSource{Template: "EventTicket", Address: common.BigToAddress(common.Big1.SetInt64(n)), Block: n, Key: itoa(int(n))})
		commitBlocks(t, s, b, []store.BlockPtr{ptr(n, 0)}, 0)
	}
	ds, err := s.DataSources(ctx)
	if err != nil || len(ds) != 3 || ds[2].Key != "3" || ds[2].Address != common.BigToAddress(common.Big1.SetInt64(3)) {
		t.Fatalf("data sources: %+v %v", ds, err)
	}
	if err := s.RevertTo(ctx, ptr(1, 0)); err != nil {
		t.Fatal(err)
	}
	ds, err = s.DataSources(ctx)
	if err != nil || len(ds) != 1 || ds[0].Block != 1 {
		t.Fatalf("after revert: %+v %v", ds, err)
	}
	// The same address learned again on the new branch.
	b := s.NewBatch()
	p := ptr(2, 1)
	p.ParentHash = ptr(1, 0).Hash
	b.StartBlock(p)
	b.AddDataSource(store.DataSource{Template: "EventTicket", Address: common.BigToAddress(common.Big1.SetInt64(2)), Block: 2})
	if err := s.Commit(ctx, b, store.Commit{Head: p, Window: []store.BlockPtr{p}}); err != nil {
		t.Fatal(err)
	}
}

// Reverts refuse targets above the head or off the recorded window branch.
func TestRevertValidation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := openStore(t, mustParse(t, smallSDL), store.Options{})
	if err := s.RevertTo(ctx, ptr(1, 0)); err == nil {
		t.Fatal("revert on an empty store succeeded")
	}
	var ps []store.BlockPtr
	b := s.NewBatch()
	for n := int64(1); n <= 5; n++ {
		ps = append(ps, ptr(n, 0))
		b.StartBlock(ptr(n, 0))
		b.Set("Acct", []any{"a", int32(n), nil, []string{}})
	}
	commitBlocks(t, s, b, ps, 2)
	if err := s.RevertTo(ctx, ptr(6, 0)); err == nil || !strings.Contains(err.Error(), "above the head") {
		t.Fatalf("above head: %v", err)
	}
	if err := s.RevertTo(ctx, ptr(4, 9)); err == nil || !strings.Contains(err.Error(), "the window has") {
		t.Fatalf("other branch: %v", err)
	}
	if err := s.RevertTo(ctx, ptr(5, 0)); err != nil {
		t.Fatalf("revert to the head is a no-op: %v", err)
	}
	if err := s.RevertTo(ctx, ptr(3, 0)); err != nil {
		t.Fatal(err)
	}
	w, err := s.Window(ctx)
	if err != nil || len(w) != 1 || w[0].Number != 3 {
		t.Fatalf("window after revert: %+v %v", w, err)
	}
	if row, err := s.NewBatch().Get(ctx, "Acct", "a"); err != nil || row[1] != int32(3) {
		t.Fatalf("after revert: %v %v", row, err)
	}
}
