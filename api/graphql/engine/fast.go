package engine

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	gql "github.com/graph-gophers/graphql-go"
	"github.com/jackc/pgx/v5"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/echain/echain-indexer/schema"
)

// The fast path answers the common request (a query over entity fields and _meta that
// graphql-go has validated once for its text) without graphql-go's reflective executor, which
// costs more CPU than the SQL: it compiles the operation once per query text into a tree of
// loads, runs them one pipelined round trip per level of the tree (the COMMIT travelling with
// the last one) and writes the response bytes straight from the result rows, as graphql-go
// would write them.
//
// It only ever answers successes. Anything else (a variable or argument graphql-go would
// refuse or coerce, a limit, a block that is not answerable, a null where the schema says
// non-null, a database error, introspection, directives, an operation it does not know) makes
// it step aside and the request runs through graphql-go from the start, so errors, partial
// data and their paths stay exactly graphql-go's. The differential test runs every query of
// the test suites both ways.

// fastKind is what a compiled field resolves to.
type fastKind uint8

const (
	fkTypename fastKind = iota
	fkScalar
	fkRef     // a reference column: the entity it names
	fkDerived // entities whose back reference points here
	fkOne     // root foo(id)
	fkList    // root foos(...)
	fkMeta
	fkMetaBlock
	fkMetaDeployment
	fkMetaErrors
	fkBlockNumber
	fkBlockHash
	fkBlockParent
	fkBlockTimestamp
)

// fastField is one response key of a compiled operation, its selection merged over fragments.
type fastField struct {
	key      string
	kind     fastKind
	typename string        // fkTypename: the value
	f        *schema.Field // fkScalar, fkRef, fkDerived: the field of the parent entity
	col      int           // fkScalar, fkRef: its column in the parent
	ent      *entity       // loads: the entity type they read
	derived  *derivedInfo  // fkDerived
	args     ast.ArgumentList
	children []*fastField
	lc       *loadCols // loads: the columns their children read
	level    int       // loads: 0 for root fields, +1 per nesting
}

// fastOp is one compiled operation.
type fastOp struct {
	root     []*fastField
	vars     ast.VariableDefinitionList
	maxLevel int // deepest load level
	hasMeta  *fastField
	// size is the length of the last response, to allocate the next one at once.
	size atomic.Int64
}

// fastPlans is the per-query-text state of the fast path, kept in the plan.
type fastPlans struct {
	once  sync.Once
	valid bool               // graphql-go validated the document (variables aside)
	mu    sync.Mutex         // guards ops
	ops   map[string]*fastOp // by operation name ("" = the only operation); nil: not served
}

const maxFastOps = 16

// fastSchema is what the fast path needs from the API schema beyond the entity model: input
// and enum types, to check variable values the way graphql-go's validation does.
type fastSchema struct {
	types map[string]*ast.Definition
}

func newFastSchema(sdl string) (*fastSchema, error) {
	s, err := gqlparser.LoadSchema(&ast.Source{Name: "api.graphql", Input: sdl})
	if err != nil {
		return nil, err
	}
	return &fastSchema{types: s.Types}, nil
}

// fastOperation returns the compiled operation a request names, nil when the fast path does
// not serve it.
func (e *Engine) fastOperation(p *plan, text, opName string) *fastOp {
	if e.fast == nil || p.doc == nil || len(text) > maxPlannedQuery {
		return nil // unplanned texts are not cached: compiling them each time would not pay
	}
	fp := &p.fast
	fp.once.Do(func() {
		// Validation does not depend on variables except for their values' types, which
		// varsOK checks per request the same way.
		for _, qe := range e.schema.ValidateWithVariables(text, nil) {
			if qe.Rule != "VariablesOfCorrectType" {
				return
			}
		}
		// graphql-go unquotes string literals its own way; leave escapes to it.
		if strings.ContainsRune(text, '\\') {
			return
		}
		fp.valid = true
		fp.ops = map[string]*fastOp{}
	})
	if !fp.valid {
		return nil
	}
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if op, ok := fp.ops[opName]; ok {
		return op
	}
	op := e.compileFast(p.doc, opName)
	if len(fp.ops) < maxFastOps { // clients choose operation names: bound what one text keeps
		fp.ops[opName] = op
	}
	return op
}

