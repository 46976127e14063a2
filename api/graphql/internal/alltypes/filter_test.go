package alltypes

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/echain/echain-indexer/api/graphql/engine"
	"github.com/echain/echain-indexer/api/graphql/internal/gqltest"
	"github.com/echain/echain-indexer/schema"
	"github.com/echain/echain-indexer/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Run(m)) }

// fixture is a seeded database, the handler over it and the oracle.
type fixture struct {
	// cases run, and cases whose answer was neither empty nor every row: the second count
	// shows the filters were discriminating.
	cases, selective int
	sch              *schema.Schema
	w                *gqltest.Writer
	h                *engine.Handler
	ref              *engine.Handler // graphql-go's executor only (DisableFastPath)
	o                *oracle
}

var (
	names = []string{"apple", "Apple", "APPLE pie", "banana", "ban_ana", "50% off", `back\slash`, "cherry", "éclair", "", "Zebra", "zebra crossing"}
	words = []string{"red", "Red", "green", "blue", "x_y", "100%"}
)

func seed(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	sch, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	pool := gqltest.OpenDB(t, sch)
	w := gqltest.NewWriter(pool, sch)
	rnd := rand.New(rand.NewPCG(7, 11))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	pick := func(l []string) string { return l[rnd.IntN(len(l))] }
	maybe := func(p float64, v any) any {
		if rnd.Float64() < p {
			return nil
		}
		return v
	}
	owners := []string{"o1", "o2", "o3", "o4", "o5", "o6"}
	ownerNames := []string{"Alice", "alice", "Bob", "b_ob", "100%", "Zed"}
	for i, id := range owners {
		must(w.Put(ctx, "Owner", 1, gqltest.Row{"id": id, "name": ownerNames[i], "rank": int32(i % 3)}))
	}
	bigs := []*big.Int{big.NewInt(0), big.NewInt(-7), big.NewInt(42), new(big.Int).Lsh(big.NewInt(1), 100), big.NewInt(1000000)}
	decs := []string{"0.5", "1", "1.50", "-2.25", "1000000000000000000000.000001", "0"}
	thing := func(i int, block int64) gqltest.Row {
		var tags []string
		for range rnd.IntN(4) {
			tags = append(tags, pick(words))
		}
		if tags == nil {
			tags = []string{}
		}
		var nums any
		if rnd.IntN(3) > 0 {
			l := []int32{}
			for range rnd.IntN(3) {
				l = append(l, int32(rnd.IntN(5)))
			}
			nums = l
		}
		var bl any
		if rnd.IntN(2) == 0 {
			bl = []string{bigs[rnd.IntN(len(bigs))].String(), bigs[rnd.IntN(len(bigs))].String()}
		}
		var blobs any
		if rnd.IntN(2) == 0 {
			blobs = [][]byte{{byte(rnd.IntN(3))}, {0xab, byte(rnd.IntN(3))}}
		}
		data := []byte{0xab, byte(rnd.IntN(4)), byte(rnd.IntN(4))}[:1+rnd.IntN(3)]
		return gqltest.Row{
			"id": fmt.Sprintf("t%d", i), "name": pick(names), "nick": maybe(0.3, pick(names)),
			"count": int32(rnd.IntN(12) - 4), "small": maybe(0.4, int32(rnd.IntN(3))),
			"big": bigs[rnd.IntN(len(bigs))], "bigOpt": maybe(0.5, bigs[rnd.IntN(len(bigs))]),
			"dec": decs[rnd.IntN(len(decs))], "i8": int64(rnd.IntN(5)) + 9007199254740990, "ts": int64(rnd.IntN(4)) * 1_000_000,
			"flag": rnd.IntN(2) == 0, "flagOpt": maybe(0.4, rnd.IntN(2) == 0),
			"data": data, "dataOpt": maybe(0.5, []byte{byte(rnd.IntN(3))}),
			"tags": tags, "nums": nums, "bigs": bl, "blobs": blobs,
			"owner": owners[rnd.IntN(len(owners))], "maybe": maybe(0.5, owners[rnd.IntN(len(owners))]),
		}
	}
	for i := 1; i <= 60; i++ {
		must(w.Put(ctx, "Thing", int64(1+i%5), thing(i, 0)))
	}
	// later versions: some things change at blocks 6..8, some vanish at 9
	for i := 1; i <= 60; i += 4 {
		must(w.Put(ctx, "Thing", int64(6+i%3), thing(i, 0)))
	}
	must(w.Delete(ctx, "Thing", "t13", 9))
	must(w.Delete(ctx, "Thing", "t14", 9))
	for i := 1; i <= 120; i++ {
		must(w.Put(ctx, "Part", int64(1+i%9), gqltest.Row{"id": fmt.Sprintf("p%d", i), "thing": fmt.Sprintf("t%d", 1+rnd.IntN(60)),
			"weight": decs[rnd.IntN(len(decs))], "label": pick(words)}))
	}
	must(w.SetHead(ctx, gqltest.Block{Number: 10, Hash: []byte{10}, ParentHash: []byte{9}, Timestamp: 1000}, 0))
	must(w.Analyze(ctx))
	e, err := engine.New(pool, sch, Binding(), engine.Options{})
	must(err)
	ref, err := engine.New(pool, sch, Binding(), engine.Options{DisableFastPath: true})
	must(err)
	return &fixture{sch: sch, w: w, h: engine.NewHandler(e), ref: engine.NewHandler(ref), o: &oracle{sch: sch, w: w, block: 10}}
}

