package store_test

import (
	"context"
	"fmt"
	"math"
	"math/big"
	"strings"
	"testing"

	"github.com/echain/echain-indexer/schema/entity"
	"github.com/echain/echain-indexer/store"
)

func bigOf(s string) *big.Int {
	n, ok := new(big.Int).SetString(s, 10)
	if !ok {
		panic(s)
	}
	return n
}

// Every column type survives Set -> Commit -> Get from PostgreSQL with its Go type, nulls and
// lists included; values the store normalizes come back normalized. Both write paths: pipelined
// INSERTs (a few rows) and binary COPY (many).
func TestRoundTripEveryColumnType(t *testing.T) {
	t.Parallel()
	for _, pad := range []int{0, 100} {
		t.Run(fmt.Sprintf("rows=%d", 3+pad), func(t *testing.T) { roundTrip(t, pad) })
	}
}

func roundTrip(t *testing.T, pad int) {
	ctx := context.Background()
	// No cache: every Get after the commit reads PostgreSQL.
	s, _ := openStore(t, mustParse(t, allTypesSDL), store.Options{CacheEntities: -1})
	full := []any{
		"full", "héllo ✓", "x", []byte{0, 1, 0xfe}, []byte{}, bigOf("-123456789012345678901234567890123456789"), bigOf("0"),
		"-12.3400", "1e3", int32(math.MinInt32), int32(math.MaxInt32), int64(math.MinInt64), int64(math.MaxInt64), true, false,
		"o1", []string{"a", "", "ü"}, [][]byte{{1}, {}, {0xff, 0}}, []*big.Int{bigOf("1"), bigOf("-1"), new(big.Int).Lsh(big.NewInt(1), 300)},
		[]string{"0.000001", "-5", "10.50"}, []int32{1, -2, 3}, []int64{math.MaxInt64, 0}, []bool{true, false},
	}
	nulls := []any{
		"nulls", "", nil, []byte{9}, nil, big.NewInt(0), (*big.Int)(nil), "0", nil, int32(0), nil, int64(0), nil, false, nil,
		nil, []string{}, nil, nil, nil, nil, nil, nil,
	}
	dirty := []any{
		"dirty", "a\x00b\xffc", nil, []byte{}, nil, new(big.Int).Lsh(big.NewInt(1), 64), nil, "+007.50", nil, int32(1), nil, int64(1), nil, true, nil,
		nil, []string{"x\x00y"}, [][]byte{}, []*big.Int{}, []string{}, []int32{}, []int64{}, []bool{},
	}
	want := map[string][]any{
		"full": {
			"full", "héllo ✓", "x", []byte{0, 1, 0xfe}, []byte{}, bigOf("-123456789012345678901234567890123456789"), bigOf("0"),
			"-12.3400", "1000", int32(math.MinInt32), int32(math.MaxInt32), int64(math.MinInt64), int64(math.MaxInt64), true, false,
			"o1", []string{"a", "", "ü"}, [][]byte{{1}, {}, {0xff, 0}}, []*big.Int{bigOf("1"), bigOf("-1"), new(big.Int).Lsh(big.NewInt(1), 300)},
			[]string{"0.000001", "-5", "10.50"}, []int32{1, -2, 3}, []int64{math.MaxInt64, 0}, []bool{true, false},
		},
		"nulls": {
			"nulls", "", nil, []byte{9}, nil, big.NewInt(0), nil, "0", nil, int32(0), nil, int64(0), nil, false, nil,
			nil, []string{}, nil, nil, nil, nil, nil, nil,
		},
		// NUL dropped, invalid UTF-8 replaced, decimals canonical.
		"dirty": {
			"dirty", "ab\uFFFDc", nil, []byte{}, nil, new(big.Int).Lsh(big.NewInt(1), 64), nil, "7.50", nil, int32(1), nil, int64(1), nil, true, nil,
			nil, []string{"xy"}, [][]byte{}, []*big.Int{}, []string{}, []int32{}, []int64{}, []bool{},
		},
	}
	b := s.NewBatch()
	b.StartBlock(ptr(1, 0))
	for _, r := range [][]any{full, nulls, dirty} {
		b.Set("Thing", r)
	}
	for i := range pad {
		for _, r := range [][]any{full, nulls, dirty} {
			c := append([]any{}, r...)
			c[0] = fmt.Sprintf("%s-%d", r[0], i)
			b.Set("Thing", c)
		}
	}
	b.Set("Other", []any{"o1", "full", int32(7)})
	b.Set("Other", []any{"o2", nil, int32(8)})
	// The batch answers with the normalized row before the commit too.
	if got, err := b.Get(ctx, "Thing", "dirty"); err != nil || canonRow(got) != canonRow(want["dirty"]) {
		t.Fatalf("batch Get dirty:\n got %s\nwant %s (%v)", canonRow(got), canonRow(want["dirty"]), err)
	}
	commitBlocks(t, s, b, []store.BlockPtr{ptr(1, 0)}, 0)

	b = s.NewBatch()
	for id, w := range want {
		ids := []string{id}
		if pad > 0 {
			ids = append(ids, fmt.Sprintf("%s-%d", id, pad-1))
		}
		for _, rid := range ids {
			got, err := b.Get(ctx, "Thing", rid)
			if err != nil {
				t.Fatal(err)
			}
			w := append([]any{rid}, w[1:]...)
			if canonRow(got) != canonRow(w) {
				t.Errorf("%s:\n got %s\nwant %s", rid, canonRow(got), canonRow(w))
			}
		}
	}
	if got, err := b.Get(ctx, "Other", "o2"); err != nil || canonRow(got) != canonRow([]any{"o2", nil, int32(8)}) {
		t.Errorf("Other o2: %s %v", canonRow(got), err)
	}
	if got, err := b.Get(ctx, "Thing", "absent"); err != nil || got != nil {
		t.Errorf("absent entity: %v %v", got, err)
	}

	// The analyst view shows Bytes as 0x hex and carries the schema's descriptions.
	var hexB, hexBN string
	var hexList []string
	if err := s.Pool().QueryRow(ctx, `SELECT b, bn, byts FROM echain.thing WHERE id = 'full'`).Scan(&hexB, &hexBN, &hexList); err != nil {
		t.Fatal(err)
	}
	if hexB != "0x0001fe" || hexBN != "0x" || strings.Join(hexList, ",") != "0x01,0x,0xff00" {
		t.Errorf("view hex: %q %q %v", hexB, hexBN, hexList)
	}
	var viewComment, colComment string
	if err := s.Pool().QueryRow(ctx, `SELECT obj_description('echain.thing'::regclass), col_description('echain.thing'::regclass, 2)`).Scan(&viewComment, &colComment); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(viewComment, "Every column type.") || !strings.Contains(colComment, "A required string.") {
		t.Errorf("comments: view %q, column %q", viewComment, colComment)
	}
}

