package subscriptions

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	gqlerrors "github.com/graph-gophers/graphql-go/errors"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/formatter"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/validator"

	"github.com/echain/echain-indexer/api/graphql"
)

// apiSchema is the engine's front end as subscriptions use it: its schema (whose Subscription
// root has Query's fields) and its Prepare, which parses and validates each document once.
type apiSchema struct {
	eng      Engine
	s        *ast.Schema
	entities map[string]bool // object types stored as entities (what notifications name)
}

func newAPISchema(eng Engine) (*apiSchema, error) {
	s := eng.APISchema()
	if s == nil || s.Query == nil {
		return nil, errors.New("the API schema has no Query type")
	}
	if s.Subscription == nil {
		return nil, errors.New("the API schema has no Subscription root")
	}
	as := &apiSchema{eng: eng, s: s, entities: map[string]bool{}}
	// Entities are the object types a root field returns by id (graph-node's `foo(id: ID!)`).
	for _, f := range s.Query.Fields {
		if f.Arguments.ForName("id") != nil && f.Type.Elem == nil {
			if d := s.Types[f.Type.Name()]; d != nil && d.Kind == ast.Object {
				as.entities[d.Name] = true
			}
		}
	}
	return as, nil
}

// idSet is the ids of one entity type an operation depends on; nil means any id.
type idSet map[string]struct{}

// operation is a validated subscription: what the engine executes and what it depends on.
type operation struct {
	key       string         // identical subscriptions (same document, operation and variables) share it
	query     string         // the operation as the engine executes it (re-printed)
	name      string         // operation name, "" for anonymous
	vars      map[string]any // as the client sent them
	reads     map[string]idSet
	metaReads bool // reads _meta: changes with every block
	depth     int
	cost      int // entities one execution may return, at most
}

// limits bound what one subscription may cost.
type limits struct {
	maxDepth int
	maxCost  int
	maxFirst int
}

// requestError is a refusal sent to the client as the operation's error: codes match the
// query API's where the limit is the same.
type requestError struct {
	code string
	msg  string
	loc  []gqlerror.Location
}

func (e *requestError) Error() string { return e.msg }

func refuse(code, format string, args ...any) *requestError {
	return &requestError{code: code, msg: fmt.Sprintf(format, args...)}
}

const (
	codeValidation   = "GRAPHQL_VALIDATION"
	codeNotSubscribe = "NOT_A_SUBSCRIPTION"
	codeBadRequest   = "BAD_REQUEST"
	codeLimitDepth   = "LIMIT_DEPTH"
	codeLimitCost    = "LIMIT_COST"
	codeLimitFirst   = "LIMIT_FIRST"
	codeLimitSubs    = "LIMIT_SUBSCRIPTIONS"
	codeLimitSize    = "LIMIT_QUERY_SIZE"
	codeUnavailable  = "UNAVAILABLE"
	codeInternal     = "INTERNAL"
)

// parseOperation validates a subscribe request and derives what it reads. The document is
// the engine's (shared by every request of the same text): it is only read.
func (as *apiSchema) parseOperation(ctx context.Context, query, opName string, vars map[string]any, lim limits) (*operation, []*requestError) {
	prep, qerrs := as.eng.Prepare(ctx, graphql.Request{Query: query, OperationName: opName, Variables: vars})
	if len(qerrs) > 0 {
		return nil, queryErrors(qerrs)
	}
	doc := prep.Doc
	vars = prep.Variables // as the document takes them (graph-node's coercions, where it differs)
	op, err := pickOperation(doc, opName)
	if err != nil {
		return nil, []*requestError{err}
	}
	if op.Operation != ast.Subscription {
		return nil, []*requestError{refuse(codeNotSubscribe,
			"only subscription operations are served over the WebSocket, not %s: send queries and mutations over HTTP", op.Operation)}
	}
	coerced, verr := validator.VariableValues(as.s, op, vars)
	if verr != nil {
		return nil, gqlErrors(verr)
	}
	o := &operation{name: op.Name, vars: vars, reads: map[string]idSet{}}
	w := walker{as: as, o: o, vars: coerced, doc: doc, lim: lim}
	o.cost = w.selection(op.SelectionSet, 1, 1, true)
	if w.err != nil {
		return nil, []*requestError{w.err}
	}
	if lim.maxDepth > 0 && o.depth > lim.maxDepth {
		return nil, []*requestError{refuse(codeLimitDepth, "the subscription is %d fields deep, more than the limit of %d (limit max_depth)", o.depth, lim.maxDepth)}
	}
	if lim.maxCost > 0 && o.cost > lim.maxCost {
		return nil, []*requestError{refuse(codeLimitCost,
			"the subscription may return up to %d entities per execution, more than the limit of %d (limit max_cost): lower `first` on its lists", o.cost, lim.maxCost)}
	}
	// The document is re-printed: equivalent spellings share one operation (and the engine's
	// plan cache).
	var buf bytes.Buffer
	f := formatter.NewFormatter(&buf)
	f.FormatQueryDocument(&ast.QueryDocument{Operations: ast.OperationList{op}, Fragments: usedFragments(doc, op)})
	o.query = buf.String()
	vb, err2 := json.Marshal(vars) // map keys are sorted: equal variables give equal bytes
	if err2 != nil {
		return nil, []*requestError{refuse(codeBadRequest, "variables: %v", err2)}
	}
	sum := sha256.Sum256([]byte(o.query + "\x00" + o.name + "\x00" + string(vb)))
	o.key = string(sum[:])
	return o, nil
}

