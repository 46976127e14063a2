package engine

import (
	"context"
	"errors"
	"fmt"

	gqlerrors "github.com/graph-gophers/graphql-go/errors"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"
	"github.com/vektah/gqlparser/v2/validator/rules"
)

// The front end: every request text is parsed once (gqlparser, kept per text in its plan),
// measured against the parse budget in one linear pass before anything superlinear runs, and
// validated once against the one API schema (gqlparser's form of the SDL, which the fast path
// and the subscription server read too). graphql-go executes what the fast path does not
// serve; its public API takes only text, so that fallback parses and validates again, within
// the same budget.

// front is the API schema as the front end reads it.
type front struct {
	schema *ast.Schema
	rules  *rules.Rules
	budget budget
	// introRows is the longest list each introspection field can return in this schema:
	// the cost estimate prices introspection by the schema's size, not by max_first.
	introRows map[string]float64
}

// budget bounds what a document may ask for before validation and execution.
type budget struct {
	tokens, fields, aliases, spreads, depth int
}

func newFront(sdl string, b budget) (*front, error) {
	s, err := gqlparser.LoadSchema(&ast.Source{Name: "api.graphql", Input: sdl})
	if err != nil {
		return nil, err
	}
	return &front{schema: s, rules: rules.NewDefaultRules(), budget: b, introRows: introspectionRows(s)}, nil
}

// introspectionRows measures the schema's longest introspection lists, by field name.
func introspectionRows(s *ast.Schema) map[string]float64 {
	r := map[string]float64{"types": float64(len(s.Types)), "directives": float64(len(s.Directives))}
	most := func(k string, n int) { r[k] = max(r[k], float64(n)) }
	for _, t := range s.Types {
		if t.Kind == ast.InputObject {
			most("inputFields", len(t.Fields))
		} else {
			most("fields", len(t.Fields))
		}
		for _, f := range t.Fields {
			most("args", len(f.Arguments))
		}
		most("enumValues", len(t.EnumValues))
		most("interfaces", len(t.Interfaces))
		most("possibleTypes", len(s.PossibleTypes[t.Name]))
	}
	for _, d := range s.Directives {
		most("args", len(d.Arguments))
		most("locations", len(d.Locations))
	}
	return r
}

// Refusal reasons, the label of echain_indexer_graphql_refusals_total.
const (
	reasonTokens       = "tokens"
	reasonFields       = "fields"
	reasonAliases      = "aliases"
	reasonSpreads      = "fragment_spreads"
	reasonDepth        = "depth"
	reasonCost         = "cost"
	reasonResponseSize = "response_size"
	reasonTimeout      = "timeout"
	reasonCanceled     = "client_gone"
	reasonBusy         = "concurrency"
	reasonQueryBytes   = "query_bytes"
)

// refusal is a limit's answer: one GraphQL error, counted by reason.
type refusal struct {
	reason string
	err    *Error
}

// parse reads the text with the token budget, so parsing itself is linear and bounded.
func (f *front) parse(query string) (*ast.QueryDocument, *refusal, *gqlerror.Error) {
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: query}, f.budget.tokens)
	if err != nil {
		var ge *gqlerror.Error
		if !errors.As(err, &ge) {
			ge = gqlerror.Wrap(err)
		}
		if f.budget.tokens > 0 && ge.Message == fmt.Sprintf("exceeded token limit of %d", f.budget.tokens) {
			return nil, &refusal{reasonTokens, errorf(codeLimitQuerySize,
				"the query has more than %d tokens (limit max_tokens)", f.budget.tokens)}, nil
		}
		return nil, nil, ge
	}
	return doc, nil, nil
}

// measure counts what the document asks for with every fragment spread expanded, in time
// linear in the document: each fragment is measured once and its totals reused wherever it is
// spread, so a chain of doubling fragments is priced at what it expands to without expanding
// it. It returns the first limit exceeded.
func (f *front) measure(doc *ast.QueryDocument) *refusal {
	m := measurer{doc: doc, frags: map[string]*size{}}
	var total size
	for _, op := range doc.Operations {
		total.add(m.set(op.SelectionSet), 0)
	}
	b := f.budget
	switch {
	case b.depth > 0 && total.depth > b.depth:
		return &refusal{reasonDepth, errorf(codeLimitDepth,
			"the query is %d fields deep, more than the limit of %d (limit max_depth)", total.depth, b.depth)}
	case b.spreads > 0 && total.spreads > b.spreads:
		return &refusal{reasonSpreads, errorf(codeLimitQuerySize,
			"the query spreads fragments %s times once expanded, more than the limit of %d (limit max_fragment_spreads)", count(total.spreads), b.spreads)}
	case b.aliases > 0 && total.aliases > b.aliases:
		return &refusal{reasonAliases, errorf(codeLimitQuerySize,
			"the query uses %s aliases with its fragments expanded, more than the limit of %d (limit max_aliases)", count(total.aliases), b.aliases)}
	case b.fields > 0 && total.fields > b.fields:
		return &refusal{reasonFields, errorf(codeLimitQuerySize,
			"the query selects %s fields with its fragments expanded, more than the limit of %d (limit max_fields)", count(total.fields), b.fields)}
	}
	return nil
}

