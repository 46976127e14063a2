package alltypes

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"

	"github.com/echain/echain-indexer/api/graphql/internal/gqltest"
	"github.com/echain/echain-indexer/schema"
)

// The oracle answers where/orderBy/first/skip over the versions the test wrote, in Go, with no
// SQL: the semantics of The Graph's filters as documented (comparisons with a null column never
// match, except `f: null` / `f_not: null`; strings compare byte-wise; `or: []` matches nothing).

type oracle struct {
	sch   *schema.Schema
	w     *gqltest.Writer
	block int64
}

func (o *oracle) visible(typ string) []*gqltest.Version {
	var out []*gqltest.Version
	for _, v := range o.w.Versions {
		if v.Type == typ && v.From <= o.block && (v.To == 0 || o.block < v.To) {
			out = append(out, v)
		}
	}
	return out
}

func (o *oracle) byID(typ, id string) *gqltest.Version {
	for _, v := range o.visible(typ) {
		if v.ID == id {
			return v
		}
	}
	return nil
}

var suffixes = []string{"_not_starts_with_nocase", "_not_ends_with_nocase", "_not_contains_nocase",
	"_starts_with_nocase", "_ends_with_nocase", "_contains_nocase", "_not_starts_with", "_not_ends_with",
	"_not_contains", "_starts_with", "_ends_with", "_contains", "_not_in", "_not", "_gte", "_lte", "_gt", "_lt", "_in", "_"}

func splitKey(t *schema.EntityType, key string) (*schema.Field, string) {
	if f := t.Field(key); f != nil {
		return f, ""
	}
	for _, s := range suffixes {
		if strings.HasSuffix(key, s) {
			if f := t.Field(strings.TrimSuffix(key, s)); f != nil {
				return f, s
			}
		}
	}
	panic("oracle: unknown filter key " + key)
}

func (o *oracle) match(t *schema.EntityType, v *gqltest.Version, filter map[string]any) bool {
	for key, val := range filter {
		if !o.matchKey(t, v, key, val) {
			return false
		}
	}
	return true
}

func (o *oracle) matchKey(t *schema.EntityType, v *gqltest.Version, key string, val any) bool {
	switch key {
	case "and":
		for _, sub := range val.([]any) {
			if !o.match(t, v, sub.(map[string]any)) {
				return false
			}
		}
		return true
	case "or":
		for _, sub := range val.([]any) {
			if o.match(t, v, sub.(map[string]any)) {
				return true
			}
		}
		return false
	case "_change_block":
		return v.From >= int64(num(val.(map[string]any)["number_gte"]))
	}
	f, op := splitKey(t, key)
	if op == "_" {
		target := o.sch.Type(f.Ref)
		if f.DerivedFrom != "" {
			for _, c := range o.visible(f.Ref) {
				if c.Vals[f.DerivedFrom] == v.ID && o.match(target, c, val.(map[string]any)) {
					return true
				}
			}
			return false
		}
		id, ok := v.Vals[f.Name].(string)
		if !ok {
			return false
		}
		c := o.byID(f.Ref, id)
		return c != nil && o.match(target, c, val.(map[string]any))
	}
	col := v.Vals[f.Name]
	if val == nil {
		switch op {
		case "":
			return col == nil
		case "_not":
			return col != nil
		}
		panic("oracle: null for " + key)
	}
	if col == nil {
		return false
	}
	k := f.Kind
	if f.List {
		have := listCanon(k, col)
		want := jsonList(k, val)
		switch op {
		case "":
			return equalLists(k, have, want)
		case "_not":
			return !equalLists(k, have, want)
		case "_contains":
			return containsAll(k, have, want, false)
		case "_not_contains":
			return !containsAll(k, have, want, false)
		case "_contains_nocase":
			return containsAll(k, have, want, true)
		case "_not_contains_nocase":
			return !containsAll(k, have, want, true)
		}
		panic("oracle: list op " + op)
	}
	c := canon(k, col)
	switch op {
	case "", "_not", "_gt", "_lt", "_gte", "_lte":
		r := compare(k, c, jsonCanon(k, val))
		return map[string]bool{"": r == 0, "_not": r != 0, "_gt": r > 0, "_lt": r < 0, "_gte": r >= 0, "_lte": r <= 0}[op]
	case "_in", "_not_in":
		in := false
		for _, x := range val.([]any) {
			if compare(k, c, jsonCanon(k, x)) == 0 {
				in = true
			}
		}
		return in == (op == "_in")
	}
	if k == schema.KindBytes {
		sub := jsonCanon(k, val).([]byte)
		has := bytes.Contains(c.([]byte), sub)
		return has == (op == "_contains")
	}
	s, p := c.(string), val.(string)
	neg := strings.HasPrefix(op, "_not_")
	base := strings.TrimPrefix(strings.TrimPrefix(op, "_not"), "_")
	if strings.HasSuffix(base, "_nocase") {
		base = strings.TrimSuffix(base, "_nocase")
		s, p = asciiLower(s), asciiLower(p)
	}
	var m bool
	switch base {
	case "contains":
		m = strings.Contains(s, p)
	case "starts_with":
		m = strings.HasPrefix(s, p)
	case "ends_with":
		m = strings.HasSuffix(s, p)
	default:
		panic("oracle: op " + op)
	}
	return m != neg
}

