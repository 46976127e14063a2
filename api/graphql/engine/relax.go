package engine

import (
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	gqlerrors "github.com/graph-gophers/graphql-go/errors"
	"github.com/vektah/gqlparser/v2/ast"
)

// Variables used where graph-node lets them through. graph-node does not run the
// specification's validations by default (ENABLE_GRAPHQL_VALIDATIONS is off): it coerces each
// variable's value to the variable's declared type, puts the result in the argument, and
// coerces the argument to the argument's type (graphql/src/execution/query.rs, Transform;
// values/coercion.rs). So frontends written against it declare `$lastID: String` for an `ID`
// position, `$o: String` for an `orderBy` enum, or `$id: Int` for an `ID`, and get answers.
//
// Both executors here validate by the specification. For such a text the front end re-declares
// each of these variables with the type of the positions it is used in (the text is edited, so
// the executors and the subscription server all see one valid document), and each request
// checks graph-node's two coercions on its values first, refusing with graph-node's text.
// Variables used in positions of different types, in a list position of another shape, or in a
// directive keep the specification's refusal.

// relaxation is how a text's variables are re-declared.
type relaxation struct {
	// orig is the document as sent (validated, so its fields and values know their
	// definitions): the declared types, and the positions errors are reported at.
	orig *ast.QueryDocument
	// to maps each re-declared variable (of orig) to the type it is declared with now.
	to    map[*ast.VariableDefinition]*ast.Type
	edits []textEdit // ascending, not overlapping
}

// textEdit replaces text[at:end] (bytes of the text as sent, on one line) with repl.
type textEdit struct {
	at, end   int
	repl      string
	line, col int // where at is, counted as graphql-go counts (col: runes from 1)
}

// gnEnum is an enum value after graph-node's coercion (it reports it as Enum("x")).
type gnEnum string

// relax returns the re-declarations that make the validated document doc (of text) valid the
// way graph-node takes it; nil when there is none.
func (e *Engine) relax(text string, doc *ast.QueryDocument) *relaxation {
	r := &relaxation{orig: doc, to: map[*ast.VariableDefinition]*ast.Type{}}
	offs := newOffsets(text)
	for _, op := range doc.Operations {
		uses := map[*ast.VariableDefinition][]*ast.Type{}
		bad := map[*ast.VariableDefinition]bool{}
		walkArguments(doc, op, func(_ *ast.Field, _ *ast.Argument, v *ast.Value, inDirective bool) {
			d := op.VariableDefinitions.ForName(v.Raw)
			if d == nil {
				return
			}
			if inDirective || v.ExpectedType == nil {
				bad[d] = true
				return
			}
			uses[d] = append(uses[d], v.ExpectedType)
		})
		for _, d := range op.VariableDefinitions {
			ts := uses[d]
			if bad[d] || len(ts) == 0 || d.Type == nil {
				continue
			}
			allowed := true
			for _, t := range ts {
				allowed = allowed && allowedIn(d, t)
			}
			if allowed {
				continue
			}
			to := e.redeclare(d, ts)
			if to == nil {
				continue
			}
			edits := declarationEdits(text, offs, d, to, e.front.schema)
			if edits == nil {
				continue
			}
			r.to[d] = to
			r.edits = append(r.edits, edits...)
		}
	}
	if len(r.to) == 0 {
		return nil
	}
	sort.Slice(r.edits, func(i, j int) bool { return r.edits[i].at < r.edits[j].at })
	return r
}

// allowedIn is the specification's rule for a variable used where t is expected.
func allowedIn(d *ast.VariableDefinition, t *ast.Type) bool {
	v := d.Type
	if t.NonNull && !v.NonNull && d.DefaultValue != nil && d.DefaultValue.Kind != ast.NullValue {
		t = &ast.Type{NamedType: t.NamedType, Elem: t.Elem} // a non-null default serves
	}
	return typeAllowed(v, t)
}

func typeAllowed(v, t *ast.Type) bool {
	if t.NonNull && !v.NonNull {
		return false
	}
	if (t.Elem == nil) != (v.Elem == nil) {
		return false
	}
	if t.Elem != nil {
		return typeAllowed(v.Elem, t.Elem)
	}
	return v.NamedType == t.NamedType
}