// compileFast compiles the operation, nil when it is not one the fast path serves.
func (e *Engine) compileFast(doc *ast.QueryDocument, opName string) *fastOp {
	var od *ast.OperationDefinition
	switch {
	case opName != "":
		od = doc.Operations.ForName(opName)
	case len(doc.Operations) == 1:
		od = doc.Operations[0]
	}
	if od == nil || od.Operation == ast.Mutation || len(od.Directives) > 0 {
		return nil
	}
	for _, v := range od.VariableDefinitions {
		if len(v.Directives) > 0 {
			return nil
		}
	}
	c := &fastCompiler{e: e, doc: doc}
	op := &fastOp{vars: od.VariableDefinitions}
	root, ok := c.fields("Query", nil, []ast.SelectionSet{od.SelectionSet}, 0)
	if !ok {
		return nil
	}
	op.root = root
	var walk func(fs []*fastField)
	walk = func(fs []*fastField) {
		for _, f := range fs {
			if f.lc != nil && f.level > op.maxLevel {
				op.maxLevel = f.level
			}
			walk(f.children)
		}
	}
	walk(root)
	for _, f := range root {
		if f.kind == fkMeta {
			op.hasMeta = f
		}
	}
	return op
}

type fastCompiler struct {
	e     *Engine
	doc   *ast.QueryDocument
	depth int
}

type fieldGroup struct {
	key   string
	first *ast.Field
	sets  []ast.SelectionSet
}

// collect merges the selections of sets by response key, in order of first appearance, as
// graphql-go does. typ is the object type they apply to.
func (c *fastCompiler) collect(typ string, sets []ast.SelectionSet, out *[]*fieldGroup, by map[string]*fieldGroup, depth int) bool {
	if depth > maxPlanDepth {
		return false
	}
	for _, set := range sets {
		for _, sel := range set {
			switch s := sel.(type) {
			case *ast.Field:
				if len(s.Directives) > 0 {
					return false
				}
				key := s.Alias
				if key == "" {
					key = s.Name
				}
				if g := by[key]; g != nil {
					if g.first.Name != s.Name {
						return false
					}
					g.sets = append(g.sets, s.SelectionSet)
					continue
				}
				g := &fieldGroup{key: key, first: s, sets: []ast.SelectionSet{s.SelectionSet}}
				by[key] = g
				*out = append(*out, g)
			case *ast.InlineFragment:
				if len(s.Directives) > 0 || (s.TypeCondition != "" && s.TypeCondition != typ) {
					return false
				}
				if !c.collect(typ, []ast.SelectionSet{s.SelectionSet}, out, by, depth+1) {
					return false
				}
			case *ast.FragmentSpread:
				fd := c.doc.Fragments.ForName(s.Name)
				if len(s.Directives) > 0 || fd == nil || len(fd.Directives) > 0 || fd.TypeCondition != typ {
					return false
				}
				if !c.collect(typ, []ast.SelectionSet{fd.SelectionSet}, out, by, depth+1) {
					return false
				}
			default:
				return false
			}
		}
	}
	return true
}