func pickOperation(doc *ast.QueryDocument, name string) (*ast.OperationDefinition, *requestError) {
	if name != "" {
		if op := doc.Operations.ForName(name); op != nil {
			return op, nil
		}
		return nil, refuse(codeValidation, "unknown operation named %q", name)
	}
	if len(doc.Operations) != 1 {
		return nil, refuse(codeValidation, "the document has %d operations: name the one to run with operationName", len(doc.Operations))
	}
	return doc.Operations[0], nil
}

// usedFragments lists the fragments op spreads, directly or through other fragments, in
// document order (the engine refuses unused ones).
func usedFragments(doc *ast.QueryDocument, op *ast.OperationDefinition) ast.FragmentDefinitionList {
	used := map[string]bool{}
	var visit func(ast.SelectionSet)
	visit = func(ss ast.SelectionSet) {
		for _, sel := range ss {
			switch s := sel.(type) {
			case *ast.Field:
				visit(s.SelectionSet)
			case *ast.InlineFragment:
				visit(s.SelectionSet)
			case *ast.FragmentSpread:
				if !used[s.Name] {
					used[s.Name] = true
					if fd := doc.Fragments.ForName(s.Name); fd != nil {
						visit(fd.SelectionSet)
					}
				}
			}
		}
	}
	visit(op.SelectionSet)
	var out ast.FragmentDefinitionList
	for _, fd := range doc.Fragments {
		if used[fd.Name] {
			out = append(out, fd)
		}
	}
	return out
}

// walker derives the entity types (and, for root lookups by id, the ids) an operation reads,
// its depth and its cost.
type walker struct {
	as   *apiSchema
	o    *operation
	vars map[string]any
	doc  *ast.QueryDocument
	lim  limits
	err  *requestError
	seen int // fragment spreads expanded, bounds pathological documents
}

// selection walks ss at nesting depth d under lists multiplying to mult entities; it returns
// the cost (entities) of the subtree.
func (w *walker) selection(ss ast.SelectionSet, d, mult int, root bool) int {
	cost := 0
	for _, sel := range ss {
		switch s := sel.(type) {
		case *ast.Field:
			cost += w.field(s, d, mult, root)
		case *ast.InlineFragment:
			cost += w.selection(s.SelectionSet, d, mult, root)
		case *ast.FragmentSpread:
			w.seen++
			if w.seen > 1000 {
				w.fail(refuse(codeLimitSize, "the subscription expands more than 1000 fragment spreads"))
				return cost
			}
			if fd := w.doc.Fragments.ForName(s.Name); fd != nil {
				cost += w.selection(fd.SelectionSet, d, mult, root)
			}
		}
		if cost > 1<<30 {
			cost = 1 << 30
		}
	}
	return cost
}

func (w *walker) fail(e *requestError) {
	if w.err == nil {
		w.err = e
	}
}

func (w *walker) field(f *ast.Field, d, mult int, root bool) int {
	if d > w.o.depth {
		w.o.depth = d
	}
	if f.Definition == nil || strings.HasPrefix(f.Name, "__") {
		return 0
	}
	if root && f.Name == "_meta" {
		w.o.metaReads = true
		return 0
	}
	typ := f.Definition.Type.Name()
	if !w.as.entities[typ] {
		return 0 // a scalar, or _Meta_ / _Block_ below _meta
	}
	args := map[string]any{}
	for _, a := range f.Arguments {
		v, err := a.Value.Value(w.vars)
		if err != nil {
			w.fail(refuse(codeValidation, "argument %s of %s: %v", a.Name, f.Name, err))
			return 0
		}
		args[a.Name] = v
	}
	n := 1
	if f.Definition.Type.Elem != nil {
		n = w.first(f, args)
	}
	mult = satMul(mult, n)
	ids := idSet(nil)
	if root && f.Definition.Type.Elem == nil {
		if id, ok := args["id"].(string); ok {
			ids = idSet{id: {}}
		}
	}
	w.read(typ, ids)
	if where, ok := args["where"].(map[string]any); ok {
		if a := f.Definition.Arguments.ForName("where"); a != nil {
			w.filter(a.Type.Name(), where, 0)
		}
	}
	if ob, ok := args["orderBy"].(string); ok {
		if parent, _, nested := strings.Cut(ob, "__"); nested {
			if def := w.as.s.Types[typ]; def != nil {
				if pf := def.Fields.ForName(parent); pf != nil && w.as.entities[pf.Type.Name()] {
					w.read(pf.Type.Name(), nil)
				}
			}
		}
	}
	return satAdd(mult, w.selection(f.SelectionSet, d+1, mult, false))
}