// Rows that do not fit the schema are refused with a message naming the type, id and field,
// and nothing is written.
func TestSetRejectsBadRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := openStore(t, mustParse(t, allTypesSDL), store.Options{})
	good := func() []any {
		return []any{"t", "s", nil, []byte{1}, nil, big.NewInt(1), nil, "1", nil, int32(1), nil, int64(1), nil, true, nil,
			nil, []string{}, nil, nil, nil, nil, nil, nil}
	}
	cases := map[string]struct {
		typ  string
		row  func() []any
		want string
	}{
		"unknown type": {"Nope", good, `unknown entity type "Nope"`},
		"short row":    {"Thing", func() []any { return good()[:5] }, "row has 5 values"},
		"wrong type":   {"Thing", func() []any { r := good(); r[5] = int64(1); return r }, `Thing "t": field bi (BigInt!): got int64, want *big.Int`},
		"null":         {"Thing", func() []any { r := good(); r[3] = nil; return r }, `field b (Bytes!) is non-null but got nil`},
		"typed nil":    {"Thing", func() []any { r := good(); r[5] = (*big.Int)(nil); return r }, `field bi (BigInt!) is non-null`},
		"decimal":      {"Thing", func() []any { r := good(); r[7] = "1.2.3"; return r }, `"1.2.3" is not a decimal number`},
		"list elem":    {"Thing", func() []any { r := good(); r[18] = []*big.Int{nil}; return r }, "element 0 is nil"},
		"empty id":     {"Thing", func() []any { r := good(); r[0] = ""; return r }, "id must be a non-empty string"},
		"Int overflow": {"Thing", func() []any { r := good(); r[9] = 5; return r }, "got int, want int32"},
	}
	for name, c := range cases {
		b := s.NewBatch()
		b.StartBlock(ptr(1, 0))
		b.Set(c.typ, c.row())
		b.Set("Other", []any{"fine", nil, int32(1)})
		err := s.Commit(ctx, b, commitOf([]store.BlockPtr{ptr(1, 0)}, 0))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", name, err, c.want)
		}
	}
	b := s.NewBatch()
	b.Set("Other", []any{"early", nil, int32(1)})
	if err := s.Commit(ctx, b, commitOf([]store.BlockPtr{ptr(1, 0)}, 0)); err == nil || !strings.Contains(err.Error(), "before StartBlock") {
		t.Errorf("Set before StartBlock: %v", err)
	}
	if h, err := s.Head(ctx); err != nil || h != nil {
		t.Fatalf("a refused commit moved the head: %v %v", h, err)
	}
	if d := dump(t, s); len(d) != 0 {
		t.Fatalf("a refused commit wrote %v", d)
	}
}

