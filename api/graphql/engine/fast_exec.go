package engine

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"unsafe"

	"github.com/jackc/pgx/v5"
)

// fastExec is one request on the fast path.
type fastExec struct {
	s      *session
	op     *fastOp
	vars   map[string]any
	groups map[*fastField]*fastGroup
}

// fastGroup holds the rows one load read.
type fastGroup struct {
	e    *entity
	b    bound
	fmts []int16
	pos  []int
	rows []*fastRow
	by   map[string][]*fastRow // fkDerived: parent id -> rows
	one  map[string]*fastRow   // fkRef: id -> row
	buf  []byte
	vals [][]byte
	// slab holds the rows rows points to, a chunk at a time: a full chunk is left as it is
	// (never grown in place), so pointers into it stay valid.
	slab []fastRow
}

type fastRow struct {
	id  string
	raw [][]byte
}

// stmt is one statement of a level and the group it fills.
type fastStmt struct {
	sql     string
	args    []any
	g       *fastGroup
	lc      *loadCols
	parents []string // derived loads of several parents: the ordinal in column 0
	single  string   // derived load of one parent
	derived bool
	// parentIDs: a derived load whose column 0 is the parent's id (foldedStmt)
	parentIDs bool
	// joins are references the statement reads along with each of its rows (joinRef): their
	// columns follow the row's own.
	joins []*fastJoin
	from  string // a root statement's FROM clause
	rows  int    // the rows expected, when known: the buffers are sized for them
}

// rootStmt builds the statement of a root load at bound b.
func (x *fastExec) rootStmt(f *fastField, b bound) (*fastStmt, error) {
	q := x.s.builder(b)
	rest, err := x.rootFrom(q, f)
	if err != nil {
		return nil, err
	}
	g := &fastGroup{e: f.ent, b: b}
	return &fastStmt{g: g, lc: f.lc, sql: "SELECT " + f.lc.sel + " FROM " + rest, from: rest, args: q.args}, nil
}

// rowsHint is the rows a list load of first rows for each of parents parents may return,
// bounded: the buffers are sized for it up front.
func rowsHint(parents int, first int32) int {
	return min(parents*int(max(first, 0)), 1024)
}

// fastJoin is a relation read in its parent's statement: a reference (one row per parent
// row) or one list (parent rows repeat, once for each of their list's rows).
type fastJoin struct {
	g    *fastGroup
	lc   *loadCols
	list bool
}

// joinRelations makes st (a root statement) read, with each of f's rows, the entities its
// references among f's children point to, and for a list root one of its lists: one index
// probe (or one index walk) per row in the same statement, where a statement of their own
// would cost a round trip. A list's rows repeat their parent's columns; only one list is
// joined, so that the rows of two lists do not multiply.
func (x *fastExec) joinRelations(st *fastStmt, f *fastField, b bound) error {
	q := x.s.builder(b)
	q.args = st.args
	sel := st.lc.sel
	from := "(SELECT c.* FROM " + st.from + ") c"
	listDone := f.kind != fkList // a root read by id has its lists folded instead (foldedStmt)
	for _, c := range f.children {
		if c.lc == nil || c.kind != fkRef && (c.kind != fkDerived || listDone) {
			continue
		}
		a := "j" + strconv.Itoa(len(st.joins))
		e := c.ent
		g := &fastGroup{e: e, b: b}
		x.groups[c] = g
		if c.kind == fkDerived {
			listDone = true
			la, err := x.listArgs(c, false)
			if err != nil {
				return err
			}
			if la.First == 0 {
				continue // nothing to read: the group stays empty
			}
			crest, err := x.s.listSQL(q, e, col("c", e.Columns[c.derived.back])+" = p.id", la)
			if err != nil {
				return notFast("filter")
			}
			// p carries the parent's id into the list's own scope, where c is the list's table.
			from += " LEFT JOIN LATERAL (SELECT " + a + ".* FROM (SELECT " + col("c", f.ent.Columns[0]) + " AS id) p CROSS JOIN LATERAL (SELECT c.* FROM " +
				crest + ") " + a + ") " + a + " ON true"
			g.by = make(map[string][]*fastRow)
		} else {
			from += " LEFT JOIN LATERAL (SELECT " + a + ".* FROM " + e.table + " " + a +
				where(col(a, e.Columns[0])+" = "+col("c", f.ent.Columns[c.col]), q.visible(e, a)) + " LIMIT 1) " + a + " ON true"
			g.one = make(map[string]*fastRow)
		}
		for _, ci := range c.lc.cols {
			sel += ", " + selectExpr(a, e.Columns[ci])
		}
		st.joins = append(st.joins, &fastJoin{g: g, lc: c.lc, list: c.kind == fkDerived})
	}
	if len(st.joins) > 0 {
		st.sql = "SELECT " + sel + " FROM " + from
		if f.kind == fkList {
			// Each row brings at least one entity not read before, so this bounds the rows
			// where the entity bound would stop reading anyway.
			st.sql += " LIMIT " + q.param(int64(x.s.remaining()))
		}
		st.args = q.args
	}
	return nil
}