// first is the number of entities a list field returns at most, refusing `first` above the
// API's limit the way the query API does.
func (w *walker) first(f *ast.Field, args map[string]any) int {
	n := 100
	if a := f.Definition.Arguments.ForName("first"); a != nil && a.DefaultValue != nil {
		if v, err := a.DefaultValue.Value(nil); err == nil {
			n = toInt(v, n)
		}
	}
	if v, ok := args["first"]; ok && v != nil {
		n = toInt(v, n)
	}
	if w.lim.maxFirst > 0 && n > w.lim.maxFirst {
		w.fail(refuse(codeLimitFirst, "`first` of %s is %d, more than the limit of %d (limit max_first)", f.Name, n, w.lim.maxFirst))
	}
	if n < 0 {
		n = 0
	}
	return n
}

func toInt(v any, def int) int {
	switch x := v.(type) {
	case int64:
		return int(x)
	case int:
		return x
	case float64:
		return int(x)
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return int(i)
		}
	}
	return def
}

// filter records the entity types a where argument of input type typ reaches: nested filters
// (`owner_: {...}`) read the referenced entity, and/or combine filters of the same type.
func (w *walker) filter(typ string, where map[string]any, depth int) {
	if depth > 32 {
		return
	}
	def := w.as.s.Types[typ]
	if def == nil {
		return
	}
	for k, v := range where {
		fd := def.Fields.ForName(k)
		if fd == nil {
			continue
		}
		switch {
		case k == "and" || k == "or":
			if list, ok := v.([]any); ok {
				for _, e := range list {
					if m, ok := e.(map[string]any); ok {
						w.filter(typ, m, depth+1)
					}
				}
			}
		case strings.HasSuffix(k, "_") && strings.HasSuffix(fd.Type.Name(), "_filter"):
			ref := strings.TrimSuffix(fd.Type.Name(), "_filter")
			if w.as.entities[ref] {
				w.read(ref, nil)
			}
			if m, ok := v.(map[string]any); ok {
				w.filter(fd.Type.Name(), m, depth+1)
			}
		}
	}
}

// read notes that the operation reads typ: only ids (a root lookup by id) or, with nil, any.
func (w *walker) read(typ string, ids idSet) {
	cur, seen := w.o.reads[typ]
	switch {
	case !seen:
		w.o.reads[typ] = ids
	case cur == nil || ids == nil:
		w.o.reads[typ] = nil
	default:
		for id := range ids {
			cur[id] = struct{}{}
		}
	}
}

// affectedBy reports whether a change of these entity types and ids (nil list = some ids) may
// change the operation's result.
func (o *operation) affectedBy(types map[string][]string) bool {
	for typ, changed := range types {
		ids, reads := o.reads[typ]
		if !reads {
			continue
		}
		if ids == nil || changed == nil {
			return true
		}
		for _, id := range changed {
			if _, ok := ids[id]; ok {
				return true
			}
		}
	}
	return false
}

// readTypes lists the entity types the operation reads, sorted (for logs and tests).
func (o *operation) readTypes() []string {
	out := make([]string, 0, len(o.reads))
	for t := range o.reads {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

func satMul(a, b int) int {
	if a != 0 && b > (1<<30)/a {
		return 1 << 30
	}
	return a * b
}

func satAdd(a, b int) int {
	if a+b > 1<<30 {
		return 1 << 30
	}
	return a + b
}

// queryErrors carries the engine's errors over, with their codes (a limit's) or as validation
// errors.
func queryErrors(errs []*gqlerrors.QueryError) []*requestError {
	out := make([]*requestError, 0, len(errs))
	for _, qe := range errs {
		re := &requestError{code: codeValidation, msg: qe.Message}
		if c, ok := qe.Extensions["code"].(string); ok {
			re.code = c
		}
		for _, l := range qe.Locations {
			re.loc = append(re.loc, gqlerror.Location{Line: l.Line, Column: l.Column})
		}
		out = append(out, re)
	}
	return out
}

func gqlErrors(err error) []*requestError {
	var list gqlerror.List
	var one *gqlerror.Error
	switch {
	case errors.As(err, &list):
	case errors.As(err, &one):
		list = gqlerror.List{one}
	default:
		return []*requestError{refuse(codeValidation, "%v", err)}
	}
	out := make([]*requestError, 0, len(list))
	for _, e := range list {
		out = append(out, &requestError{code: codeValidation, msg: e.Message, loc: e.Locations})
	}
	return out
}
