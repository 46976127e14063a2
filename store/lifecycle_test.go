package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/echain/echain-indexer/migrations"
	"github.com/echain/echain-indexer/store"
	"github.com/echain/echain-indexer/store/storetest"
)

// Processes that start together migrate once; running Migrate again changes nothing.
func TestMigrateIdempotentAndConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := storetest.NewDB(t)
	sch := mustParse(t, smallSDL)
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		s, err := store.Open(ctx, url, sch, store.Options{MaxConns: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Migrate(ctx)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	s := openURL(t, url, sch, store.Options{})
	all, err := migrations.All()
	if err != nil {
		t.Fatal(err)
	}
	var applied, heads int
	if err := s.Pool().QueryRow(ctx, "SELECT count(*) FROM indexer.schema_migrations").Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if err := s.Pool().QueryRow(ctx, "SELECT count(*) FROM indexer.head").Scan(&heads); err != nil {
		t.Fatal(err)
	}
	if applied != len(all) || heads != 1 {
		t.Fatalf("%d migrations recorded (want %d), %d head rows", applied, len(all), heads)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	// The reader role can read the views and nothing else.
	var canView, canTable bool
	if err := s.Pool().QueryRow(ctx, `SELECT has_table_privilege('echain_reader', 'echain.acct', 'SELECT'),
has_table_privilege('echain_reader', 'entities.acct', 'SELECT')`).Scan(&canView, &canTable); err != nil {
		t.Fatal(err)
	}
	if !canView || canTable {
		t.Fatalf("echain_reader: view %v, table %v", canView, canTable)
	}
	// A database migrated by a newer binary is refused.
	if _, err := s.Pool().Exec(ctx, "INSERT INTO indexer.schema_migrations (version, name) VALUES (9999, 'future.sql')"); err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err == nil || !strings.Contains(err.Error(), "newer than this binary") {
		t.Fatalf("newer database: %v", err)
	}
}

// A store indexed with one table layout refuses another and says how to re-sync; Reset
// re-creates the tables; a change of descriptions only is accepted and refreshes the views.
func TestSchemaFingerprint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := storetest.NewDB(t)
	s := openURL(t, url, mustParse(t, smallSDL), store.Options{})
	b := s.NewBatch()
	b.StartBlock(ptr(1, 0))
	b.Set("Acct", []any{"a", int32(1), nil, []string{}})
	commitBlocks(t, s, b, []store.BlockPtr{ptr(1, 0)}, 0)

	described := strings.Replace(smallSDL, "  n: Int!\n", "  \"How many.\"\n  n: Int!\n", 1)
	d := openURL(t, url, mustParse(t, described), store.Options{})
	var comment string
	if err := d.Pool().QueryRow(ctx, `SELECT col_description('echain.acct'::regclass, 2)`).Scan(&comment); err != nil || !strings.Contains(comment, "How many.") {
		t.Fatalf("view comment after a description change: %q %v", comment, err)
	}

	changed := strings.Replace(smallSDL, "  n: Int!\n", "  n: Int!\n  extra: BigInt\n", 1)
	c, err := store.Open(ctx, url, mustParse(t, changed), store.Options{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Migrate(ctx)
	if !errors.Is(err, store.ErrSchemaChanged) || !strings.Contains(err.Error(), "echain-indexer resync --from-start") {
		t.Fatalf("changed schema: %v", err)
	}
	if h, err := s.Head(ctx); err != nil || h == nil || h.Number != 1 {
		t.Fatalf("refusal touched the data: %v %v", h, err)
	}
	if err := c.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Migrate(ctx); err != nil {
		t.Fatalf("after reset: %v", err)
	}
	if h, err := c.Head(ctx); err != nil || h != nil {
		t.Fatalf("head after reset: %v %v", h, err)
	}
	b = c.NewBatch()
	b.StartBlock(ptr(1, 0))
	b.Set("Acct", []any{"a", int32(1), bigOf("5"), nil, []string{}})
	commitBlocks(t, c, b, []store.BlockPtr{ptr(1, 0)}, 0)
	// The old layout is now the stranger.
	if err := s.Migrate(ctx); !errors.Is(err, store.ErrSchemaChanged) {
		t.Fatalf("old schema after reset: %v", err)
	}
}

// With HistoryBlocks, versions older than the retained blocks are pruned in the background,
// versions of a batch below that collapse, time travel stays exact inside the history, and a
// revert inside the window still works.
func TestPruning(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	s, _ := openStore(t, mustParse(t, smallSDL), store.Options{HistoryBlocks: 10, Registerer: reg})
	// One batch of 40 blocks, final up to 35: blocks up to 30 (= 40 - 10) collapse.
	var ps []store.BlockPtr
	b := s.NewBatch()
	for n := int64(1); n <= 40; n++ {
		ps = append(ps, ptr(n, 0))
		b.StartBlock(ptr(n, 0))
		b.Set("Acct", []any{"hot", int32(n), nil, []string{}})
	}
	commitBlocks(t, s, b, ps, 35)
	var versions int
	count := func() int {
		t.Helper()
		if err := s.Pool().QueryRow(ctx, "SELECT count(*) FROM entities.acct WHERE id = 'hot'").Scan(&versions); err != nil {
			t.Fatal(err)
		}
		return versions
	}
	if n := count(); n != 11 { // one for blocks 1..30, one each for 31..40
		t.Fatalf("%d versions after a collapsing batch, want 11", n)
	}
	// Block by block up to 80, final 5 behind.
	for n := int64(41); n <= 80; n++ {
		b := s.NewBatch()
		b.StartBlock(ptr(n, 0))
		b.Set("Acct", []any{"hot", int32(n), nil, []string{}})
		commitBlocks(t, s, b, []store.BlockPtr{ptr(n, 0)}, n-5)
	}
	if _, err := s.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := s.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Head 80, 10 blocks kept, final 75: versions that ended at block 70 or before are gone.
	if n := count(); n != 11 || st.HistoryFrom != 70 {
		t.Fatalf("after pruning: %d versions, history from %d (want 11 and 70)", n, st.HistoryFrom)
	}
	for n := st.HistoryFrom; n <= 80; n++ {
		var v int32
		if err := s.Pool().QueryRow(ctx, "SELECT n FROM entities.acct WHERE id = 'hot' AND block_range @> $1::int4", n).Scan(&v); err != nil || int64(v) != n {
			t.Fatalf("time travel to %d: %d %v", n, v, err)
		}
	}
	if got := counterSum(t, reg, "echain_indexer_store_pruned_versions_total"); got != 40 { // 11 + 40 written, 11 kept
		t.Fatalf("pruned metric %v", got)
	}
	if err := s.RevertTo(ctx, ptr(77, 0)); err != nil {
		t.Fatal(err)
	}
	if row, err := s.NewBatch().Get(ctx, "Acct", "hot"); err != nil || row[1] != int32(77) {
		t.Fatalf("after revert: %v %v", row, err)
	}
	if err := s.RevertTo(ctx, ptr(60, 0)); !errors.Is(err, store.ErrHistoryPruned) {
		t.Fatalf("revert into pruned history: %v", err)
	}
	checkVersions(t, s)
}

func counterSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

// Every commit and revert notifies, in its transaction, with the changed ids per type; too many
// ids for the 8000-byte limit become null for the largest types.
func TestNotifications(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, url := openStore(t, mustParse(t, smallSDL), store.Options{})
	conn := listen(t, url)

	b := s.NewBatch()
	b.StartBlock(ptr(1, 0))
	b.Set("Acct", []any{"a", int32(1), nil, []string{}})
	b.Set("Acct", []any{"b", int32(1), nil, []string{}})
	b.Set("Ev", []any{"e1", "a", int32(1)})
	commitBlocks(t, s, b, []store.BlockPtr{ptr(1, 0)}, 0)
	c, payload := nextChange(t, conn)
	want := fmt.Sprintf(`{"block":1,"hash":"%s","revert":false,"types":{"Acct":["a","b"],"Ev":["e1"]}}`, ptr(1, 0).Hash.Hex())
	if payload != want {
		t.Fatalf("payload\n got %s\nwant %s", payload, want)
	}

	b = s.NewBatch()
	b.StartBlock(ptr(2, 0))
	b.Set("Acct", []any{"a", int32(2), nil, []string{}})
	for i := range 1000 {
		b.Set("Ev", []any{fmt.Sprintf("big-%04d", i), "a", int32(2)})
	}
	commitBlocks(t, s, b, []store.BlockPtr{ptr(2, 0)}, 0)
	c, payload = nextChange(t, conn)
	if len(payload) >= 8000 || c.Block != 2 || c.Revert || !slicesEqual(c.Types["Acct"], []string{"a"}) || c.Types["Ev"] != nil {
		t.Fatalf("large payload (%d bytes): %+v", len(payload), c)
	}
	if _, ok := c.Types["Ev"]; !ok {
		t.Fatal("a type over the limit must stay in the payload as null")
	}

	if err := s.RevertTo(ctx, ptr(1, 0)); err != nil {
		t.Fatal(err)
	}
	c, payload = nextChange(t, conn)
	if !c.Revert || c.Block != 1 || c.Hash != ptr(1, 0).Hash.Hex() || !slicesEqual(c.Types["Acct"], []string{"a"}) || c.Types["Ev"] != nil {
		t.Fatalf("revert payload %s", payload)
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(payload), &raw); err != nil {
		t.Fatal(err)
	}
	// No notification for a refused commit.
	b = s.NewBatch()
	b.StartBlock(ptr(1, 0))
	if err := s.Commit(ctx, b, commitOf([]store.BlockPtr{ptr(1, 0)}, 0)); err == nil {
		t.Fatal("commit below head succeeded")
	}
	nctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if n, err := conn.WaitForNotification(nctx); err == nil {
		t.Fatalf("unexpected notification %s", n.Payload)
	}
}

func slicesEqual(a, b []string) bool {
	return strings.Join(a, "\x00") == strings.Join(b, "\x00") && len(a) == len(b)
}

// The control tables: resync requests, indexing errors (forgotten by reverts), metadata cache,
// and the writer lock.
func TestControlTables(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := openStore(t, mustParse(t, smallSDL), store.Options{})
	if r, err := s.NextResync(ctx); err != nil || r != nil {
		t.Fatalf("no request yet: %v %v", r, err)
	}
	id1, err := s.RequestResync(ctx, store.ResyncFromStart, "schema changed")
	if err != nil {
		t.Fatal(err)
	}
	id2, err := s.RequestResync(ctx, 42, "")
	if err != nil {
		t.Fatal(err)
	}
	if r, err := s.NextResync(ctx); err != nil || r.ID != id1 || r.FromBlock != store.ResyncFromStart || r.Status != "pending" {
		t.Fatalf("next: %+v %v", r, err)
	}
	if err := s.FinishResync(ctx, id1, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishResync(ctx, id2, "boom"); err != nil {
		t.Fatal(err)
	}
	if r, err := s.GetResync(ctx, id2); err != nil || r.Status != "failed" || r.Error != "boom" || r.FinishedAt == nil || r.FromBlock != 42 {
		t.Fatalf("get: %+v %v", r, err)
	}
	if r, err := s.NextResync(ctx); err != nil || r != nil {
		t.Fatalf("all done: %+v %v", r, err)
	}
	if err := s.FinishResync(ctx, 999, ""); err == nil {
		t.Fatal("finishing an unknown request succeeded")
	}

	for n := int64(1); n <= 3; n++ {
		b := s.NewBatch()
		b.StartBlock(ptr(n, 0))
		commitBlocks(t, s, b, []store.BlockPtr{ptr(n, 0)}, 0)
		if err := s.RecordIndexingError(ctx, store.IndexingError{Block: n, BlockHash: ptr(n, 0).Hash, Handler: "h", Message: "bad\x00", Deterministic: true}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RevertTo(ctx, ptr(1, 0)); err != nil {
		t.Fatal(err)
	}
	errs, err := s.IndexingErrors(ctx)
	if err != nil || len(errs) != 1 || errs[0].Block != 1 || errs[0].Message != "bad" || errs[0].BlockHash != ptr(1, 0).Hash {
		t.Fatalf("indexing errors after revert: %+v %v", errs, err)
	}
	if has, err := s.HasIndexingErrors(ctx); err != nil || !has {
		t.Fatalf("has errors: %v %v", has, err)
	}

	if _, _, found, err := s.MetadataGet(ctx, "ipfs://a"); err != nil || found {
		t.Fatalf("empty cache: %v %v", found, err)
	}
	if err := s.MetadataPut(ctx, "ipfs://a", json.RawMessage(`{"description":"d"}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.MetadataPut(ctx, "ipfs://gone", nil); err != nil {
		t.Fatal(err)
	}
	if err := s.MetadataPut(ctx, "ipfs://bad", json.RawMessage(`{`)); err == nil {
		t.Fatal("invalid JSON cached")
	}
	body, _, found, err := s.MetadataGet(ctx, "ipfs://a")
	if err != nil || !found || !strings.Contains(string(body), `"description": "d"`) {
		t.Fatalf("metadata: %s %v %v", body, found, err)
	}
	if body, _, found, err := s.MetadataGet(ctx, "ipfs://gone"); err != nil || !found || body != nil {
		t.Fatalf("unavailable metadata: %s %v %v", body, found, err)
	}

	w, err := s.LockWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	other := openURLNoMigrate(t, s)
	if _, err := other.LockWriter(ctx); !errors.Is(err, store.ErrWriterLocked) {
		t.Fatalf("second writer: %v", err)
	}
	if err := w.Alive(ctx); err != nil {
		t.Fatal(err)
	}
	w.Release()
	w2, err := other.LockWriter(ctx)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	w2.Release()
}
