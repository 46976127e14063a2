package engine

import (
	"strings"
	"sync"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// A plan records, for a query text, which fields are selected under each field name (the union
// over every occurrence, fragments included), so a load reads only the columns the response can
// show. graphql-go has validated the query by the time a load runs; a union by field name may
// over-select (never under-select), which is harmless.
type plan struct {
	children map[string]map[string]bool // nil: read every column
	// asQuery is the query text with each subscription operation turned into a query (same
	// length, so error locations stay right); "" when it has none.
	asQuery string
	// relaxed is the query text with variables re-declared the way graph-node accepts them
	// (relax.go), and relax how; "" and nil when the text needs none.
	relaxed string
	relax   *relaxation
	text    string
	subs    map[string]bool // operation name ("" for an anonymous one) -> it is a subscription
	ops     int             // operations in the document
	mu      sync.Mutex
	loads   map[planKey]*loadCols
	// doc is the parsed document (nil when it does not parse or is refused); fast holds the
	// fast path's compiled operations (fast.go).
	doc  *ast.QueryDocument
	fast fastPlans
	// refused is the parse budget's answer (front.go): the document is not validated or run.
	refused *refusal
	// validation is the front end's verdict, made once per text under a concurrency slot.
	validOnce sync.Once
	invalid   gqlerror.List
	// label is the operation name for the metrics when the request names none.
	label     string
	labelOnce sync.Once
}

type planKey struct {
	typ   int
	field string
}

// loadCols are the columns one load reads and their select list.
type loadCols struct {
	cols []int // ascending column indexes; cols[0] == 0 (id)
	sel  string
}

const maxPlanDepth = 64

func buildPlan(f *front, query string) *plan {
	p := &plan{loads: map[planKey]*loadCols{}, text: query}
	doc, ref, perr := f.parse(query)
	if ref == nil && perr == nil {
		ref = f.measure(doc)
	}
	if ref != nil || perr != nil {
		p.refused = ref
		if perr != nil {
			p.invalid = gqlerror.List{perr}
		}
		p.validOnce.Do(func() {})
		return p
	}
	mergeLeaves(doc)
	p.doc = doc
	p.children = map[string]map[string]bool{}
	frags := map[string]*ast.FragmentDefinition{}
	for _, f := range doc.Fragments {
		frags[f.Name] = f
	}
	var visit func(parent string, set ast.SelectionSet, depth int)
	visit = func(parent string, set ast.SelectionSet, depth int) {
		if depth > maxPlanDepth {
			p.children = nil // give up narrowing: read everything
			return
		}
		for _, sel := range set {
			if p.children == nil {
				return
			}
			switch s := sel.(type) {
			case *ast.Field:
				if parent != "" {
					m := p.children[parent]
					if m == nil {
						m = map[string]bool{}
						p.children[parent] = m
					}
					m[s.Name] = true
				}
				visit(s.Name, s.SelectionSet, depth+1)
			case *ast.InlineFragment:
				visit(parent, s.SelectionSet, depth+1)
			case *ast.FragmentSpread:
				if f := frags[s.Name]; f != nil {
					visit(parent, f.SelectionSet, depth+1)
				}
			}
		}
	}
	var rewritten []byte
	p.ops = len(doc.Operations)
	for _, op := range doc.Operations {
		visit("", op.SelectionSet, 0)
		if op.Operation == ast.Subscription {
			if p.subs == nil {
				p.subs = map[string]bool{}
			}
			p.subs[op.Name] = true
		}
		if op.Operation == ast.Subscription && op.Position != nil {
			at := op.Position.Start
			if at >= 0 && at+len("subscription") <= len(query) && query[at:at+len("subscription")] == "subscription" {
				if rewritten == nil {
					rewritten = []byte(query)
				}
				copy(rewritten[at:], "query       ")
			}
		}
	}
	if rewritten != nil {
		p.asQuery = string(rewritten)
	}
	return p
}

// subscription reports whether the operation a request runs (by name; "" = the only one) is
// a subscription.
func (p *plan) subscription(opName string) bool {
	if p.subs == nil {
		return false
	}
	if opName != "" {
		return p.subs[opName]
	}
	return len(p.subs) == 1 && p.ops == 1
}

// columns returns what a load of entity e reached through field name `field` reads.
func (p *plan) columns(e *entity, field string) *loadCols {
	if p == nil {
		return e.all
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	k := planKey{e.index, field}
	if lc := p.loads[k]; lc != nil {
		return lc
	}
	lc := e.all
	if p.children != nil {
		want := p.children[field]
		cols := []int{0}
		for i, c := range e.Columns[1:] {
			if want[c.Name] {
				cols = append(cols, i+1)
			}
		}
		lc = newLoadCols(e, cols)
	}
	p.loads[k] = lc
	return lc
}

func newLoadCols(e *entity, cols []int) *loadCols {
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = selectExpr("c", e.Columns[c])
	}
	return &loadCols{cols: cols, sel: strings.Join(parts, ", ")}
}

// plans caches plans by query text: clients send the same few query texts with varying
// variables.
type plans struct {
	mu sync.Mutex
	m  map[string]*plan
}

const (
	maxPlans        = 512
	maxPlannedQuery = 16 << 10
)

// validate returns the front end's validation errors of the document, validating it the
// first time (the caller holds a concurrency slot: validation is the superlinear step).
func (p *plan) validate(e *Engine) gqlerror.List {
	p.validOnce.Do(func() {
		if p.doc == nil {
			return
		}
		e.met.validations.Inc()
		p.invalid = e.front.validate(p.doc)
		if len(p.invalid) == 0 {
			return
		}
		r := e.relax(p.text, p.doc)
		if r == nil {
			return
		}
		relaxed := r.apply(p.text)
		doc, _, perr := e.front.parse(relaxed)
		if perr != nil || doc == nil {
			return
		}
		mergeLeaves(doc)
		if len(e.front.validate(doc)) > 0 {
			return // still invalid: the original errors stand
		}
		p.doc, p.invalid, p.relaxed, p.relax = doc, nil, relaxed, r
		if p.asQuery != "" {
			p.asQuery = r.apply(p.asQuery) // the same length as the text: the edits apply
		}
	})
	return p.invalid
}

// declared is the document as sent, with the variables' declared types.
func (p *plan) declared() *ast.QueryDocument {
	if p.relax != nil {
		return p.relax.orig
	}
	return p.doc
}

func (ps *plans) get(f *front, query string) *plan {
	if len(query) > maxPlannedQuery {
		return buildPlan(f, query)
	}
	ps.mu.Lock()
	p := ps.m[query]
	ps.mu.Unlock()
	if p != nil {
		return p
	}
	p = buildPlan(f, query)
	ps.mu.Lock()
	if ps.m == nil || len(ps.m) >= maxPlans {
		ps.m = map[string]*plan{} // simple and bounded: start over
	}
	ps.m[query] = p
	ps.mu.Unlock()
	return p
}
