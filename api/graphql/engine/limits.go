package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	gqlerrors "github.com/graph-gophers/graphql-go/errors"
	"github.com/vektah/gqlparser/v2/ast"
)

// Limits on the work of one request while and after it runs: the cost estimate, the deadline
// and the client going away, the size of the answer and of its error list. Each refusal is
// one GraphQL error (graph-node's wording where it has one) and one count of
// echain_indexer_graphql_refusals_total{reason}.

// refuse answers a request with a limit's single error.
func (e *Engine) refuse(r *refusal) *Result {
	e.met.refusals.WithLabelValues(r.reason).Inc()
	return &Result{Errors: []*gqlerrors.QueryError{queryError(r.err)}}
}

// interrupted is the refusal of a request whose deadline passed or whose client went away.
func (e *Engine) interrupted(ctx context.Context) *refusal {
	switch err := ctx.Err(); {
	case err == nil:
		return nil
	case errors.Is(err, context.DeadlineExceeded):
		return &refusal{reasonTimeout, errorf(codeLimitQueryTime,
			"Query timed out: it ran longer than %s (limit query_timeout)", e.opts.QueryTimeout)}
	default:
		return &refusal{reasonCanceled, errorf(codeCanceled, "the request was canceled: the client went away")}
	}
}

func responseTooBig(n, limit int) *refusal {
	return &refusal{reasonResponseSize, errorf(codeLimitRespSize,
		"the result size of %d is larger than the allowed limit of %d (limit max_response_bytes): use `first` to return smaller collections", n, limit)}
}

// checkCost refuses an operation whose estimated cost exceeds MaxCost. The document has been
// validated, so fields know their definitions.
func (e *Engine) checkCost(doc *ast.QueryDocument, opName string, vars map[string]any) *refusal {
	if doc == nil {
		return nil
	}
	op := operation(doc, opName)
	if op == nil {
		return nil // graphql-go names the problem
	}
	c := coster{doc: doc, op: op, vars: vars, maxFirst: e.opts.MaxFirst, frags: map[string]float64{}, intro: e.front.introRows}
	cost := c.set(op.SelectionSet)
	if cost > float64(e.opts.MaxCost) {
		return &refusal{reasonCost, errorf(codeLimitCost,
			"query potentially returns `%s` field values or more and thereby exceeds the limit of `%d` (limit max_cost). "+
				"Possible solutions are reducing the depth of the query, querying fewer relationships or using `first` to return smaller collections",
			costText(cost), e.opts.MaxCost)}
	}
	return nil
}

func costText(c float64) string {
	if c >= 1e15 {
		return fmt.Sprintf("%.3g", c)
	}
	return fmt.Sprintf("%.0f", c)
}

// coster estimates the field values an operation can produce: each field counts once per row
// of the lists around it, a list's rows being its `first` (or that argument's default). Its
// cost per parent row is the same wherever a fragment is spread, so each fragment is priced
// once: linear in the document.
type coster struct {
	doc      *ast.QueryDocument
	op       *ast.OperationDefinition
	vars     map[string]any
	maxFirst int
	frags    map[string]float64 // priced fragments; NaN while being priced (a cycle)
	intro    map[string]float64 // front.introRows
}

func (c *coster) set(ss ast.SelectionSet) float64 {
	var cost float64
	for _, sel := range ss {
		switch x := sel.(type) {
		case *ast.Field:
			cost += 1 + c.rows(x)*c.set(x.SelectionSet)
		case *ast.InlineFragment:
			cost += c.set(x.SelectionSet)
		case *ast.FragmentSpread:
			cost += c.fragment(x.Name)
		}
	}
	return min(cost, math.MaxFloat64/1e6) // stays finite through multiplications
}

func (c *coster) fragment(name string) float64 {
	if v, ok := c.frags[name]; ok {
		if math.IsNaN(v) {
			return 0
		}
		return v
	}
	fd := c.doc.Fragments.ForName(name)
	if fd == nil {
		return 0
	}
	c.frags[name] = math.NaN()
	v := c.set(fd.SelectionSet)
	c.frags[name] = v
	return v
}

