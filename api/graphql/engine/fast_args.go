package engine

import (
	"math"
	"strconv"

	"github.com/vektah/gqlparser/v2/ast"
)

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