// rootFrom is the FROM clause (with its conditions, order and paging) of root load f, its
// parameters added to q; the rows it yields are aliased c.
func (x *fastExec) rootFrom(q *builder, f *fastField) (string, error) {
	ent := f.ent
	if f.kind == fkOne {
		v, _, err := x.arg(f, "id")
		if err != nil {
			return "", err
		}
		id, ok := v.(string)
		if !ok {
			return "", notFast("id argument")
		}
		cond := col("c", ent.Columns[0]) + " = " + q.param(id) + "::text"
		return ent.table + " c" + where(cond, q.visible(ent, "c")) + " LIMIT 1", nil
	}
	a, err := x.listArgs(f, true)
	if err != nil {
		return "", err
	}
	rest, err := x.s.listSQL(q, ent, "", a)
	if err != nil {
		return "", notFast("filter")
	}
	return rest, nil
}

// foldedStmt builds the statement loading list field c of root load f in the round trip of
// the root statement itself: the root's rows are not known yet, so the statement reads them
// again (the same snapshot, the same rows) in a subquery. nil: there is nothing to load.
func (x *fastExec) foldedStmt(c, f *fastField, b bound) (*fastStmt, error) {
	s := x.s
	g := &fastGroup{e: c.ent, b: b}
	x.groups[c] = g
	q := s.builder(b)
	st := &fastStmt{g: g, lc: c.lc}
	a, err := x.listArgs(c, false)
	if err != nil {
		return nil, err
	}
	if a.First == 0 {
		return nil, nil
	}
	rest, err := x.rootFrom(q, f)
	if err != nil {
		return nil, err
	}
	d, e := c.derived, c.ent
	crest, err := s.listSQL(q, e, col("c", e.Columns[d.back])+" = p.id", a)
	if err != nil {
		return nil, notFast("filter")
	}
	g.by = make(map[string][]*fastRow)
	st.derived, st.parentIDs = true, true
	st.rows = rowsHint(1, a.First)
	st.sql = "SELECT p.id, " + c.lc.sel + " FROM (SELECT " + col("c", f.ent.Columns[0]) + " AS id FROM " + rest + ") p CROSS JOIN LATERAL (SELECT c.* FROM " +
		crest + ") c LIMIT " + q.param(int64(s.remaining()))
	st.args = q.args
	return st, nil
}