// rows is how many rows a field's selection is produced for, per row of its parent.
func (c *coster) rows(f *ast.Field) float64 {
	if f.Definition == nil || f.Definition.Type == nil || f.Definition.Type.Elem == nil {
		return 1
	}
	if f.ObjectDefinition != nil && strings.HasPrefix(f.ObjectDefinition.Name, "__") {
		// An introspection list is as long as the schema makes it, whatever max_first says:
		// GraphiQL's own introspection query must pass, a deep one must not.
		if n, ok := c.intro[f.Name]; ok {
			return n
		}
		return float64(c.maxFirst)
	}
	n := -1.0
	if a := f.Arguments.ForName("first"); a != nil {
		n = c.number(a.Value)
	}
	if n < 0 {
		if d := f.Definition.Arguments.ForName("first"); d != nil && d.DefaultValue != nil {
			n = c.number(d.DefaultValue)
		}
	}
	if n < 0 {
		n = float64(c.maxFirst) // a list without `first`: as long as any
	}
	// Above max_first the query is refused when it runs; price what it may read.
	return min(n, float64(c.maxFirst))
}

// number is an Int argument's value; -1 when unknown.
func (c *coster) number(v *ast.Value) float64 {
	if v == nil {
		return -1
	}
	switch v.Kind {
	case ast.IntValue:
		var n float64
		if _, err := fmt.Sscan(v.Raw, &n); err == nil {
			return max(n, 0)
		}
	case ast.Variable:
		if x, ok := c.vars[v.Raw]; ok {
			switch n := x.(type) {
			case float64:
				return max(n, 0)
			case int:
				return max(float64(n), 0)
			case int32:
				return max(float64(n), 0)
			case int64:
				return max(float64(n), 0)
			}
			return -1
		}
		if d := c.op.VariableDefinitions.ForName(v.Raw); d != nil && d.DefaultValue != nil {
			return c.number(d.DefaultValue)
		}
	}
	return -1
}

// capErrors merges errors with the same message and code (a failing nested field fails the
// same way for every row) and keeps at most limit of them, saying how many were left out.
func capErrors(errs []*gqlerrors.QueryError, limit int) []*gqlerrors.QueryError {
	if len(errs) <= 1 {
		return errs
	}
	type key struct{ msg, code string }
	seen := make(map[key]int, len(errs))
	out := make([]*gqlerrors.QueryError, 0, min(len(errs), limit+1))
	dropped := 0
	first := make(map[key]int, len(errs)) // index in out of the error kept for a key
	for _, qe := range errs {
		k := key{qe.Message, codeOf(qe)}
		if _, ok := seen[k]; ok {
			seen[k]++
			// graphql-go resolves in parallel: keep the first path in document order, so the
			// answer does not depend on which row failed first.
			if i, kept := first[k]; kept && pathLess(qe.Path, out[i].Path) {
				out[i] = qe
			}
			continue
		}
		seen[k] = 1
		if len(out) >= limit {
			dropped++
			continue
		}
		first[k] = len(out)
		out = append(out, qe)
	}
	merged := 0
	for _, n := range seen {
		merged += n - 1
	}
	if merged == 0 && dropped == 0 {
		return errs
	}
	var parts []string
	if merged > 0 {
		parts = append(parts, fmt.Sprintf("%d repeated errors (same message, other paths) were merged into the first of each", merged))
	}
	if dropped > 0 {
		parts = append(parts, fmt.Sprintf("%d further distinct errors were left out (limit max_errors = %d)", dropped, limit))
	}
	return append(out, queryError(errorf(codeErrorsCapped, "%s", strings.Join(parts, "; "))))
}

// pathLess orders response paths: keys by name, list indexes by number.
func pathLess(a, b []any) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		switch x := a[i].(type) {
		case int:
			if y, ok := b[i].(int); ok && x != y {
				return x < y
			}
		case string:
			if y, ok := b[i].(string); ok && x != y {
				return x < y
			}
		}
	}
	return len(a) < len(b)
}