// asciiLower folds case the way PostgreSQL's ILIKE does under the C collation.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}

func num(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case int:
		return float64(x)
	}
	panic(fmt.Sprintf("oracle: number expected, got %T", v))
}

// canon turns a stored value into a comparable one: string, int64, *big.Rat, []byte, bool.
func canon(k schema.Kind, v any) any {
	switch k {
	case schema.KindInt:
		return int64(v.(int32))
	case schema.KindInt8, schema.KindTimestamp:
		return v.(int64)
	case schema.KindBigInt:
		switch x := v.(type) {
		case *big.Int:
			return new(big.Rat).SetInt(x)
		case string:
			r, _ := new(big.Rat).SetString(x)
			return r
		}
	case schema.KindBigDecimal:
		r, ok := new(big.Rat).SetString(v.(string))
		if !ok {
			panic("oracle: bad decimal " + v.(string))
		}
		return r
	}
	return v
}

// jsonCanon reads a JSON variable value of the kind.
func jsonCanon(k schema.Kind, v any) any {
	switch k {
	case schema.KindInt:
		return int64(num(v))
	case schema.KindInt8, schema.KindTimestamp:
		if s, ok := v.(string); ok {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				panic(err)
			}
			return n
		}
		return int64(num(v))
	case schema.KindBigInt, schema.KindBigDecimal:
		if s, ok := v.(string); ok {
			r, ok := new(big.Rat).SetString(s)
			if !ok {
				panic("oracle: bad number " + s)
			}
			return r
		}
		return new(big.Rat).SetFloat64(num(v))
	case schema.KindBytes:
		b, err := hex.DecodeString(strings.TrimPrefix(v.(string), "0x"))
		if err != nil {
			panic(err)
		}
		return b
	}
	return v
}

func listCanon(k schema.Kind, v any) []any {
	var out []any
	switch l := v.(type) {
	case []string:
		for _, x := range l {
			out = append(out, canon(k, x))
		}
	case []int32:
		for _, x := range l {
			out = append(out, canon(k, x))
		}
	case [][]byte:
		for _, x := range l {
			out = append(out, x)
		}
	default:
		panic(fmt.Sprintf("oracle: list %T", v))
	}
	return out
}

func jsonList(k schema.Kind, v any) []any {
	var out []any
	for _, x := range v.([]any) {
		out = append(out, jsonCanon(k, x))
	}
	return out
}

func equalLists(k schema.Kind, a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if compare(k, a[i], b[i]) != 0 {
			return false
		}
	}
	return true
}

func containsAll(k schema.Kind, have, want []any, nocase bool) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			if nocase {
				if asciiLower(h.(string)) == asciiLower(w.(string)) {
					found = true
				}
			} else if compare(k, h, w) == 0 {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func compare(k schema.Kind, a, b any) int {
	switch x := a.(type) {
	case string:
		return strings.Compare(x, b.(string))
	case int64:
		y := b.(int64)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	case *big.Rat:
		return x.Cmp(b.(*big.Rat))
	case []byte:
		return bytes.Compare(x, b.([]byte))
	case bool:
		y := b.(bool)
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	}
	panic(fmt.Sprintf("oracle: compare %T", a))
}

// query is one collection query.
type query struct {
	typ     string
	where   map[string]any
	orderBy string
	desc    bool
	first   int // 0: the default, 100
	skip    int
}

// answer returns the ids the query selects, in order.
func (o *oracle) answer(q query) []string {
	t := o.sch.Type(q.typ)
	var rows []*gqltest.Version
	for _, v := range o.visible(q.typ) {
		if q.where == nil || o.match(t, v, q.where) {
			rows = append(rows, v)
		}
	}
	key := func(v *gqltest.Version) (schema.Kind, any) {
		if q.orderBy == "" || q.orderBy == "id" {
			return schema.KindID, v.ID
		}
		name, child, nested := strings.Cut(q.orderBy, "__")
		f := t.Field(name)
		if !nested {
			if v.Vals[f.Name] == nil {
				return f.Kind, nil
			}
			return f.Kind, canon(f.Kind, v.Vals[f.Name])
		}
		id, _ := v.Vals[f.Name].(string)
		c := o.byID(f.Ref, id)
		cf := o.sch.Type(f.Ref).Field(child)
		if c == nil || c.Vals[cf.Name] == nil {
			return cf.Kind, nil
		}
		return cf.Kind, canon(cf.Kind, c.Vals[cf.Name])
	}
	sort.SliceStable(rows, func(i, j int) bool {
		k, a := key(rows[i])
		_, b := key(rows[j])
		var r int
		switch {
		case a == nil && b == nil:
		case a == nil: // PostgreSQL: NULLS LAST ascending, NULLS FIRST descending
			r = 1
		case b == nil:
			r = -1
		default:
			r = compare(k, a, b)
		}
		if r == 0 {
			r = strings.Compare(rows[i].ID, rows[j].ID)
		}
		if q.desc {
			return r > 0
		}
		return r < 0
	})
	first := q.first
	if first == 0 {
		first = 100
	}
	var ids []string
	for i := q.skip; i < len(rows) && i < q.skip+first; i++ {
		ids = append(ids, rows[i].ID)
	}
	return ids
}