// fields compiles the merged selection of an object of type typ (an entity when ent is set).
func (c *fastCompiler) fields(typ string, ent *entity, sets []ast.SelectionSet, level int) ([]*fastField, bool) {
	var groups []*fieldGroup
	if !c.collect(typ, sets, &groups, map[string]*fieldGroup{}, 0) {
		return nil, false
	}
	m := c.e.m
	out := make([]*fastField, 0, len(groups))
	for _, g := range groups {
		name := g.first.Name
		ff := &fastField{key: g.key, args: g.first.Arguments}
		if name == "__typename" {
			if len(ff.args) > 0 {
				return nil, false
			}
			ff.kind, ff.typename = fkTypename, typ
			out = append(out, ff)
			continue
		}
		var sub string // the object type of the field's selection, "" for leaves
		var subEnt *entity
		switch {
		case typ == "Query":
			switch name {
			case "_meta":
				ff.kind, sub = fkMeta, "_Meta_"
			default:
				for _, t := range m.types {
					switch name {
					case t.Single:
						ff.kind = fkOne
					case t.Plural:
						ff.kind = fkList
					default:
						continue
					}
					subEnt, sub = t, t.Name
					break
				}
				if subEnt == nil {
					return nil, false // introspection, or unknown
				}
			}
		case typ == "_Meta_":
			switch name {
			case "block":
				ff.kind, sub = fkMetaBlock, "_Block_"
			case "deployment":
				ff.kind = fkMetaDeployment
			case "hasIndexingErrors":
				ff.kind = fkMetaErrors
			default:
				return nil, false
			}
		case typ == "_Block_":
			switch name {
			case "number":
				ff.kind = fkBlockNumber
			case "hash":
				ff.kind = fkBlockHash
			case "parentHash":
				ff.kind = fkBlockParent
			case "timestamp":
				ff.kind = fkBlockTimestamp
			default:
				return nil, false
			}
		case ent != nil:
			var f *schema.Field
			fi := -1
			for i, x := range ent.Fields {
				if x.Name == name {
					f, fi = x, i
					break
				}
			}
			if f == nil {
				return nil, false
			}
			ff.f = f
			switch {
			case f.DerivedFrom != "":
				ff.kind, ff.derived = fkDerived, ent.derived[fi]
				if ff.derived == nil {
					return nil, false
				}
				subEnt = ff.derived.target
				sub = subEnt.Name
			case f.Kind == schema.KindEntity && f.List:
				return nil, false // stored lists of references: graphql-go's path
			case f.Kind == schema.KindEntity:
				ff.kind, ff.col = fkRef, ent.ColumnIndex(f.Name)
				subEnt = m.byName[f.Ref]
				if ff.col < 0 || subEnt == nil {
					return nil, false
				}
				sub = subEnt.Name
			default:
				ff.kind, ff.col = fkScalar, ent.ColumnIndex(f.Name)
				if ff.col < 0 || (ff.col == 0 && f.Kind != schema.KindID) || len(ff.args) > 0 {
					return nil, false
				}
			}
		default:
			return nil, false
		}
		if sub == "" {
			if len(g.first.SelectionSet) > 0 {
				return nil, false
			}
			out = append(out, ff)
			continue
		}
		childLevel := level
		if subEnt != nil {
			ff.ent, ff.level = subEnt, level
			childLevel = level + 1
		}
		children, ok := c.fields(sub, subEnt, g.sets, childLevel)
		if !ok || len(children) == 0 {
			return nil, false
		}
		ff.children = children
		if subEnt != nil {
			cols := map[int]bool{0: true}
			for _, ch := range children {
				if ch.kind == fkScalar || ch.kind == fkRef {
					cols[ch.col] = true
				}
			}
			list := make([]int, 0, len(cols))
			for c := range cols {
				list = append(list, c)
			}
			sort.Ints(list)
			ff.lc = newLoadCols(subEnt, list)
		}
		out = append(out, ff)
	}
	return out, true
}

// varsOK checks the request's variables the way graphql-go's validation does (it is the
// only part of validation that depends on them); false sends the request to graphql-go, which
// reports the problem.
func (fs *fastSchema) varsOK(defs ast.VariableDefinitionList, vars map[string]any) bool {
	for _, d := range defs {
		if !fs.valueOK(vars[d.Variable], d.Type, 0) {
			return false
		}
	}
	return true
}

func (fs *fastSchema) valueOK(v any, t *ast.Type, depth int) bool {
	if depth > maxNesting*4 {
		return false
	}
	if t.NonNull && v == nil {
		return false
	}
	if v == nil {
		return true
	}
	if t.Elem != nil {
		l, ok := v.([]any)
		if !ok {
			return fs.valueOK(v, t.Elem, depth+1)
		}
		for _, x := range l {
			if !fs.valueOK(x, t.Elem, depth+1) {
				return false
			}
		}
		return true
	}
	def := fs.types[t.NamedType]
	if def == nil {
		return false
	}
	switch def.Kind {
	case ast.Enum:
		s, ok := v.(string)
		return ok && def.EnumValues.ForName(s) != nil
	case ast.InputObject:
		m, ok := v.(map[string]any)
		if !ok || def.Directives.ForName("oneOf") != nil {
			return false
		}
		for k := range m {
			if def.Fields.ForName(k) == nil {
				return false
			}
		}
		for _, f := range def.Fields {
			if !fs.valueOK(m[f.Name], f.Type, depth+1) {
				return false
			}
		}
		return true
	case ast.Scalar:
		return true
	}
	return false
}