// jsonValue renders a stored value the way a client sends it in variables.
func jsonValue(f *schema.Field, v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case []byte:
		return "0x" + hex.EncodeToString(x)
	case *big.Int:
		return x.String()
	case int64:
		return fmt.Sprint(x)
	case int32:
		return float64(x)
	case []string:
		out := []any{}
		for _, s := range x {
			out = append(out, s)
		}
		return out
	case []int32:
		out := []any{}
		for _, n := range x {
			out = append(out, float64(n))
		}
		return out
	case [][]byte:
		out := []any{}
		for _, b := range x {
			out = append(out, "0x"+hex.EncodeToString(b))
		}
		return out
	}
	return v
}

func (fx *fixture) run(t *testing.T, name string, q query, block *int64) {
	t.Helper()
	plural := fx.sch.Type(q.typ).Plural
	vars := map[string]any{"w": q.where, "s": q.skip}
	if q.first > 0 {
		vars["f"] = q.first
	} else {
		vars["f"] = 100
	}
	if q.orderBy != "" {
		vars["o"] = q.orderBy
	}
	if q.desc {
		vars["d"] = "desc"
	}
	o := *fx.o
	if block != nil {
		vars["b"] = map[string]any{"number": *block}
		o.block = *block
	}
	// Round-trip through JSON so the oracle sees exactly what the server decodes.
	raw, _ := json.Marshal(vars)
	var sent map[string]any
	_ = json.Unmarshal(raw, &sent)
	if w, ok := sent["w"].(map[string]any); ok {
		q.where = w
	}
	gq := fmt.Sprintf(`query($w: %[1]s_filter, $o: %[1]s_orderBy, $d: OrderDirection, $f: Int, $s: Int, $b: Block_height) {
  r: %[2]s(where: $w, orderBy: $o, orderDirection: $d, first: $f, skip: $s, block: $b) { id } }`, q.typ, plural)
	resp := gqltest.Post(t, fx.h, gq, sent)
	// The fast path answers byte for byte as graphql-go's executor does (errors included).
	if ref := gqltest.Post(t, fx.ref, gq, sent); string(ref.Raw) != string(resp.Raw) {
		t.Errorf("%s: vars %s: fast path and graphql-go differ:\n fast     %s\n graphqlgo %s", name, raw, resp.Raw, ref.Raw)
	}
	if len(resp.Errors) > 0 {
		t.Errorf("%s: where %s: errors %v", name, raw, resp.Errors)
		return
	}
	var got []string
	for _, it := range resp.Data["r"].([]any) {
		got = append(got, it.(map[string]any)["id"].(string))
	}
	want := o.answer(q)
	fx.cases++
	all := len(o.answer(query{typ: q.typ, first: 1000}))
	if len(want) > 0 && len(want) < all || q.skip+len(want) < all && len(want) > 0 {
		fx.selective++
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s: vars %s:\n got  %v\n want %v", name, raw, got, want)
	}
}

// opsFor lists the filter suffixes The Graph generates for a field (graph-api.md).
func opsFor(f *schema.Field) []string {
	cmp := []string{"", "_not", "_gt", "_lt", "_gte", "_lte", "_in", "_not_in"}
	str := append(slices.Clone(cmp), "_contains", "_contains_nocase", "_not_contains", "_not_contains_nocase",
		"_starts_with", "_starts_with_nocase", "_not_starts_with", "_not_starts_with_nocase",
		"_ends_with", "_ends_with_nocase", "_not_ends_with", "_not_ends_with_nocase")
	switch {
	case f.List && (f.Kind == schema.KindString || f.Kind == schema.KindID):
		return []string{"", "_not", "_contains", "_contains_nocase", "_not_contains", "_not_contains_nocase"}
	case f.List:
		return []string{"", "_not", "_contains", "_not_contains"}
	case f.Kind == schema.KindEntity, f.Kind == schema.KindString:
		return str
	case f.Kind == schema.KindBytes:
		return append(slices.Clone(cmp), "_contains", "_not_contains")
	case f.Kind == schema.KindBoolean:
		return []string{"", "_not", "_in", "_not_in"}
	}
	return cmp
}

