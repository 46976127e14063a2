package engine

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
)

// scanNodes reads result rows into nodes of group g; with parentCol the first column is the
// 1-based position of the parent the row belongs to.
func (s *session) scanNodes(rows pgx.Rows, g *group, lc *loadCols, parentCol bool, parents []string, by map[string][]*Node) error {
	e := g.e
	fds := rows.FieldDescriptions()
	off := 0
	if parentCol {
		off = 1
	}
	if len(fds) != len(lc.cols)+off {
		return fmt.Errorf("%s: %d result columns for %d fields", e.Name, len(fds), len(lc.cols))
	}
	row := &Row{e: e, fmts: make([]int16, len(fds)), pos: rowPositions(e, lc, off)}
	for j := range fds {
		row.fmts[j] = fds[j].Format
	}
	for rows.Next() {
		row.raw = rows.RawValues()
		if s.entities.Add(1) > int64(s.e.cfg.MaxEntities) {
			return errorf(codeLimitEntities, "the query would return more than %d entities (limit max_result_entities); ask for fewer with first, or split the query", s.e.cfg.MaxEntities)
		}
		n := &Node{g: g, keys: make([]string, len(e.Columns))}
		for j, i := range lc.cols {
			f := e.Columns[i]
			raw := row.raw[j+off]
			if raw == nil {
				if f.NonNull {
					return fmt.Errorf("%s.%s is null in the store but non-null in the schema", e.Name, f.Name)
				}
				continue
			}
			if keyed(f, i) {
				n.keys[i] = string(raw)
			}
		}
		n.res = s.e.bind.Resolver(e.index, n, row)
		g.nodes = append(g.nodes, n)
		if parentCol {
			p, err := ordinal(fds[0].Format, row.raw[0])
			if err != nil || p < 1 || p > int64(len(parents)) {
				return fmt.Errorf("%s: bad parent position %q", e.Name, row.raw[0])
			}
			by[parents[p-1]] = append(by[parents[p-1]], n)
		} else if by != nil {
			by[n.id()] = append(by[n.id()], n)
		}
	}
	return nil
}

func ordinal(format int16, raw []byte) (int64, error) {
	if format == 1 && len(raw) == 8 {
		return int64(binary.BigEndian.Uint64(raw)), nil
	}
	return strconv.ParseInt(string(raw), 10, 64)
}

// remaining is how many more entities the query may load (plus one, to detect going over).
func (s *session) remaining() int {
	r := s.e.cfg.MaxEntities - int(s.entities.Load()) + 1
	if r < 1 {
		r = 1
	}
	return r
}

// loadByIDs loads the entities with the given ids at bound b, keyed by id.
func (s *session) loadByIDs(ctx context.Context, e *entity, lc *loadCols, b bound, ids []string) (map[string][]*Node, error) {
	by := make(map[string][]*Node, len(ids))
	if len(ids) == 0 {
		return by, nil
	}
	q := s.builder(b)
	sql := refSQL(q, e, lc, ids)
	g := newGroup(s, e, b)
	err := s.readAt(ctx, sql, q.args, func(rows pgx.Rows) error { return s.scanNodes(rows, g, lc, false, nil, by) })
	return by, err
}

// refSQL reads the entities with the given ids. Several ids are probed one by one (LATERAL)
// rather than with `id = ANY($1)`: the API runs generic plans, and for a small table the generic
// plan of `= ANY` scans the whole table (or another index of it) comparing each row with every id
// (the organizers of an events page: 500 rows x 20 ids per query).
func refSQL(q *builder, e *entity, lc *loadCols, ids []string) string {
	if len(ids) == 1 {
		cond := col("c", e.Columns[0]) + " = " + q.param(ids[0]) + "::text"
		return "SELECT " + lc.sel + " FROM " + e.table + " c" + where(cond, q.visible(e, "c"))
	}
	ps := q.param(textArray(ids))
	return "SELECT " + lc.sel + " FROM unnest(" + ps + "::text[]) AS p(id) CROSS JOIN LATERAL (SELECT c.* FROM " + e.table + " c" +
		where(col("c", e.Columns[0])+" = p.id", q.visible(e, "c")) + " LIMIT 1) c"
}

// checkList validates the collection arguments every list field shares.
func (s *session) checkList(a *ListArgs) error {
	cfg := &s.e.cfg
	if a.First < 0 || int(a.First) > cfg.MaxFirst {
		return errorf(codeLimitFirst, "The `first` argument must be between 0 and %d, but is %d", cfg.MaxFirst, a.First)
	}
	if a.Skip < 0 || int(a.Skip) > cfg.MaxSkip {
		return errorf(codeLimitSkip, "The `skip` argument must be between 0 and %d, but is %d", cfg.MaxSkip, a.Skip)
	}
	return nil
}

// listSQL renders the part of a collection statement after FROM: visibility, filter, order,
// paging. extra is an additional condition (the back reference of a derived field).
func (s *session) listSQL(q *builder, e *entity, extra string, a *ListArgs) (string, error) {
	var filter string
	if a.Where.Set {
		var err error
		if filter, err = q.filter(e, "c", a.Where.M, 0); err != nil {
			return "", err
		}
	}
	order, err := q.orderBy(e, "c", a.OrderBy, a.OrderDirection)
	if err != nil {
		return "", err
	}
	sql := e.table + " c" + where(extra, q.visible(e, "c"), filter) + order + " LIMIT " + q.param(int64(a.First))
	if a.Skip > 0 {
		sql += " OFFSET " + q.param(int64(a.Skip))
	}
	return sql, nil
}

