package engine

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"

	gqlerrors "github.com/graph-gophers/graphql-go/errors"
	"github.com/vektah/gqlparser/v2/ast"
)

// Variable values, refused where graph-node refuses them and with its texts. graph-node does
// not validate a document by default but coerces every variable's value to the variable's
// declared type first (graphql/src/execution/query.rs, coerce_variables; values/coercion.rs):
//   - a variable whose type is not an input type: "Variable `x` must have an input type";
//   - a non-null variable without a value or default: "No value provided for required variable `x`";
//   - a value its declared type does not take: "Invalid value provided for argument `x`: String(\"5\")".
// Its coercions are narrower than the specification's in one place (a single value is not a
// list) and wider in others (an Int is an ID or a BigInt); the position check against the
// argument's type is the front end's validation, relaxed where graph-node accepts more
// (relax.go).

// checkVariables returns graph-node's errors for the operation's variable values; nil when they
// are fine or the operation cannot be chosen (execution says why).
func (e *Engine) checkVariables(doc *ast.QueryDocument, opName string, vars map[string]any) []*gqlerrors.QueryError {
	if doc == nil {
		return nil
	}
	op := operation(doc, opName)
	if op == nil {
		return nil
	}
	var out []*gqlerrors.QueryError
	fail := func(d *ast.VariableDefinition, msg string, args ...any) {
		qe := &gqlerrors.QueryError{Message: fmt.Sprintf(msg, args...)}
		if d.Position != nil {
			qe.Locations = []gqlerrors.Location{{Line: d.Position.Line, Column: d.Position.Column}}
		}
		out = append(out, qe)
	}
	for _, d := range op.VariableDefinitions {
		if !e.inputType(d.Type) {
			fail(d, "Variable `%s` must have an input type", d.Variable)
			continue
		}
		v, given := vars[d.Variable]
		if !given {
			if d.Type.NonNull && d.DefaultValue == nil {
				fail(d, "No value provided for required variable `%s`", d.Variable)
			}
			continue
		}
		if !e.coercible(v, d.Type, 0) {
			fail(d, "Invalid value provided for argument `%s`: %s", d.Variable, debugValue(v))
		}
	}
	return out
}

func (e *Engine) inputType(t *ast.Type) bool {
	for t.Elem != nil {
		t = t.Elem
	}
	def := e.front.schema.Types[t.NamedType]
	return def != nil && (def.Kind == ast.Scalar || def.Kind == ast.Enum || def.Kind == ast.InputObject)
}

// maxValueDepth bounds the recursion over a variable's JSON value (the body size bounds its width).
const maxValueDepth = 64

// coercible is graph-node's coerce_value for a JSON variable value and a declared type.
func (e *Engine) coercible(v any, t *ast.Type, depth int) bool {
	_, _, ok := e.coerceValue(v, t, depth)
	return ok
}

// scalarTakes is graph-node's scalar coercion of a variable value (JSON numbers are float64).
func scalarTakes(scalar string, v any) bool {
	_, isString := v.(string)
	n, isNumber := number(v)
	integral := isNumber && n == math.Trunc(n) && !math.IsInf(n, 0)
	switch scalar {
	case "Boolean":
		_, ok := v.(bool)
		return ok
	case "String", "Bytes":
		return isString
	case "ID", "BigInt", "Int8", "Timestamp":
		return isString || integral
	case "BigDecimal":
		return isString || isNumber
	case "Int":
		return integral && n >= math.MinInt32 && n <= math.MaxInt32
	case "Float":
		return isNumber
	}
	return true // a scalar graph-node does not know: its resolver decides
}

// number reads a JSON number: float64 from encoding/json, Go integers from callers in Go.
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int32:
		return float64(x), true
	case int64:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}

// debugValue renders a value the way graph-node's errors show it (Rust's Debug of its Value).
func debugValue(v any) string {
	if n, ok := number(v); ok {
		v = n
	}
	switch x := v.(type) {
	case nil:
		return "Null"
	case string:
		return "String(" + strconv.Quote(x) + ")"
	case gnEnum:
		return "Enum(" + strconv.Quote(string(x)) + ")"
	case bool:
		return fmt.Sprintf("Boolean(%t)", x)
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return fmt.Sprintf("Int(%d)", int64(x))
		}
		return "Float(" + strconv.FormatFloat(x, 'g', -1, 64) + ")"
	case []any:
		s := "List(["
		for i, y := range x {
			if i > 0 {
				s += ", "
			}
			s += debugValue(y)
		}
		return s + "])"
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		s := "Object({"
		for i, k := range keys {
			if i > 0 {
				s += ", "
			}
			s += strconv.Quote(k) + ": " + debugValue(x[k])
		}
		return s + "})"
	}
	b, _ := json.Marshal(v)
	return string(b)
}