// TestFilterEverySuffix runs every filter suffix of every field of Thing with values taken from
// the data (present and absent ones) and compares with the oracle.
func TestFilterEverySuffix(t *testing.T) {
	fx := seed(t)
	rows := fx.o.visible("Thing")
	th := fx.sch.Type("Thing")
	rnd := rand.New(rand.NewPCG(3, 5))
	n := 0
	for _, f := range th.Columns {
		for _, op := range opsFor(f) {
			for trial := 0; trial < 3; trial++ {
				var v any
				for tries := 0; v == nil && tries < 50; tries++ {
					v = rows[rnd.IntN(len(rows))].Vals[f.Name]
				}
				jv := jsonValue(f, v)
				switch {
				case op == "_in" || op == "_not_in":
					other := jsonValue(f, rows[rnd.IntN(len(rows))].Vals[f.Name])
					l := []any{jv}
					if other != nil {
						l = append(l, other)
					}
					if trial == 2 {
						l = []any{}
					}
					jv = l
				case strings.Contains(op, "contains") || strings.Contains(op, "starts_with") || strings.Contains(op, "ends_with"):
					jv = fragment(f, jv, op, trial)
				case trial == 2 && !f.List && f.Kind != schema.KindBoolean:
					jv = absent(f)
				}
				fx.run(t, fmt.Sprintf("%s%s#%d", f.Name, op, trial), query{typ: "Thing", where: map[string]any{f.Name + op: jv}}, nil)
				n++
			}
		}
	}
	t.Logf("%d filter cases, %d selective", n, fx.selective)
	if fx.selective < n/2 {
		t.Errorf("only %d of %d cases selected some but not all rows: the data does not exercise the filters", fx.selective, n)
	}
}

// fragment picks a substring-ish value for the pattern operators.
func fragment(f *schema.Field, jv any, op string, trial int) any {
	if f.List {
		l := jv.([]any)
		if len(l) > 1 {
			l = l[:1]
		}
		if strings.Contains(op, "nocase") && len(l) > 0 {
			l = []any{strings.ToUpper(l[0].(string))}
		}
		return l
	}
	s := jv.(string)
	if f.Kind == schema.KindBytes {
		if len(s) > 4 {
			return s[:4] // 0x + one byte
		}
		return s
	}
	if trial == 2 {
		return "%"
	}
	r := []rune(s)
	switch {
	case len(r) < 2:
	case strings.Contains(op, "starts_with"):
		s = string(r[:2])
	case strings.Contains(op, "ends_with"):
		s = string(r[len(r)-2:])
	default:
		s = string(r[len(r)/2 : len(r)/2+1])
	}
	if strings.Contains(op, "nocase") && trial == 1 {
		s = strings.ToUpper(s)
	}
	return s
}

// absent is a value of the field's type that no row has.
func absent(f *schema.Field) any {
	switch f.Kind {
	case schema.KindInt:
		return float64(999)
	case schema.KindInt8, schema.KindTimestamp:
		return "-5"
	case schema.KindBigInt:
		return "123456789012345678901234567890"
	case schema.KindBigDecimal:
		return "0.125"
	case schema.KindBytes:
		return "0xffff"
	}
	return "nope"
}