// errFast makes the fast path step aside.
type errFast struct{ why string }

func (e errFast) Error() string { return "fast path: " + e.why }

func notFast(why string) error { return errFast{why} }

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
	by   map[string][]*fastRow // fkRef: id -> row; fkDerived: parent id -> rows
	buf  []byte
	vals [][]byte
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
}

// value is an argument's value as graphql-go hands it to the packer.
func (x *fastExec) value(v *ast.Value) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch v.Kind {
	case ast.Variable:
		if val, ok := x.vars[v.Raw]; ok {
			return val, nil
		}
		if d := x.op.vars.ForName(v.Raw); d != nil && d.DefaultValue != nil {
			return x.value(d.DefaultValue)
		}
		return nil, nil
	case ast.IntValue:
		n, err := strconv.ParseInt(v.Raw, 10, 64)
		if err != nil {
			return nil, notFast("int literal")
		}
		if n < math.MinInt32 || n > math.MaxInt32 {
			return n, nil
		}
		return int32(n), nil
	case ast.FloatValue:
		f, err := strconv.ParseFloat(v.Raw, 64)
		if err != nil {
			return nil, notFast("float literal")
		}
		return f, nil
	case ast.StringValue, ast.EnumValue:
		return v.Raw, nil
	case ast.BooleanValue:
		return v.Raw == "true", nil
	case ast.NullValue:
		return nil, nil
	case ast.ListValue:
		l := make([]any, len(v.Children))
		for i, c := range v.Children {
			x, err := x.value(c.Value)
			if err != nil {
				return nil, err
			}
			l[i] = x
		}
		return l, nil
	case ast.ObjectValue:
		m := make(map[string]any, len(v.Children))
		for _, c := range v.Children {
			x, err := x.value(c.Value)
			if err != nil {
				return nil, err
			}
			m[c.Name] = x
		}
		return m, nil
	}
	return nil, notFast("literal kind")
}

// arg returns an argument's value and whether the field has it.
func (x *fastExec) arg(f *fastField, name string) (any, bool, error) {
	a := f.args.ForName(name)
	if a == nil {
		return nil, false, nil
	}
	v, err := x.value(a.Value)
	return v, true, err
}

// int32Arg packs an Int argument with a default, as graphql-go's packer does; null steps aside.
func (x *fastExec) int32Arg(f *fastField, name string, def int32) (int32, error) {
	v, ok, err := x.arg(f, name)
	if err != nil || !ok {
		return def, err
	}
	switch n := v.(type) {
	case int32:
		return n, nil
	case float64:
		if n == math.Trunc(n) && n >= math.MinInt32 && n <= math.MaxInt32 {
			return int32(n), nil
		}
	}
	return 0, notFast("int argument")
}

func (x *fastExec) optInt32(v any) (*int32, error) {
	switch n := v.(type) {
	case nil:
		return nil, nil
	case int32:
		return &n, nil
	case float64:
		if n == math.Trunc(n) && n >= math.MinInt32 && n <= math.MaxInt32 {
			i := int32(n)
			return &i, nil
		}
	}
	return nil, notFast("int field")
}

func (x *fastExec) enumArg(f *fastField, name string) (*string, error) {
	v, _, err := x.arg(f, name)
	if err != nil || v == nil {
		return nil, err
	}
	s, ok := v.(string)
	if !ok {
		return nil, notFast("enum argument")
	}
	return &s, nil
}