// childStmt builds the statement loading child field f of the rows of group pg.
func (x *fastExec) childStmt(f *fastField, pg *fastGroup) (*fastStmt, error) {
	s := x.s
	g := &fastGroup{e: f.ent, b: pg.b}
	x.groups[f] = g
	q := s.builder(pg.b)
	st := &fastStmt{g: g, lc: f.lc}
	seen := make(map[string]bool, len(pg.rows))
	ids := make([]string, 0, len(pg.rows))
	if f.kind == fkRef {
		p := pg.pos[f.col]
		for _, r := range pg.rows {
			if raw := r.raw[p]; raw != nil && len(raw) > 0 && !seen[string(raw)] {
				v := bufString(raw)
				seen[v] = true
				ids = append(ids, v)
			}
		}
		if len(ids) == 0 {
			return nil, nil
		}
		g.one = make(map[string]*fastRow, len(ids))
		st.rows = len(ids)
		st.sql = refSQL(q, f.ent, f.lc, ids)
		st.args = q.args
		return st, nil
	}
	g.by = make(map[string][]*fastRow, len(pg.rows))
	a, err := x.listArgs(f, false)
	if err != nil {
		return nil, err
	}
	for _, r := range pg.rows {
		if !seen[r.id] {
			seen[r.id] = true
			ids = append(ids, r.id)
		}
	}
	if len(ids) == 0 || a.First == 0 {
		return nil, nil
	}
	d, e := f.derived, f.ent
	back := col("c", e.Columns[d.back])
	st.derived = true
	st.rows = min(len(ids), rowsHint(1, a.First)) // a parent's list is often short
	if len(ids) == 1 {
		rest, err := s.listSQL(q, e, back+" = "+q.param(ids[0])+"::text", a)
		if err != nil {
			return nil, notFast("filter")
		}
		st.sql, st.single = "SELECT "+f.lc.sel+" FROM "+rest, ids[0]
	} else {
		ps := q.param(textArray(ids))
		rest, err := s.listSQL(q, e, back+" = p.id", a)
		if err != nil {
			return nil, notFast("filter")
		}
		st.sql = "SELECT p.i, " + f.lc.sel + " FROM unnest(" + ps + "::text[]) WITH ORDINALITY AS p(id, i) CROSS JOIN LATERAL (SELECT c.* FROM " +
			rest + ") c LIMIT " + q.param(int64(s.remaining()))
		st.parents = ids
	}
	st.args = q.args
	return st, nil
}

// scan reads a statement's rows into its group (and the joined references' columns into
// theirs), copying the values out of pgx's buffer.
func (x *fastExec) scan(st *fastStmt, rows pgx.Rows) error {
	g, lc := st.g, st.lc
	fds := rows.FieldDescriptions()
	off := 0
	if st.parents != nil || st.parentIDs {
		off = 1
	}
	width := len(lc.cols) + off
	total := width
	for _, j := range st.joins {
		total += len(j.lc.cols)
	}
	if len(fds) != total {
		return fmt.Errorf("%s: %d result columns for %d fields", g.e.Name, len(fds), total-off)
	}
	fmts := make([]int16, len(fds))
	for j := range fds {
		fmts[j] = fds[j].Format
	}
	hint := max(st.rows, 16)
	g.start(fmts[:width], rowPositions(g.e, lc, off), hint, width)
	at := width
	for _, j := range st.joins {
		n := len(j.lc.cols)
		j.g.start(fmts[at:at+n], rowPositions(j.g.e, j.lc, 0), hint, n)
		at += n
	}
	var last *fastRow // with a list joined, a parent's rows come one after another
	for rows.Next() {
		raw := rows.RawValues()
		if last != nil && raw[off] != nil && last.id == string(raw[off]) {
			if err := x.addJoined(st, raw, width, last); err != nil {
				return err
			}
			continue
		}
		r, err := x.add(g, lc, raw[:width], off)
		if err != nil {
			return err
		}
		switch {
		case st.parents != nil:
			p, err := ordinal(fds[0].Format, raw[0])
			if err != nil || p < 1 || p > int64(len(st.parents)) {
				return fmt.Errorf("%s: bad parent position %q", g.e.Name, raw[0])
			}
			g.by[st.parents[p-1]] = append(g.by[st.parents[p-1]], r)
		case st.parentIDs:
			if r.raw[0] == nil {
				return fmt.Errorf("%s: no parent id", g.e.Name)
			}
			p := bufString(r.raw[0])
			g.by[p] = append(g.by[p], r)
		case st.derived:
			g.by[st.single] = append(g.by[st.single], r)
		case g.one != nil:
			if g.one[r.id] == nil {
				g.one[r.id] = r
			}
		}
		if err := x.addJoined(st, raw, width, r); err != nil {
			return err
		}
		last = r
	}
	return rows.Err()
}