// TestFilterCombinations covers null checks, and/or, nested and derived filters, _change_block,
// escaping, ordering (one level of nesting included), paging and time travel.
func TestFilterCombinations(t *testing.T) {
	fx := seed(t)
	type c = map[string]any
	l := func(xs ...any) []any { return append([]any{}, xs...) }
	cases := []struct {
		name string
		q    query
	}{
		{"nick null", query{typ: "Thing", where: c{"nick": nil}}},
		{"nick not null", query{typ: "Thing", where: c{"nick_not": nil}}},
		{"maybe null", query{typ: "Thing", where: c{"maybe": nil}}},
		{"and", query{typ: "Thing", where: c{"and": l(c{"count_gte": 0}, c{"flag": true})}}},
		{"and empty", query{typ: "Thing", where: c{"and": l()}}},
		{"or", query{typ: "Thing", where: c{"or": l(c{"count_lt": -2}, c{"name_starts_with": "ban"})}}},
		{"or empty", query{typ: "Thing", where: c{"or": l()}}},
		{"or with field", query{typ: "Thing", where: c{"flag": false, "or": l(c{"small": nil}, c{"small_gt": 1})}}},
		{"nested and in or", query{typ: "Thing", where: c{"or": l(c{"and": l(c{"count_gt": 3}, c{"count_lt": 6})}, c{"id_in": l("t1", "t2")})}}},
		{"ref nested", query{typ: "Thing", where: c{"owner_": c{"name_starts_with_nocase": "a"}}}},
		{"ref nested rank", query{typ: "Thing", where: c{"owner_": c{"rank": 1}, "count_gt": 0}}},
		{"nullable ref nested", query{typ: "Thing", where: c{"maybe_": c{"name_contains": "o"}}}},
		{"derived nested", query{typ: "Thing", where: c{"parts_": c{"label": "red"}}}},
		{"derived nested decimal", query{typ: "Thing", where: c{"parts_": c{"weight_gt": "1"}}}},
		{"owner derived two levels", query{typ: "Owner", where: c{"things_": c{"parts_": c{"label_in": l("x_y", "100%")}}}}},
		{"part ref nested", query{typ: "Part", where: c{"thing_": c{"owner_": c{"id": "o2"}}}}},
		{"ref id ops", query{typ: "Thing", where: c{"owner_in": l("o1", "o3"), "maybe_not": "o2"}}},
		{"percent literal", query{typ: "Owner", where: c{"name_contains": "%"}}},
		{"underscore literal", query{typ: "Thing", where: c{"name_contains": "_"}}},
		{"backslash literal", query{typ: "Thing", where: c{"name_contains": `\`}}},
		{"unicode contains", query{typ: "Thing", where: c{"name_contains": "é"}}},
		{"empty string", query{typ: "Thing", where: c{"name": ""}}},
		{"change block", query{typ: "Thing", where: c{"_change_block": c{"number_gte": 6}}}},
		{"change block immutable", query{typ: "Part", where: c{"_change_block": c{"number_gte": 8}}}},
		{"bigint huge", query{typ: "Thing", where: c{"big_gte": "1267650600228229401496703205376"}}},
		{"bigint number", query{typ: "Thing", where: c{"big_lt": 0}}},
		{"int8 string", query{typ: "Thing", where: c{"i8_gt": "9007199254740992"}}},
		{"decimal eq normalised", query{typ: "Thing", where: c{"dec": "1.5"}}},
		{"bytes case", query{typ: "Thing", where: c{"data_in": l("0xAB", "0xab01")}}},
		{"list empty", query{typ: "Thing", where: c{"tags": l()}}},
		{"list contains two", query{typ: "Thing", where: c{"tags_contains": l("red", "blue")}}},
		{"list ints", query{typ: "Thing", where: c{"nums_contains": l(1)}}},
		{"list bigints", query{typ: "Thing", where: c{"bigs_not_contains": l("0")}}},
		{"list bytes", query{typ: "Thing", where: c{"blobs_contains": l("0xab00")}}},
		{"list nocase", query{typ: "Thing", where: c{"tags_contains_nocase": l("RED")}}},
	}
	for _, tc := range cases {
		fx.run(t, tc.name, tc.q, nil)
	}
	// Ordering by every sortable field, both directions, with paging.
	th := fx.sch.Type("Thing")
	for _, f := range th.Fields {
		if f.List || f.DerivedFrom != "" {
			continue
		}
		for _, desc := range []bool{false, true} {
			fx.run(t, "order "+f.Name, query{typ: "Thing", orderBy: f.Name, desc: desc, first: 7, skip: 3}, nil)
		}
	}
	for _, ob := range []string{"owner__name", "owner__rank", "maybe__name", "owner__id"} {
		for _, desc := range []bool{false, true} {
			fx.run(t, "order "+ob, query{typ: "Thing", orderBy: ob, desc: desc, first: 20, where: c{"count_gt": -2}}, nil)
		}
	}
	fx.run(t, "order part thing__name", query{typ: "Part", orderBy: "thing__name", first: 30}, nil)
	fx.run(t, "order part weight desc", query{typ: "Part", orderBy: "weight", desc: true, first: 30, skip: 5}, nil)
	fx.run(t, "default order desc", query{typ: "Thing", desc: true, first: 10}, nil)
	fx.run(t, "skip beyond", query{typ: "Thing", skip: 100}, nil)
	// Time travel: the same filters read at earlier blocks.
	for _, b := range []int64{1, 3, 6, 8, 9} {
		fx.run(t, fmt.Sprintf("at %d", b), query{typ: "Thing", where: c{"count_gte": 0}, orderBy: "name"}, &b)
		fx.run(t, fmt.Sprintf("nested at %d", b), query{typ: "Thing", where: c{"parts_": c{"label_not": "red"}}}, &b)
		fx.run(t, fmt.Sprintf("parts at %d", b), query{typ: "Part", orderBy: "thing__count", desc: true, first: 15}, &b)
		fx.run(t, fmt.Sprintf("change at %d", b), query{typ: "Thing", where: c{"_change_block": c{"number_gte": 3}}}, &b)
	}
	t.Logf("%d cases, %d selective", fx.cases, fx.selective)
	if fx.selective < fx.cases/2 {
		t.Errorf("only %d of %d cases selected some but not all rows", fx.selective, fx.cases)
	}
}
