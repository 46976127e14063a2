package echaintest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/echain/echain-indexer/schema"
	"github.com/echain/echain-indexer/store/ddl"
)

// Entity is one entity's stored fields by GraphQL field name (id included), in the form a
// GraphQL response carries them: nil for null; string for ID, String, entity references,
// Bytes (lowercase 0x hex) and BigInt/BigDecimal (decimal); bool for Boolean; int64 for Int,
// Int8 and Timestamp; lists as their JSON text.
type Entity map[string]any

// State is every entity of every type: State[type][id].
type State map[string]map[string]Entity

// Get returns one entity, or nil.
func (s State) Get(typ, id string) Entity { return s[typ][id] }

// Count is the number of entities of a type.
func (s State) Count(typ string) int { return len(s[typ]) }

func (s State) put(typ string, e Entity) {
	if s[typ] == nil {
		s[typ] = map[string]Entity{}
	}
	s[typ][e["id"].(string)] = e
}

// Diff lists the differences between an expected and an actual state, field by field, in a
// stable order: "Ticket 1-3 owner: want 0xab.. got 0xcd..". Empty when they are equal.
func Diff(want, got State) []string {
	var out []string
	types := slices.Sorted(maps.Keys(union(want, got)))
	for _, typ := range types {
		w, g := want[typ], got[typ]
		ids := map[string]bool{}
		for id := range w {
			ids[id] = true
		}
		for id := range g {
			ids[id] = true
		}
		for _, id := range slices.Sorted(maps.Keys(ids)) {
			we, ge := w[id], g[id]
			switch {
			case ge == nil:
				out = append(out, fmt.Sprintf("%s %s: missing (want %s)", typ, id, render(we)))
				continue
			case we == nil:
				out = append(out, fmt.Sprintf("%s %s: not expected (got %s)", typ, id, render(ge)))
				continue
			}
			fields := map[string]bool{}
			for f := range we {
				fields[f] = true
			}
			for f := range ge {
				fields[f] = true
			}
			for _, f := range slices.Sorted(maps.Keys(fields)) {
				wv, wok := we[f]
				gv, gok := ge[f]
				if !wok || !gok || !equal(wv, gv) {
					out = append(out, fmt.Sprintf("%s %s %s: want %s got %s", typ, id, f, show(wv, wok), show(gv, gok)))
				}
			}
		}
	}
	return out
}

func union(a, b State) map[string]bool {
	m := map[string]bool{}
	for k := range a {
		m[k] = true
	}
	for k := range b {
		m[k] = true
	}
	return m
}

func equal(a, b any) bool {
	if ai, ok := a.(int32); ok {
		a = int64(ai)
	}
	if bi, ok := b.(int32); ok {
		b = int64(bi)
	}
	return a == b
}

func show(v any, ok bool) string {
	if !ok {
		return "<no field>"
	}
	if v == nil {
		return "null"
	}
	if s, isStr := v.(string); isStr {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprint(v)
}

func render(e Entity) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, f := range slices.Sorted(maps.Keys(e)) {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(f + ":" + show(e[f], true))
	}
	b.WriteByte('}')
	return b.String()
}

// Querier is what ReadStore reads through: *pgxpool.Pool, *pgx.Conn and pgx.Tx satisfy it.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Current asks ReadStore for the current rows rather than the state as of a block.
const Current int64 = -1

// ReadStore reads every entity table of the schema into a State: the current versions when
// atBlock is Current, else the versions visible at that block (the layout's own visibility
// condition, store/ddl.Visible).
func ReadStore(ctx context.Context, db Querier, sch *schema.Schema, atBlock int64) (State, error) {
	st := State{}
	for _, t := range sch.Types {
		var sel []string
		for _, c := range t.Columns {
			sel = append(sel, selectExpr(c))
		}
		at := ""
		if atBlock != Current {
			at = strconv.FormatInt(atBlock, 10)
		}
		where := ddl.Visible(t, "", at)
		if where == "" {
			where = "true"
		}
		q := fmt.Sprintf("SELECT %s FROM %s WHERE %s", strings.Join(sel, ", "), ddl.TableName(t), where)
		rows, err := db.Query(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", t.Name, err)
		}
		n := 0
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("read %s: %w", t.Name, err)
			}
			e := Entity{}
			for i, c := range t.Columns {
				v := vals[i]
				if x, ok := v.(int32); ok {
					v = int64(x)
				}
				e[c.Name] = v
			}
			id, _ := e["id"].(string)
			if st[t.Name][id] != nil {
				rows.Close()
				return nil, fmt.Errorf("read %s: id %q has two visible versions", t.Name, id)
			}
			st.put(t.Name, e)
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read %s: %w", t.Name, err)
		}
		if st[t.Name] == nil {
			st[t.Name] = map[string]Entity{}
		}
	}
	return st, nil
}

// selectExpr renders a column in Entity form on the server, so no Go codec is involved.
func selectExpr(c *schema.Field) string {
	col := pgx.Identifier{c.Column}.Sanitize()
	switch {
	case c.List:
		return "to_jsonb(" + col + ")::text"
	case c.Kind == schema.KindBytes:
		return "'0x' || encode(" + col + ", 'hex')"
	case c.Kind == schema.KindBigInt || c.Kind == schema.KindBigDecimal:
		return col + "::text"
	}
	return col
}