// redeclare returns the type d is declared with so that every use in ts is valid, or nil: the
// uses agree on the named type, the lists have d's shape, both named types are scalars or
// enums, and only the innermost level gains a `!`.
func (e *Engine) redeclare(d *ast.VariableDefinition, ts []*ast.Type) *ast.Type {
	base := func(t *ast.Type) *ast.Type {
		for t.Elem != nil {
			t = t.Elem
		}
		return t
	}
	leafKind := func(name string) bool {
		def := e.front.schema.Types[name]
		return def != nil && (def.Kind == ast.Scalar || def.Kind == ast.Enum)
	}
	name := base(ts[0]).NamedType
	if !leafKind(name) || !leafKind(base(d.Type).NamedType) {
		return nil
	}
	innerNonNull := base(d.Type).NonNull
	for _, t := range ts {
		if base(t).NamedType != name {
			return nil
		}
		v, u := d.Type, t
		for v.Elem != nil || u.Elem != nil {
			if v.Elem == nil || u.Elem == nil {
				return nil
			}
			if u.NonNull && !v.NonNull && !(v == d.Type && d.DefaultValue != nil && d.DefaultValue.Kind != ast.NullValue) {
				return nil // a list level would need a `!`
			}
			v, u = v.Elem, u.Elem
		}
		if u.NonNull && !(v == d.Type && d.DefaultValue != nil && d.DefaultValue.Kind != ast.NullValue) {
			innerNonNull = true
		}
	}
	var build func(v *ast.Type) *ast.Type
	build = func(v *ast.Type) *ast.Type {
		if v.Elem != nil {
			return &ast.Type{Elem: build(v.Elem), NonNull: v.NonNull}
		}
		return &ast.Type{NamedType: name, NonNull: innerNonNull}
	}
	return build(d.Type)
}

// declarationEdits rewrites d's named type to to's (with its `!`), and a string default to
// the enum value it names; nil when the text is not as expected.
func declarationEdits(text string, offs offsets, d *ast.VariableDefinition, to *ast.Type, s *ast.Schema) []textEdit {
	from := d.Type
	for from.Elem != nil {
		from = from.Elem
	}
	target := to
	for target.Elem != nil {
		target = target.Elem
	}
	if from.Position == nil {
		return nil
	}
	repl := target.NamedType
	if target.NonNull && !from.NonNull {
		repl += "!"
	}
	ed, ok := offs.edit(from.Position.Start, from.NamedType, repl)
	if !ok {
		return nil
	}
	out := []textEdit{ed}
	if d.DefaultValue == nil {
		return out
	}
	def := s.Types[target.NamedType]
	if def == nil || def.Kind != ast.Enum {
		return out
	}
	var lits func(v *ast.Value) bool
	lits = func(v *ast.Value) bool {
		switch v.Kind {
		case ast.StringValue:
			if def.EnumValues.ForName(v.Raw) == nil || v.Position == nil {
				return false
			}
			ed, ok := offs.edit(v.Position.Start, strconv.Quote(v.Raw), v.Raw)
			if !ok {
				return false
			}
			out = append(out, ed)
		case ast.ListValue:
			for _, c := range v.Children {
				if !lits(c.Value) {
					return false
				}
			}
		}
		return true
	}
	if !lits(d.DefaultValue) {
		return nil
	}
	return out
}

// offsets converts gqlparser's rune positions to byte offsets and graphql-go's columns.
type offsets struct {
	text  string
	ascii bool
}