// loadDerived loads, for each parent id, the entities of d.target whose back reference is that
// parent, with a's filter, order and paging applied per parent: one LATERAL statement.
func (s *session) loadDerived(ctx context.Context, d *derivedInfo, b bound, parents []string, a *ListArgs) (map[string][]*Node, error) {
	lc := s.plan.columns(d.target, d.field.Name)
	if err := s.checkList(a); err != nil {
		return nil, err
	}
	by := make(map[string][]*Node, len(parents))
	if len(parents) == 0 || a.First == 0 {
		return by, nil
	}
	e := d.target
	q := s.builder(b)
	back := col("c", e.Columns[d.back])
	g := newGroup(s, e, b)
	var sql string
	if len(parents) == 1 {
		rest, err := s.listSQL(q, e, back+" = "+q.param(parents[0])+"::text", a)
		if err != nil {
			return nil, err
		}
		sql = "SELECT " + lc.sel + " FROM " + rest
		err = s.readAt(ctx, sql, q.args, func(rows pgx.Rows) error {
			return s.scanNodes(rows, g, lc, false, nil, nil)
		})
		by[parents[0]] = g.nodes
		return by, err
	}
	ps := q.param(textArray(parents))
	rest, err := s.listSQL(q, e, back+" = p.id", a)
	if err != nil {
		return nil, err
	}
	sql = "SELECT p.i, " + lc.sel + " FROM unnest(" + ps + "::text[]) WITH ORDINALITY AS p(id, i) CROSS JOIN LATERAL (SELECT c.* FROM " +
		rest + ") c LIMIT " + q.param(int64(s.remaining()))
	err = s.readAt(ctx, sql, q.args, func(rows pgx.Rows) error { return s.scanNodes(rows, g, lc, true, parents, by) })
	return by, err
}

// One resolves `foo(id: ...)` for entity type typ (its index in the schema).
func (e *Engine) One(ctx context.Context, typ int, a *SingleArgs) (*Node, error) {
	s, err := sessionFrom(ctx)
	if err != nil {
		return nil, err
	}
	ent := e.m.types[typ]
	lc := s.plan.columns(ent, ent.Single)
	var g *group
	err = s.read(ctx, a.Block, func(b bound) (string, []any, error) {
		q := s.builder(b)
		cond := col("c", ent.Columns[0]) + " = " + q.param(string(a.ID)) + "::text"
		return "SELECT " + lc.sel + " FROM " + ent.table + " c" + where(cond, q.visible(ent, "c")) + " LIMIT 1", q.args, nil
	}, func(b bound, rows pgx.Rows) error {
		if err := s.checkErrors(a.SubgraphError, b); err != nil {
			return err
		}
		g = newGroup(s, ent, b)
		return s.scanNodes(rows, g, lc, false, nil, nil)
	})
	if err != nil {
		return nil, err
	}
	if len(g.nodes) == 0 {
		return nil, nil
	}
	return g.nodes[0], nil
}

// List resolves `foos(...)` for entity type typ.
func (e *Engine) List(ctx context.Context, typ int, a *ListArgs) ([]*Node, error) {
	s, err := sessionFrom(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.checkList(a); err != nil {
		return nil, err
	}
	ent := e.m.types[typ]
	lc := s.plan.columns(ent, ent.Plural)
	var g *group
	err = s.read(ctx, a.Block, func(b bound) (string, []any, error) {
		q := s.builder(b)
		rest, err := s.listSQL(q, ent, "", a)
		if err != nil {
			return "", nil, err
		}
		return "SELECT " + lc.sel + " FROM " + rest, q.args, nil
	}, func(b bound, rows pgx.Rows) error {
		if err := s.checkErrors(a.SubgraphError, b); err != nil {
			return err
		}
		g = newGroup(s, ent, b)
		return s.scanNodes(rows, g, lc, false, nil, nil)
	})
	if err != nil {
		return nil, err
	}
	return g.nodes, nil
}

// Meta resolves `_meta`.
func (e *Engine) Meta(ctx context.Context, a *MetaArgs) (*Meta, error) {
	s, err := sessionFrom(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	if err := s.begin(ctx, nil, "", nil, nil); err != nil {
		return nil, err
	}
	b, err := s.resolve(ctx, a.Block)
	if err != nil {
		return nil, err
	}
	bi := s.head
	if !b.current {
		if bi, err = s.blockAt(ctx, b.at); err != nil {
			return nil, err
		}
	}
	return &Meta{block: bi, deployment: e.cfg.Deployment, errors: s.errorBlock != nil}, nil
}

// Meta is the `_meta` object.
type Meta struct {
	block      *blockInfo
	deployment string
	errors     bool
}

// Block is the block the response reflects.
func (m *Meta) Block() *MetaBlock { return &MetaBlock{m.block} }

// Deployment names the deployment.
func (m *Meta) Deployment() string { return m.deployment }

// HasIndexingErrors reports whether the indexer recorded an indexing error.
func (m *Meta) HasIndexingErrors() bool { return m.errors }

// MetaBlock is `_Block_`.
type MetaBlock struct{ b *blockInfo }

// Number is the block number.
func (m *MetaBlock) Number() int32 { return int32(m.b.Number) }

// Hash is the block hash, when kept.
func (m *MetaBlock) Hash() *Bytes {
	if m.b.Hash == nil {
		return nil
	}
	h := hexBytes(m.b.Hash)
	return &h
}

// ParentHash is the parent's hash, when kept.
func (m *MetaBlock) ParentHash() *Bytes {
	if m.b.ParentHash == nil {
		return nil
	}
	h := hexBytes(m.b.ParentHash)
	return &h
}

// Timestamp is the block's unix time, when kept.
func (m *MetaBlock) Timestamp() *int32 {
	if m.b.Timestamp == nil {
		return nil
	}
	t := int32(*m.b.Timestamp)
	return &t
}
