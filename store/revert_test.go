package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/echain/echain-indexer/store"
)

// chainModel is the expected store, computed without the store: the canonical blocks and the
// entity writes each made.
type chainModel struct {
	blocks []modelBlock // blocks[i] is block i+1
}

type modelBlock struct {
	ptr    store.BlockPtr
	accts  map[string][]any // final row of each Acct written in the block
	evs    map[string][]any
	finals int64 // finalized as of this block's commit
}

// stateAt is every entity visible at block n: id -> row, per type.
func (m *chainModel) stateAt(n int64) (accts, evs map[string][]any) {
	accts, evs = map[string][]any{}, map[string][]any{}
	for i := int64(0); i < n && i < int64(len(m.blocks)); i++ {
		for id, r := range m.blocks[i].accts {
			accts[id] = r
		}
		for id, r := range m.blocks[i].evs {
			evs[id] = r
		}
	}
	return accts, evs
}

// driver applies random blocks, batches and reverts to a store and to the model.
type driver struct {
	t         *testing.T
	s         *store.Store
	m         *chainModel
	rng       *rand.Rand
	branch    int
	finalized int64
}

func (d *driver) head() int64 { return int64(len(d.m.blocks)) }

// batch applies k new blocks in one commit. Acct updates read their entity half the time (Get
// then Set) and write blind the other half; Ev ids repeat across branches, so a revert must
// really delete them.
func (d *driver) batch(k int) {
	ctx := context.Background()
	b := d.s.NewBatch()
	var ptrs []store.BlockPtr
	for range k {
		n := d.head() + 1
		p := ptr(n, d.branch)
		if n > 1 {
			p.ParentHash = d.m.blocks[n-2].ptr.Hash
		}
		ptrs = append(ptrs, p)
		b.StartBlock(p)
		mb := modelBlock{ptr: p, accts: map[string][]any{}, evs: map[string][]any{}}
		accts, _ := d.m.stateAt(n - 1)
		for range d.rng.IntN(6) {
			id := fmt.Sprintf("a%d", d.rng.IntN(20))
			var row []any
			if d.rng.IntN(2) == 0 {
				cur, err := b.Get(ctx, "Acct", id)
				if err != nil {
					d.t.Fatal(err)
				}
				// What the batch sees must be the model's state: earlier Sets of this batch,
				// else the committed state.
				want := mb.accts[id]
				if want == nil {
					want = accts[id]
				}
				if canonRow(cur) != canonRow(want) {
					d.t.Fatalf("block %d: Get Acct %s = %s, model %s", n, id, canonRow(cur), canonRow(want))
				}
				nv := int32(0)
				if cur != nil {
					nv = cur[1].(int32) + 1
				}
				row = []any{id, nv, nil, []string{fmt.Sprint(n)}}
			} else {
				note := fmt.Sprintf("n%d-%d", n, d.branch)
				row = []any{id, int32(d.rng.IntN(1000)), note, []string{}}
			}
			b.Set("Acct", row)
			mb.accts[id] = row
		}
		for i := range d.rng.IntN(3) {
			id := fmt.Sprintf("e%d-%d", n, i)
			row := []any{id, fmt.Sprintf("a%d", d.rng.IntN(20)), int32(d.branch)}
			b.Set("Ev", row)
			mb.evs[id] = row
		}
		d.m.blocks = append(d.m.blocks, mb)
	}
	if d.rng.IntN(3) == 0 {
		d.finalized = max(d.finalized, d.head()-6)
	}
	commitBlocks(d.t, d.s, b, ptrs, d.finalized)
}

func (d *driver) revert(depth int64) {
	to := d.head() - depth
	if err := d.s.RevertTo(context.Background(), d.m.blocks[to-1].ptr); err != nil {
		d.t.Fatal(err)
	}
	d.m.blocks = d.m.blocks[:to]
	d.branch++
}

// checkCurrent compares the committed current state with the model's.
func (d *driver) checkCurrent() {
	d.checkAt(-1)
}