func (x *fastExec) blockArg(f *fastField) (*BlockHeight, error) {
	v, _, err := x.arg(f, "block")
	if err != nil || v == nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, notFast("block argument")
	}
	bh := &BlockHeight{}
	if h, ok := m["hash"]; ok && h != nil {
		var b Bytes
		if err := b.UnmarshalGraphQL(h); err != nil {
			return nil, notFast("block hash")
		}
		bh.Hash = &b
	}
	if bh.Number, err = x.optInt32(m["number"]); err != nil {
		return nil, err
	}
	if bh.NumberGte, err = x.optInt32(m["number_gte"]); err != nil {
		return nil, err
	}
	return bh, nil
}

func (x *fastExec) policyArg(f *fastField) (string, error) {
	v, ok, err := x.arg(f, "subgraphError")
	if err != nil || !ok {
		return "deny", err
	}
	if s, ok := v.(string); ok {
		return s, nil
	}
	return "", notFast("subgraphError")
}

func (x *fastExec) listArgs(f *fastField, top bool) (*ListArgs, error) {
	a := &ListArgs{}
	var err error
	if a.Skip, err = x.int32Arg(f, "skip", 0); err != nil {
		return nil, err
	}
	if a.First, err = x.int32Arg(f, "first", int32(x.s.e.opts.DefaultFirst)); err != nil {
		return nil, err
	}
	if a.OrderBy, err = x.enumArg(f, "orderBy"); err != nil {
		return nil, err
	}
	if a.OrderDirection, err = x.enumArg(f, "orderDirection"); err != nil {
		return nil, err
	}
	w, _, err := x.arg(f, "where")
	if err != nil {
		return nil, err
	}
	if err := a.Where.UnmarshalGraphQL(w); err != nil {
		return nil, notFast("where")
	}
	if top {
		if a.Block, err = x.blockArg(f); err != nil {
			return nil, err
		}
		if a.SubgraphError, err = x.policyArg(f); err != nil {
			return nil, err
		}
	}
	if err := x.s.checkList(a); err != nil {
		return nil, notFast("limits")
	}
	return a, nil
}

// rootStmt builds the statement of a root load at bound b.
func (x *fastExec) rootStmt(f *fastField, b bound) (*fastStmt, error) {
	s, ent := x.s, f.ent
	q := s.builder(b)
	g := &fastGroup{e: ent, b: b}
	st := &fastStmt{g: g, lc: f.lc}
	if f.kind == fkOne {
		v, _, err := x.arg(f, "id")
		if err != nil {
			return nil, err
		}
		id, ok := v.(string)
		if !ok {
			return nil, notFast("id argument")
		}
		cond := col("c", ent.Columns[0]) + " = " + q.param(id) + "::text"
		st.sql = "SELECT " + f.lc.sel + " FROM " + ent.table + " c" + where(cond, q.visible(ent, "c")) + " LIMIT 1"
	} else {
		a, err := x.listArgs(f, true)
		if err != nil {
			return nil, err
		}
		rest, err := s.listSQL(q, ent, "", a)
		if err != nil {
			return nil, notFast("filter")
		}
		st.sql = "SELECT " + f.lc.sel + " FROM " + rest
	}
	st.args = q.args
	return st, nil
}

// rootSpec returns a root field's block argument and error policy.
func (x *fastExec) rootSpec(f *fastField) (*BlockHeight, string, error) {
	bh, err := x.blockArg(f)
	if err != nil {
		return nil, "", err
	}
	if f.kind == fkMeta {
		return bh, "allow", nil
	}
	pol, err := x.policyArg(f)
	return bh, pol, err
}