// addJoined reads the joined relations' columns of one row (from column at) of parent row r.
func (x *fastExec) addJoined(st *fastStmt, raw [][]byte, at int, r *fastRow) error {
	for _, j := range st.joins {
		part := raw[at : at+len(j.lc.cols)]
		at += len(j.lc.cols)
		if part[0] == nil || !j.list && j.g.one[string(part[0])] != nil {
			continue // no such entity or list row, or read already with an earlier row
		}
		jr, err := x.add(j.g, j.lc, part, 0)
		if err != nil {
			return err
		}
		if j.list {
			j.g.by[r.id] = append(j.g.by[r.id], jr)
		} else {
			j.g.one[jr.id] = jr
		}
	}
	return nil
}

// start readies g for rows of the given column formats and positions.
func (g *fastGroup) start(fmts []int16, pos []int, hint, width int) {
	g.fmts, g.pos = fmts, pos
	if g.buf == nil {
		g.buf = make([]byte, 0, 4096)
	}
	if g.vals == nil {
		g.vals = make([][]byte, 0, hint*width)
		g.rows = make([]*fastRow, 0, hint)
		g.slab = make([]fastRow, 0, hint)
	}
}

// add copies one row's values (raw, its id at off) into g.
func (x *fastExec) add(g *fastGroup, lc *loadCols, raw [][]byte, off int) (*fastRow, error) {
	s := x.s
	if s.entities.Add(1) > int64(s.e.cfg.MaxEntities) {
		return nil, notFast("entities")
	}
	cols := g.e.Columns
	start := len(g.vals)
	for j, v := range raw {
		if v == nil {
			if j >= off && cols[lc.cols[j-off]].NonNull {
				return nil, notFast("null in a non-null column")
			}
			g.vals = append(g.vals, nil)
			continue
		}
		a := len(g.buf)
		g.buf = append(g.buf, v...)
		g.vals = append(g.vals, g.buf[a:len(g.buf):len(g.buf)])
	}
	if len(g.slab) == cap(g.slab) {
		g.slab = make([]fastRow, 0, max(16, 2*cap(g.slab)))
	}
	g.slab = append(g.slab, fastRow{raw: g.vals[start:len(g.vals):len(g.vals)]})
	r := &g.slab[len(g.slab)-1]
	r.id = bufString(r.raw[off])
	g.rows = append(g.rows, r)
	return r, nil
}

// bufString is b as a string without a copy. The bytes are a group's values: its buffer is
// only ever appended to (a full one is replaced, not grown in place), so they never change.
func bufString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// fastExecute answers the request on the fast path; ok false means it stepped aside (the
// session is then closed and unusable).
func (e *Engine) fastExecute(ctx context.Context, s *session, op *fastOp, vars map[string]any) (*Result, bool) {
	if !e.fast.varsOK(op.vars, vars) {
		return nil, false
	}
	x := &fastExec{s: s, op: op, vars: vars, groups: map[*fastField]*fastGroup{}}
	data, err := x.run(ctx)
	var big errTooBig
	if errors.As(err, &big) {
		s.close(ctx)
		return e.refuse(responseTooBig(big.n, e.opts.MaxResponseBytes)), true
	}
	if err != nil {
		if s.err == nil {
			s.err = err
		}
		s.close(ctx)
		return nil, false
	}
	s.close(ctx)
	return &Result{Data: data, Statements: s.statements, RoundTrips: s.roundTrips}, true
}