func newOffsets(text string) offsets {
	ascii := true
	for i := 0; i < len(text); i++ {
		if text[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	return offsets{text: text, ascii: ascii}
}

func (o offsets) byteAt(runes int) int {
	if o.ascii {
		return runes
	}
	n := 0
	for i := range o.text {
		if n == runes {
			return i
		}
		n++
	}
	if n == runes {
		return len(o.text)
	}
	return -1
}

// edit replaces old, found at rune position start, with repl.
func (o offsets) edit(start int, old, repl string) (textEdit, bool) {
	at := o.byteAt(start)
	if at < 0 || at+len(old) > len(o.text) || o.text[at:at+len(old)] != old || strings.ContainsAny(old+repl, "\r\n") {
		return textEdit{}, false
	}
	lineStart := strings.LastIndexByte(o.text[:at], '\n') + 1
	return textEdit{
		at: at, end: at + len(old), repl: repl,
		line: 1 + strings.Count(o.text[:at], "\n"),
		col:  1 + utf8.RuneCountInString(o.text[lineStart:at]),
	}, true
}

// apply returns text (the text as sent, or a same-length variant of it) with the edits made.
func (r *relaxation) apply(text string) string {
	var b strings.Builder
	b.Grow(len(text) + 16*len(r.edits))
	last := 0
	for _, ed := range r.edits {
		b.WriteString(text[last:ed.at])
		b.WriteString(ed.repl)
		last = ed.end
	}
	b.WriteString(text[last:])
	return b.String()
}

// locate moves the locations of graphql-go's errors on the edited text back to the text as
// sent (edits stay within a line, so only columns move).
func (r *relaxation) locate(errs []*gqlerrors.QueryError) {
	for _, qe := range errs {
		for i, l := range qe.Locations {
			shift := 0
			for _, ed := range r.edits {
				if ed.line != l.Line {
					continue
				}
				start := ed.col + shift
				if l.Column < start {
					break
				}
				repl, old := utf8.RuneCountInString(ed.repl), ed.end-ed.at
				if l.Column < start+repl {
					shift = l.Column - ed.col // inside the edit: its start
					break
				}
				shift += repl - old
			}
			qe.Locations[i].Column = l.Column - shift
		}
	}
}

// walkArguments calls f for each variable in the arguments of op's fields (fragments
// expanded, each once) and of their directives, in document order.
func walkArguments(doc *ast.QueryDocument, op *ast.OperationDefinition, f func(fld *ast.Field, a *ast.Argument, v *ast.Value, inDirective bool)) {
	seen := map[string]bool{}
	var value func(fld *ast.Field, a *ast.Argument, v *ast.Value, dir bool, depth int)
	value = func(fld *ast.Field, a *ast.Argument, v *ast.Value, dir bool, depth int) {
		if v == nil || depth > maxValueDepth {
			return
		}
		if v.Kind == ast.Variable {
			f(fld, a, v, dir)
		}
		for _, c := range v.Children {
			value(fld, a, c.Value, dir, depth+1)
		}
	}
	directives := func(fld *ast.Field, ds ast.DirectiveList) {
		for _, d := range ds {
			for _, a := range d.Arguments {
				value(fld, a, a.Value, true, 0)
			}
		}
	}
	var set func(ss ast.SelectionSet)
	set = func(ss ast.SelectionSet) {
		for _, sel := range ss {
			switch x := sel.(type) {
			case *ast.Field:
				for _, a := range x.Arguments {
					value(x, a, a.Value, false, 0)
				}
				directives(x, x.Directives)
				set(x.SelectionSet)
			case *ast.InlineFragment:
				directives(nil, x.Directives)
				set(x.SelectionSet)
			case *ast.FragmentSpread:
				directives(nil, x.Directives)
				if fd := doc.Fragments.ForName(x.Name); fd != nil && !seen[x.Name] {
					seen[x.Name] = true
					directives(nil, fd.Directives)
					set(fd.SelectionSet)
				}
			}
		}
	}
	for _, v := range op.VariableDefinitions {
		directives(nil, v.Directives)
	}
	directives(nil, op.Directives)
	set(op.SelectionSet)
}

// bindVariables applies graph-node's coercions to a request's variables on a relaxed text:
// each value to its declared type (checkVariables has checked that), then each argument that
// uses a re-declared variable to the argument's type. It returns the variables as the
// re-declared document takes them, or graph-node's errors for the first field whose arguments
// do not coerce.
func (e *Engine) bindVariables(r *relaxation, opName string, vars map[string]any) (map[string]any, []*gqlerrors.QueryError) {
	if r == nil {
		return vars, nil
	}
	op := operation(r.orig, opName)
	if op == nil {
		return vars, nil
	}
	relaxed := false
	coerced := make(map[string]any, len(op.VariableDefinitions))
	for _, d := range op.VariableDefinitions {
		if r.to[d] != nil {
			relaxed = true
		}
		v, given := vars[d.Variable]
		if !given {
			if d.DefaultValue == nil {
				continue
			}
			v = literal(d.DefaultValue, 0)
		}
		if c, _, ok := e.coerceValue(v, d.Type, 0); ok {
			coerced[d.Variable] = c
		}
	}
	if !relaxed {
		return vars, nil
	}
	// Each argument of each field that uses a re-declared variable, once.
	var errs []*gqlerrors.QueryError
	var failed *ast.Field
	checked := map[*ast.Argument]bool{}
	walkArguments(r.orig, op, func(fld *ast.Field, a *ast.Argument, v *ast.Value, dir bool) {
		if dir || fld == nil || checked[a] || (failed != nil && failed != fld) {
			return
		}
		d := op.VariableDefinitions.ForName(v.Raw)
		if d == nil || r.to[d] == nil || fld.Definition == nil {
			return
		}
		checked[a] = true
		ad := fld.Definition.Arguments.ForName(a.Name)
		if ad == nil {
			return
		}
		val := interpolate(a.Value, coerced, 0)
		if _, bad, ok := e.coerceValue(val, ad.Type, 0); !ok {
			failed = fld
			qe := &gqlerrors.QueryError{Message: "Invalid value provided for argument `" + a.Name + "`: " + debugValue(bad)}
			if a.Position != nil {
				qe.Locations = []gqlerrors.Location{{Line: a.Position.Line, Column: a.Position.Column}}
			}
			errs = append(errs, qe)
		}
	})
	if len(errs) > 0 {
		return nil, errs
	}
	out := make(map[string]any, len(vars))
	for k, v := range vars {
		out[k] = v
	}
	for _, d := range op.VariableDefinitions {
		to := r.to[d]
		c, given := coerced[d.Variable]
		if to == nil || !given {
			continue
		}
		if _, inVars := vars[d.Variable]; !inVars {
			continue // the default, re-declared in the text, serves
		}
		if v, _, ok := e.coerceValue(c, to, 0); ok {
			out[d.Variable] = plain(v)
		}
	}
	return out, nil
}

// coerceValue is graph-node's coerce_value: the value v coerced to t, or the value it reports
// (the element of a list, the whole of an input object).
func (e *Engine) coerceValue(v any, t *ast.Type, depth int) (out any, bad any, ok bool) {
	if depth > maxValueDepth {
		return nil, v, false
	}
	if v == nil {
		return nil, nil, !t.NonNull
	}
	if t.Elem != nil {
		l, isList := v.([]any)
		if !isList {
			return nil, v, false
		}
		res := make([]any, len(l))
		for i, x := range l {
			c, b, ok := e.coerceValue(x, t.Elem, depth+1)
			if !ok {
				return nil, b, false
			}
			res[i] = c
		}
		return res, nil, true
	}
	def := e.front.schema.Types[t.NamedType]
	if def == nil {
		return nil, v, false
	}
	switch def.Kind {
	case ast.Enum:
		var name string
		switch x := v.(type) {
		case string:
			name = x
		case gnEnum:
			name = string(x)
		default:
			return nil, v, false
		}
		if def.EnumValues.ForName(name) == nil {
			return nil, v, false
		}
		return gnEnum(name), nil, true
	case ast.InputObject:
		m, isObj := v.(map[string]any)
		if !isObj {
			return nil, v, false
		}
		res := make(map[string]any, len(m))
		for k, x := range m {
			f := def.Fields.ForName(k)
			if f == nil {
				return nil, v, false
			}
			c, _, ok := e.coerceValue(x, f.Type, depth+1)
			if !ok {
				return nil, v, false
			}
			res[k] = c
		}
		return res, nil, true
	case ast.Scalar:
		if c, ok := coerceScalar(def.Name, v); ok {
			return c, nil, true
		}
		return nil, v, false
	}
	return nil, v, false
}

// coerceScalar is graph-node's scalar coercion (JSON numbers are float64): what scalarTakes
// accepts, with an Int in an ID, BigInt or BigDecimal and a Float in a BigDecimal made strings.
func coerceScalar(scalar string, v any) (any, bool) {
	if _, isEnum := v.(gnEnum); isEnum {
		return nil, false
	}
	if !scalarTakes(scalar, v) {
		return nil, false
	}
	n, isNumber := number(v)
	if !isNumber {
		return v, true
	}
	switch scalar {
	case "ID", "BigInt", "BigDecimal":
		if n == math.Trunc(n) && math.Abs(n) < 1<<63 {
			return strconv.FormatInt(int64(n), 10), true
		}
		if scalar == "BigDecimal" {
			return strconv.FormatFloat(n, 'f', -1, 64), true
		}
		return nil, false
	}
	return v, true
}

// interpolate is an argument's value with the (coerced) variables put in; an absent variable
// is null, as graph-node has it.
func interpolate(v *ast.Value, vars map[string]any, depth int) any {
	if v == nil || depth > maxValueDepth {
		return nil
	}
	switch v.Kind {
	case ast.Variable:
		return vars[v.Raw]
	case ast.ListValue:
		l := make([]any, len(v.Children))
		for i, c := range v.Children {
			l[i] = interpolate(c.Value, vars, depth+1)
		}
		return l
	case ast.ObjectValue:
		m := make(map[string]any, len(v.Children))
		for _, c := range v.Children {
			m[c.Name] = interpolate(c.Value, vars, depth+1)
		}
		return m
	}
	return literal(v, depth)
}

// literal is a constant value as a JSON-like Go value (an enum as gnEnum).
func literal(v *ast.Value, depth int) any {
	if v == nil || depth > maxValueDepth {
		return nil
	}
	switch v.Kind {
	case ast.IntValue, ast.FloatValue:
		f, err := strconv.ParseFloat(v.Raw, 64)
		if err != nil {
			return v.Raw
		}
		return f
	case ast.StringValue, ast.BlockValue:
		return v.Raw
	case ast.BooleanValue:
		return v.Raw == "true"
	case ast.EnumValue:
		return gnEnum(v.Raw)
	case ast.ListValue, ast.ObjectValue:
		return interpolate(v, nil, depth)
	}
	return nil
}

// plain turns a coerced value back into a JSON variable value.
func plain(v any) any {
	switch x := v.(type) {
	case gnEnum:
		return string(x)
	case []any:
		out := make([]any, len(x))
		for i, y := range x {
			out[i] = plain(y)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, y := range x {
			out[k] = plain(y)
		}
		return out
	}
	return v
}