// The generated entities load what they saved, through the batch and through PostgreSQL.
func TestGeneratedEntitiesRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := openStore(t, echainSchema(t), store.Options{CacheEntities: -1})
	loc := "Lisbon"
	ev := &entity.Event{ID: "1", Creator: []byte{0xab, 0xcd}, Organizer: "0xabcd", Title: "Show", MetadataURI: "ipfs://x",
		Description: "d", Category: "music", Location: &loc, ImageURL: nil, TicketContract: make([]byte, 20),
		StartTime: big.NewInt(10), EndTime: big.NewInt(20), MaxTickets: big.NewInt(100), TicketPrice: bigOf("10000000000000000"),
		TicketsSold: big.NewInt(0), TicketsUsed: big.NewInt(0), Revenue: big.NewInt(0), Status: "active",
		CreatedAt: big.NewInt(1700000000), CreatedAtBlock: big.NewInt(1), UpdatedAt: big.NewInt(1700000000)}
	b := s.NewBatch()
	b.StartBlock(ptr(1, 0))
	ev.Save(b)
	// Changing the struct after Save does not change the saved version.
	ev.TicketsSold.SetInt64(99)
	ev.Creator[0] = 0
	got, err := entity.LoadEvent(ctx, b, "1")
	if err != nil || got.TicketsSold.Int64() != 0 || got.Creator[0] != 0xab {
		t.Fatalf("Save did not copy: %+v %v", got, err)
	}
	got.TicketsSold.SetInt64(1)
	got.Revenue = new(big.Int).Mul(got.TicketsSold, got.TicketPrice)
	got.Save(b)
	commitBlocks(t, s, b, []store.BlockPtr{ptr(1, 0)}, 0)

	b = s.NewBatch()
	back, err := entity.LoadEvent(ctx, b, "1")
	if err != nil || back == nil {
		t.Fatalf("LoadEvent: %v %v", back, err)
	}
	if canonRow(back.Row()) != canonRow(got.Row()) {
		t.Fatalf("round trip:\n got %s\nwant %s", canonRow(back.Row()), canonRow(got.Row()))
	}
	if back.ImageURL != nil || back.Location == nil || *back.Location != "Lisbon" {
		t.Fatalf("nullable fields: %v %v", back.ImageURL, back.Location)
	}
	if none, err := entity.LoadTicket(ctx, b, "1-1"); none != nil || err != nil {
		t.Fatalf("absent ticket: %v %v", none, err)
	}
	// A missing non-null value is refused at commit with the field named.
	b = s.NewBatch()
	b.StartBlock(ptr(2, 0))
	(&entity.Ticket{ID: "1-1", Event: "1"}).Save(b)
	if err := s.Commit(ctx, b, commitOf([]store.BlockPtr{ptr(2, 0)}, 0)); err == nil || !strings.Contains(err.Error(), `Ticket "1-1": field contract (Bytes!) is non-null`) {
		t.Fatalf("incomplete ticket: %v", err)
	}
}