func (x *fastExec) run(ctx context.Context) ([]byte, error) {
	s, op := x.s, x.op
	type rootLoad struct {
		f      *fastField
		spec   *BlockHeight
		policy string
	}
	var loads []rootLoad
	lookup := s.atHash != nil // block hashes are looked up before any statement
	keepOpen := false         // _meta at another block reads the store's block window in the snapshot at the end
	for _, f := range op.root {
		if f.kind != fkOne && f.kind != fkList && f.kind != fkMeta {
			continue
		}
		spec, pol, err := x.rootSpec(f)
		if err != nil {
			return nil, err
		}
		if spec != nil && spec.Hash != nil {
			lookup = true
		}
		if f.kind == fkMeta {
			keepOpen = keepOpen || spec != nil || s.at > 0
			continue
		}
		loads = append(loads, rootLoad{f, spec, pol})
	}
	// Level 0: BEGIN, the cursor and the root statements in one round trip (the statements read
	// at the block they name, checked once the cursor is known); COMMIT too when nothing nests.
	// When the block is known up front the roots' relations travel in that round trip too:
	// references in the root's own statement (joinRefs), and the lists of a root read by id in
	// statements that repeat its primary key probe (foldedStmt). A list root is not read again
	// for its lists: a page of it costs PostgreSQL more than the round trip costs the request.
	var stmts []*fastStmt
	if !lookup {
		for _, l := range loads {
			b := s.tentative(l.spec)
			st, err := x.rootStmt(l.f, b)
			if err != nil {
				return nil, err
			}
			x.groups[l.f] = st.g
			stmts = append(stmts, st)
			if err := x.joinRelations(st, l.f, b); err != nil {
				return nil, err
			}
			if l.f.kind != fkOne {
				continue
			}
			for _, c := range l.f.children {
				if c.kind != fkDerived {
					continue
				}
				cst, err := x.foldedStmt(c, l.f, b)
				if err != nil {
					return nil, err
				}
				if cst != nil {
					stmts = append(stmts, cst)
				}
			}
		}
	}
	pending := op.maxLevel >= 2 // relations left for later round trips
	for _, l := range loads {
		for _, c := range l.f.children {
			pending = pending || (c.kind == fkRef || c.kind == fkDerived) && x.groups[c] == nil
		}
	}
	if err := x.begin(ctx, stmts, !lookup && !keepOpen && !pending); err != nil {
		return nil, err
	}
	for _, l := range loads {
		b, err := s.resolve(ctx, l.spec)
		if err != nil {
			return nil, err
		}
		if err := s.checkErrors(l.policy, b); err != nil {
			return nil, err
		}
		if lookup {
			st, err := x.rootStmt(l.f, b)
			if err != nil {
				return nil, err
			}
			x.groups[l.f] = st.g
			stmts = append(stmts, st)
		} else {
			x.groups[l.f].b = b
			for _, c := range l.f.children {
				if g := x.groups[c]; g != nil {
					g.b = b
				}
			}
		}
	}
	if lookup && len(stmts) > 0 {
		if err := x.level(ctx, stmts, !keepOpen && op.maxLevel == 0); err != nil {
			return nil, err
		}
	}
	// Each further level: every relation of the rows read so far not read yet, one round trip.
	frontier := make([]*fastField, 0, len(loads))
	for _, l := range loads {
		frontier = append(frontier, l.f)
	}
	for lvl := 1; len(frontier) > 0 && lvl <= op.maxLevel; lvl++ {
		var next []*fastField
		stmts = stmts[:0]
		for _, f := range frontier {
			pg := x.groups[f]
			for _, c := range f.children {
				if c.kind != fkRef && c.kind != fkDerived {
					continue
				}
				next = append(next, c)
				if x.groups[c] != nil {
					continue // read with its parent
				}
				if pg == nil || len(pg.rows) == 0 {
					x.groups[c] = &fastGroup{e: c.ent, b: bound{current: true}}
					continue
				}
				st, err := x.childStmt(c, pg)
				if err != nil {
					return nil, err
				}
				if st != nil {
					stmts = append(stmts, st)
				}
			}
		}
		if len(stmts) > 0 {
			if err := x.level(ctx, stmts, !keepOpen && lvl == op.maxLevel); err != nil {
				return nil, err
			}
		}
		frontier = next
	}
	var meta *Meta
	if op.hasMeta != nil {
		spec, _, err := x.rootSpec(op.hasMeta)
		if err != nil {
			return nil, err
		}
		b, err := s.resolve(ctx, spec)
		if err != nil {
			return nil, err
		}
		bi := s.head
		if !b.current {
			if bi, err = s.blockAt(ctx, b.at); err != nil {
				return nil, err
			}
		}
		meta = &Meta{block: bi, deployment: s.e.cfg.Deployment, errors: s.errorBlock != nil}
	}
	return x.write(op, meta)
}