// checkAt compares the state visible at block n (n < 0: current) with the model's.
func (d *driver) checkAt(n int64) {
	d.t.Helper()
	ctx := context.Background()
	at := n
	if n < 0 {
		at = d.head()
	}
	accts, evs := d.m.stateAt(at)
	pred, ipred := "upper_inf(block_range)", "true"
	if n >= 0 {
		pred, ipred = fmt.Sprintf("block_range @> %d", n), fmt.Sprintf("block <= %d", n)
	}
	got := map[string]string{}
	rows, err := d.s.Pool().Query(ctx, "SELECT id, n, note, tags FROM entities.acct WHERE "+pred)
	if err != nil {
		d.t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var nv int32
		var note *string
		var tags []string
		if err := rows.Scan(&id, &nv, &note, &tags); err != nil {
			d.t.Fatal(err)
		}
		var nt any
		if note != nil {
			nt = *note
		}
		got["Acct "+id] = canonRow([]any{id, nv, nt, tags})
	}
	rows, err = d.s.Pool().Query(ctx, "SELECT id, acct, v FROM entities.ev WHERE "+ipred)
	if err != nil {
		d.t.Fatal(err)
	}
	for rows.Next() {
		var id, acct string
		var v int32
		if err := rows.Scan(&id, &acct, &v); err != nil {
			d.t.Fatal(err)
		}
		got["Ev "+id] = canonRow([]any{id, acct, v})
	}
	want := map[string]string{}
	for id, r := range accts {
		want["Acct "+id] = canonRow(r)
	}
	for id, r := range evs {
		want["Ev "+id] = canonRow(r)
	}
	if len(got) != len(want) {
		d.t.Fatalf("at %d: %d entities, model has %d", at, len(got), len(want))
	}
	for k, w := range want {
		if got[k] != w {
			d.t.Fatalf("at %d: %s = %s, model %s", at, k, got[k], w)
		}
	}
}

// Random batches and reverts (depth up to the window), with blind and read-modify writes and
// the cross-batch cache on: after each step the current state is the model's, at the end every
// block's time-travel state is, the versions never overlap, and the tables equal a replay of
// the surviving blocks in other batch sizes.
func TestRandomCommitsAndRevertsMatchReplay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sch := mustParse(t, smallSDL)
	s, _ := openStore(t, sch, store.Options{CacheEntities: 8}) // small: evictions happen
	d := &driver{t: t, s: s, m: &chainModel{}, rng: rand.New(rand.NewPCG(1, 2))}
	reverts := 0
	for step := 0; step < 250; step++ {
		if d.head() > d.finalized+1 && d.rng.IntN(4) == 0 {
			d.revert(1 + d.rng.Int64N(min(d.head()-d.finalized, 10)))
			reverts++
		} else {
			d.batch(1 + d.rng.IntN(4))
		}
		d.checkCurrent()
		if h, err := s.Head(ctx); err != nil || h.Number != d.head() || h.Hash != d.m.blocks[d.head()-1].ptr.Hash {
			t.Fatalf("head %v %v, model %d", h, err, d.head())
		}
	}
	if reverts < 30 {
		t.Fatalf("only %d reverts: the test does not exercise them", reverts)
	}
	for n := int64(1); n <= d.head(); n++ {
		d.checkAt(n)
	}
	checkVersions(t, s)
	win, err := s.Window(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range win {
		if w.Number <= d.finalized || w.Hash != d.m.blocks[w.Number-1].ptr.Hash {
			t.Fatalf("window block %d (finalized %d) is not canonical", w.Number, d.finalized)
		}
	}

	// Replay the canonical chain into a fresh store, in batches of 3.
	r, _ := openStore(t, sch, store.Options{})
	for i := 0; i < len(d.m.blocks); i += 3 {
		b := r.NewBatch()
		var ptrs []store.BlockPtr
		for _, mb := range d.m.blocks[i:min(i+3, len(d.m.blocks))] {
			b.StartBlock(mb.ptr)
			ptrs = append(ptrs, mb.ptr)
			for _, id := range sortedKeys(mb.accts) {
				b.Set("Acct", mb.accts[id])
			}
			for _, id := range sortedKeys(mb.evs) {
				b.Set("Ev", mb.evs[id])
			}
		}
		commitBlocks(t, r, b, ptrs, 0)
	}
	got, want := dump(t, s), dump(t, r)
	if !slices.Equal(got, want) {
		t.Fatalf("store after reverts differs from the replay:\n%s", diff(got, want))
	}
}