// childStmt builds the statement loading child field f of the rows of group pg.
func (x *fastExec) childStmt(f *fastField, pg *fastGroup) (*fastStmt, error) {
	s := x.s
	g := &fastGroup{e: f.ent, b: pg.b, by: map[string][]*fastRow{}}
	x.groups[f] = g
	q := s.builder(pg.b)
	st := &fastStmt{g: g, lc: f.lc}
	seen := make(map[string]bool, len(pg.rows))
	ids := make([]string, 0, len(pg.rows))
	if f.kind == fkRef {
		p := pg.pos[f.col]
		for _, r := range pg.rows {
			if raw := r.raw[p]; raw != nil && len(raw) > 0 && !seen[string(raw)] {
				v := string(raw)
				seen[v] = true
				ids = append(ids, v)
			}
		}
		if len(ids) == 0 {
			return nil, nil
		}
		st.sql = refSQL(q, f.ent, f.lc, ids)
		st.args = q.args
		return st, nil
	}
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
	if len(ids) == 1 {
		rest, err := s.listSQL(q, e, back+" = "+q.param(ids[0])+"::text", a)
		if err != nil {
			return nil, notFast("filter")
		}
		st.sql, st.single = "SELECT "+f.lc.sel+" FROM "+rest, ids[0]
	} else {
		ps := q.param(ids)
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

// scan reads a statement's rows into its group, copying the values out of pgx's buffer.
func (x *fastExec) scan(st *fastStmt, rows pgx.Rows) error {
	g, lc, s := st.g, st.lc, x.s
	fds := rows.FieldDescriptions()
	off := 0
	if st.parents != nil {
		off = 1
	}
	if len(fds) != len(lc.cols)+off {
		return fmt.Errorf("%s: %d result columns for %d fields", g.e.Name, len(fds), len(lc.cols))
	}
	g.fmts = make([]int16, len(fds))
	for j := range fds {
		g.fmts[j] = fds[j].Format
	}
	g.pos = rowPositions(g.e, lc, off)
	if g.buf == nil {
		g.buf = make([]byte, 0, 4096)
	}
	cols := g.e.Columns
	for rows.Next() {
		raw := rows.RawValues()
		if s.entities.Add(1) > int64(s.e.cfg.MaxEntities) {
			return notFast("entities")
		}
		start := len(g.vals)
		for j, v := range raw {
			if v == nil {
				if j >= off && cols[lc.cols[j-off]].NonNull {
					return notFast("null in a non-null column")
				}
				g.vals = append(g.vals, nil)
				continue
			}
			a := len(g.buf)
			g.buf = append(g.buf, v...)
			g.vals = append(g.vals, g.buf[a:len(g.buf):len(g.buf)])
		}
		r := &fastRow{raw: g.vals[start:len(g.vals):len(g.vals)]}
		r.id = string(r.raw[off])
		g.rows = append(g.rows, r)
		switch {
		case st.parents != nil:
			p, err := ordinal(fds[0].Format, raw[0])
			if err != nil || p < 1 || p > int64(len(st.parents)) {
				return fmt.Errorf("%s: bad parent position %q", g.e.Name, raw[0])
			}
			g.by[st.parents[p-1]] = append(g.by[st.parents[p-1]], r)
		case st.derived:
			g.by[st.single] = append(g.by[st.single], r)
		case g.by != nil:
			g.by[r.id] = append(g.by[r.id], r)
		}
	}
	return rows.Err()
}

// fastExecute answers the request on the fast path; ok false means it stepped aside (the
// session is then closed and unusable).
func (e *Engine) fastExecute(ctx context.Context, s *session, op *fastOp, vars map[string]any) (*Result, bool) {
	if !e.fast.varsOK(op.vars, vars) {
		return nil, false
	}
	x := &fastExec{s: s, op: op, vars: vars, groups: map[*fastField]*fastGroup{}}
	data, err := x.run(ctx)
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
	keepOpen := false         // _meta at another block reads indexer.blocks in the snapshot at the end
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
	var stmts []*fastStmt
	if !lookup {
		for _, l := range loads {
			st, err := x.rootStmt(l.f, s.tentative(l.spec))
			if err != nil {
				return nil, err
			}
			x.groups[l.f] = st.g
			stmts = append(stmts, st)
		}
	}
	if err := x.begin(ctx, stmts, !lookup && !keepOpen && op.maxLevel == 0); err != nil {
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
		}
	}
	if lookup && len(stmts) > 0 {
		if err := x.level(ctx, stmts, !keepOpen && op.maxLevel == 0); err != nil {
			return nil, err
		}
	}
	// Each further level: every relation of the rows read so far, one round trip.
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
	if err := br.QueryRow().Scan(&setting, &setting, &number, &hash, &parent, &ts, &histFrom, &errBlock); err != nil {
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

// write renders the data object as graphql-go does.
func (x *fastExec) write(op *fastOp, meta *Meta) ([]byte, error) {
	buf := make([]byte, 0, max(512, op.size.Load()*5/4))
	defer func() { op.size.Store(int64(len(buf))) }()
	buf = append(buf, '{')
	for i, f := range op.root {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendKey(buf, f.key)
		var err error
		switch f.kind {
		case fkTypename:
			buf = appendJSONString(buf, f.typename)
		case fkMeta:
			buf, err = x.writeMeta(buf, f, meta)
		case fkOne:
			g := x.groups[f]
			if len(g.rows) == 0 {
				buf = append(buf, "null"...)
			} else {
				buf, err = x.writeEntity(buf, f, g, g.rows[0])
			}
		case fkList:
			g := x.groups[f]
			buf, err = x.writeList(buf, f, g, g.rows)
		default:
			err = notFast("root kind")
		}
		if err != nil {
			return nil, err
		}
	}
	return append(buf, '}'), nil
}

func appendKey(buf []byte, key string) []byte {
	buf = append(buf, '"')
	buf = append(buf, key...)
	return append(buf, '"', ':')
}

func (x *fastExec) writeList(buf []byte, f *fastField, g *fastGroup, rows []*fastRow) ([]byte, error) {
	buf = append(buf, '[')
	for i, r := range rows {
		if i > 0 {
			buf = append(buf, ',')
		}
		var err error
		if buf, err = x.writeEntity(buf, f, g, r); err != nil {
			return nil, err
		}
	}
	return append(buf, ']'), nil
}

func (x *fastExec) writeEntity(buf []byte, f *fastField, g *fastGroup, r *fastRow) ([]byte, error) {
	row := Row{e: g.e, raw: r.raw, fmts: g.fmts, pos: g.pos}
	buf = append(buf, '{')
	for i, c := range f.children {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendKey(buf, c.key)
		switch c.kind {
		case fkTypename:
			buf = appendJSONString(buf, c.typename)
		case fkScalar:
			var ok bool
			if buf, ok = appendField(buf, c.f, c.col, &row, r.id); !ok {
				return nil, notFast("list element")
			}
		case fkRef:
			raw, _ := row.at(c.col)
			var target []*fastRow
			cg := x.groups[c]
			if raw != nil && cg != nil {
				target = cg.by[string(raw)]
			}
			if len(target) == 0 {
				if c.f.NonNull {
					return nil, notFast("missing non-null reference")
				}
				buf = append(buf, "null"...)
				continue
			}
			var err error
			if buf, err = x.writeEntity(buf, c, cg, target[0]); err != nil {
				return nil, err
			}
		case fkDerived:
			cg := x.groups[c]
			var rows []*fastRow
			if cg != nil {
				rows = cg.by[r.id]
			}
			var err error
			if buf, err = x.writeList(buf, c, cg, rows); err != nil {
				return nil, err
			}
		default:
			return nil, notFast("entity field kind")
		}
	}
	return append(buf, '}'), nil
}

func (x *fastExec) writeMeta(buf []byte, f *fastField, m *Meta) ([]byte, error) {
	buf = append(buf, '{')
	for i, c := range f.children {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendKey(buf, c.key)
		switch c.kind {
		case fkTypename:
			buf = appendJSONString(buf, c.typename)
		case fkMetaDeployment:
			buf = appendJSONString(buf, m.deployment)
		case fkMetaErrors:
			buf = strconv.AppendBool(buf, m.errors)
		case fkMetaBlock:
			mb := m.Block()
			buf = append(buf, '{')
			for j, bc := range c.children {
				if j > 0 {
					buf = append(buf, ',')
				}
				buf = appendKey(buf, bc.key)
				switch bc.kind {
				case fkTypename:
					buf = appendJSONString(buf, bc.typename)
				case fkBlockNumber:
					buf = strconv.AppendInt(buf, int64(mb.Number()), 10)
				case fkBlockHash:
					buf = appendOptString(buf, (*string)(mb.Hash()))
				case fkBlockParent:
					buf = appendOptString(buf, (*string)(mb.ParentHash()))
				case fkBlockTimestamp:
					if t := mb.Timestamp(); t != nil {
						buf = strconv.AppendInt(buf, int64(*t), 10)
					} else {
						buf = append(buf, "null"...)
					}
				}
			}
			buf = append(buf, '}')
		default:
			return nil, notFast("meta field")
		}
	}
	return append(buf, '}'), nil
}

func appendOptString(buf []byte, s *string) []byte {
	if s == nil {
		return append(buf, "null"...)
	}
	return appendJSONString(buf, *s)
}

// appendField writes a scalar column as graphql-go writes the generated resolver's value
// (codegen.valueExpr): json.Marshal of the Go value, strconv quoting for IDs (gql.ID's
// MarshalJSON).
func appendField(buf []byte, f *schema.Field, ci int, r *Row, id string) ([]byte, bool) {
	if ci == 0 {
		return appendQuoted(buf, id), true
	}
	if !f.List {
		raw, format := r.at(ci)
		if raw == nil && !f.NonNull {
			return append(buf, "null"...), true
		}
		switch f.Kind {
		case schema.KindID:
			return appendQuoted(buf, raw), true
		case schema.KindString:
			return appendJSONString(buf, raw), true
		case schema.KindBoolean:
			return strconv.AppendBool(buf, r.Bool(ci)), true
		case schema.KindInt:
			return strconv.AppendInt(buf, int64(r.Int(ci)), 10), true
		case schema.KindInt8, schema.KindTimestamp:
			return appendJSONString(buf, r.int64s(ci)), true
		case schema.KindBigInt:
			return appendJSONString(buf, raw), true
		case schema.KindBigDecimal:
			return appendJSONString(buf, string(r.BigDecimal(ci))), true
		case schema.KindBytes:
			if format == 1 { // lowercase 0x hex, what hexBytes makes
				buf = append(buf, '"', '0', 'x')
				buf = hex.AppendEncode(buf, raw)
				return append(buf, '"'), true
			}
			return appendJSONString(buf, string(r.Bytes(ci))), true
		}
		return buf, false
	}
	v := r.Value(ci)
	if v == nil && !f.NonNull {
		return append(buf, "null"...), true
	}
	l, _ := v.([]any)
	buf = append(buf, '[')
	for i, el := range l {
		if i > 0 {
			buf = append(buf, ',')
		}
		if el == nil {
			if !f.ElemNonNull {
				buf = append(buf, "null"...)
				continue
			}
			el = zeroOf(f.Kind) // engine.List keeps the element type's zero value
		}
		var ok bool
		if buf, ok = appendElem(buf, el); !ok {
			return buf, false
		}
	}
	return append(buf, ']'), true
}

func zeroOf(k schema.Kind) any {
	switch k {
	case schema.KindBoolean:
		return false
	case schema.KindInt:
		return int32(0)
	case schema.KindID:
		return gql.ID("")
	}
	return ""
}

func appendElem(buf []byte, v any) ([]byte, bool) {
	switch x := v.(type) {
	case bool:
		return strconv.AppendBool(buf, x), true
	case int32:
		return strconv.AppendInt(buf, int64(x), 10), true
	case string:
		return appendJSONString(buf, x), true
	case gql.ID:
		return strconv.AppendQuote(buf, string(x)), true
	case BigInt:
		return appendJSONString(buf, string(x)), true
	case BigDecimal:
		return appendJSONString(buf, string(x)), true
	case Bytes:
		return appendJSONString(buf, string(x)), true
	case Int8:
		return appendJSONString(buf, string(x)), true
	case Timestamp:
		return appendJSONString(buf, string(x)), true
	}
	return buf, false
}

// appendJSONString writes s as encoding/json does (HTML-safe escaping, invalid UTF-8 replaced):
// directly when it needs no escaping, else through encoding/json.
func appendJSONString[T string | []byte](buf []byte, s T) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(string(s))
			return append(buf, b...)
		}
	}
	buf = append(buf, '"')
	buf = append(buf, s...)
	return append(buf, '"')
}

// appendQuoted writes s as strconv.AppendQuote does (gql.ID's MarshalJSON): directly when it
// is printable ASCII needing no escape.
func appendQuoted[T string | []byte](buf []byte, s T) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return strconv.AppendQuote(buf, string(s))
		}
	}
	buf = append(buf, '"')
	buf = append(buf, s...)
	return append(buf, '"')
}