// begin starts the snapshot: BEGIN, the cursor, stmts and (commit) COMMIT in one round trip.
func (x *fastExec) begin(ctx context.Context, stmts []*fastStmt, commit bool) error {
	s := x.s
	s.mu.Lock()
	defer s.mu.Unlock()
	sctx, cancel := s.stmtCtx(ctx)
	defer cancel()
	conn, err := s.e.pool.Acquire(sctx)
	if err != nil {
		return notFast("acquire")
	}
	s.conn = conn
	s.begun = true
	b := &pgx.Batch{QueuedQueries: make([]*pgx.QueuedQuery, 0, len(stmts)+3)}
	b.BeginTx(pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	b.Queue(headSQL, s.e.stmtTimeout)
	for _, st := range stmts {
		b.Queue(st.sql, st.args...)
	}
	if commit {
		b.Queue("COMMIT")
	}
	s.statements += 2 + len(stmts)
	s.roundTrips++
	br := conn.SendBatch(sctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	s.tx = br.Tx()
	var (
		number, ts, histFrom, errBlock *int64
		hash, parent                   []byte
		setting                        string
	)
	if err := br.QueryRow().Scan(&setting, &setting, &number, &hash, &parent, &ts, &histFrom, &errBlock, &s.finalized); err != nil {
		return fmt.Errorf("read the cursor: %w", err)
	}
	if number != nil {
		s.head = &blockInfo{Number: *number, Hash: hash, ParentHash: parent, Timestamp: ts}
	}
	if histFrom != nil {
		s.historyN = *histFrom
	}
	s.errorBlock = errBlock
	return x.results(br, stmts, commit)
}

// level runs the statements of one level in one round trip, with COMMIT when it is the last.
func (x *fastExec) level(ctx context.Context, stmts []*fastStmt, commit bool) error {
	s := x.s
	s.mu.Lock()
	defer s.mu.Unlock()
	sctx, cancel := s.stmtCtx(ctx)
	defer cancel()
	b := &pgx.Batch{QueuedQueries: make([]*pgx.QueuedQuery, 0, len(stmts)+1)}
	for _, st := range stmts {
		b.Queue(st.sql, st.args...)
	}
	if commit {
		b.Queue("COMMIT")
	}
	s.statements += len(stmts)
	s.roundTrips++
	br := s.conn.SendBatch(sctx, b)
	defer br.Close()
	return x.results(br, stmts, commit)
}

func (x *fastExec) results(br pgx.BatchResults, stmts []*fastStmt, commit bool) error {
	for _, st := range stmts {
		rows, err := br.Query()
		if err != nil {
			return err
		}
		err = x.scan(st, rows)
		rows.Close()
		if err != nil {
			return err
		}
	}
	if commit {
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
	}
	if err := br.Close(); err != nil {
		return err
	}
	if commit {
		s := x.s
		s.tx = nil // committed in the batch: close only returns the connection
	}
	return nil
}