// A revert below the window (resync --from-block) scans instead of using the window, with the
// same result as a replay.
func TestRevertBelowWindow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sch := mustParse(t, smallSDL)
	s, _ := openStore(t, sch, store.Options{})
	d := &driver{t: t, s: s, m: &chainModel{}, rng: rand.New(rand.NewPCG(3, 4))}
	for d.head() < 60 {
		d.batch(3)
		d.finalized = d.head() - 5
	}
	// Commit once more so that finality moves past most blocks.
	d.batch(1)
	st, err := s.Status(ctx)
	if err != nil || st.Finalized < 50 {
		t.Fatalf("finalized %v %v", st, err)
	}
	to := int64(20)
	if err := s.RevertTo(ctx, d.m.blocks[to-1].ptr); err != nil {
		t.Fatal(err)
	}
	d.m.blocks = d.m.blocks[:to]
	d.finalized = to
	d.branch++
	d.checkCurrent()
	checkVersions(t, s)
	st, err = s.Status(ctx)
	if err != nil || st.Head.Number != to || st.Finalized != to {
		t.Fatalf("after revert: %+v %v", st, err)
	}
	for d.head() < 40 {
		d.batch(2)
	}
	for n := int64(1); n <= d.head(); n++ {
		d.checkAt(n)
	}
}

func sortedKeys(m map[string][]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func diff(got, want []string) string {
	var b strings.Builder
	g, w := map[string]bool{}, map[string]bool{}
	for _, x := range got {
		g[x] = true
	}
	for _, x := range want {
		w[x] = true
	}
	n := 0
	for _, x := range got {
		if !w[x] && n < 10 {
			fmt.Fprintf(&b, "+ %s\n", x)
			n++
		}
	}
	for _, x := range want {
		if !g[x] && n < 20 {
			fmt.Fprintf(&b, "- %s\n", x)
			n++
		}
	}
	return b.String()
}

// With bounded history, random batches and reverts keep the current state and the retained
// history exact, and pruning leaves no more versions than the retained blocks need.
func TestRandomWithBoundedHistory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := openStore(t, mustParse(t, smallSDL), store.Options{HistoryBlocks: 15, CacheEntities: 8})
	d := &driver{t: t, s: s, m: &chainModel{}, rng: rand.New(rand.NewPCG(5, 6))}
	for step := 0; step < 200; step++ {
		if d.head() > d.finalized+1 && d.rng.IntN(4) == 0 {
			d.revert(1 + d.rng.Int64N(min(d.head()-d.finalized, 6)))
		} else {
			d.batch(1 + d.rng.IntN(8))
		}
		d.checkCurrent()
	}
	if _, err := s.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := s.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.HistoryFrom < d.head()-30 || st.HistoryFrom > d.head()-15 {
		t.Fatalf("history kept from %d at head %d (15 blocks, finality 6 behind)", st.HistoryFrom, d.head())
	}
	for n := st.HistoryFrom; n <= d.head(); n++ {
		d.checkAt(n)
	}
	checkVersions(t, s)
	var old int
	if err := s.Pool().QueryRow(ctx, "SELECT count(*) FROM entities.acct WHERE NOT upper_inf(block_range) AND upper(block_range) <= $1", st.HistoryFrom).Scan(&old); err != nil || old != 0 {
		t.Fatalf("%d versions older than the history survived pruning (%v)", old, err)
	}
}