// mergeLeaves drops repeats of a plain leaf field (same key, no arguments, directives or
// selection) within one selection set: GraphQL merges them into one anyway, and validation
// compares the fields of one response key pairwise, so `id id id …` would cost it the square
// of the repeats. Runs after measure (the budget counts what the client sent).
func mergeLeaves(doc *ast.QueryDocument) {
	var visit func(ss ast.SelectionSet) ast.SelectionSet
	visit = func(ss ast.SelectionSet) ast.SelectionSet {
		var seen map[string]bool
		out := ss[:0]
		for _, sel := range ss {
			switch x := sel.(type) {
			case *ast.Field:
				if len(x.Arguments) == 0 && len(x.Directives) == 0 && len(x.SelectionSet) == 0 {
					key := x.Alias + ":" + x.Name
					if seen[key] {
						continue
					}
					if seen == nil {
						seen = map[string]bool{}
					}
					seen[key] = true
				} else {
					x.SelectionSet = visit(x.SelectionSet)
				}
			case *ast.InlineFragment:
				x.SelectionSet = visit(x.SelectionSet)
			}
			out = append(out, sel)
		}
		return out
	}
	for _, op := range doc.Operations {
		op.SelectionSet = visit(op.SelectionSet)
	}
	for _, fd := range doc.Fragments {
		fd.SelectionSet = visit(fd.SelectionSet)
	}
}

// count prints a saturated total as a lower bound.
func count(n int) string {
	if n >= satMax {
		return fmt.Sprintf("more than %d", satMax)
	}
	return fmt.Sprint(n)
}

// size is what a selection set expands to.
type size struct {
	fields, aliases, spreads, depth int
}

const satMax = 1 << 40

func sat(n int) int { return min(n, satMax) }

func (s *size) add(o size, depthOffset int) {
	s.fields = sat(s.fields + o.fields)
	s.aliases = sat(s.aliases + o.aliases)
	s.spreads = sat(s.spreads + o.spreads)
	s.depth = max(s.depth, o.depth+depthOffset)
}

type measurer struct {
	doc   *ast.QueryDocument
	frags map[string]*size // measured fragments; an entry with depth -1 is being measured (a cycle)
}

func (m *measurer) set(ss ast.SelectionSet) size {
	var s size
	for _, sel := range ss {
		switch x := sel.(type) {
		case *ast.Field:
			s.fields = sat(s.fields + 1)
			if x.Alias != "" && x.Alias != x.Name {
				s.aliases = sat(s.aliases + 1)
			}
			s.depth = max(s.depth, 1)
			s.add(m.set(x.SelectionSet), 1)
		case *ast.InlineFragment:
			s.add(m.set(x.SelectionSet), 0)
		case *ast.FragmentSpread:
			s.spreads = sat(s.spreads + 1)
			s.add(m.fragment(x.Name), 0)
		}
	}
	return s
}

func (m *measurer) fragment(name string) size {
	if fs, ok := m.frags[name]; ok {
		if fs.depth < 0 {
			return size{} // a cycle: validation refuses it
		}
		return *fs
	}
	fd := m.doc.Fragments.ForName(name)
	if fd == nil {
		return size{}
	}
	m.frags[name] = &size{depth: -1}
	s := m.set(fd.SelectionSet)
	m.frags[name] = &s
	return s
}

// validate checks the document against the API schema (variable values aside: they differ per
// request and are checked with them).
func (f *front) validate(doc *ast.QueryDocument) gqlerror.List {
	return validator.ValidateWithRules(f.schema, doc, f.rules)
}

// gqlparserErrors converts the front end's errors to the response's error type.
func gqlparserErrors(list gqlerror.List) []*gqlerrors.QueryError {
	out := make([]*gqlerrors.QueryError, 0, len(list))
	for _, e := range list {
		qe := &gqlerrors.QueryError{Message: e.Message, Rule: e.Rule}
		for _, l := range e.Locations {
			qe.Locations = append(qe.Locations, gqlerrors.Location{Line: l.Line, Column: l.Column})
		}
		out = append(out, qe)
	}
	return out
}

// Prepared is a request's document after the front end.
type Prepared struct {
	// Schema is the API schema, the one the front end validated against (read only).
	Schema *ast.Schema
	// Doc is the document, parsed once per text and validated: requests of the same text
	// share it, so it is read only.
	Doc *ast.QueryDocument
	// Variables are the request's variables as Doc takes them: graph-node's coercions applied
	// where the front end re-declared a variable (relax.go); else the request's own.
	Variables map[string]any
}

// Prepare runs the front end for a document executed later (a subscription, at subscribe
// time): the parse budget, validation and the cost estimate for these variables, under a
// concurrency slot and the query deadline, with the limits and metrics of Execute.
func (e *Engine) Prepare(ctx context.Context, req Request) (*Prepared, []*gqlerrors.QueryError) {
	ctx, cancel := context.WithTimeout(ctx, e.opts.QueryTimeout)
	defer cancel()
	if res := e.admit(ctx, req); res != nil {
		return nil, res.Errors
	}
	defer e.release()
	p := e.plans.get(e.front, req.Query)
	if p.refused != nil {
		return nil, e.refuse(p.refused).Errors
	}
	invalid := p.validate(e)
	if errs := e.checkVariables(p.declared(), req.OperationName, req.Variables); len(errs) > 0 {
		return nil, errs
	}
	if len(invalid) > 0 {
		return nil, gqlparserErrors(invalid)
	}
	vars, errs := e.bindVariables(p.relax, req.OperationName, req.Variables)
	if len(errs) > 0 {
		return nil, errs
	}
	if r := e.interrupted(ctx); r != nil {
		return nil, e.refuse(r).Errors
	}
	if r := e.checkCost(p.doc, req.OperationName, vars); r != nil {
		return nil, e.refuse(r).Errors
	}
	return &Prepared{Schema: e.front.schema, Doc: p.doc, Variables: vars}, nil
}

// APISchema is the API schema as the front end validates against it (read only).
func (e *Engine) APISchema() *ast.Schema { return e.front.schema }
