package engine

import (
	"sort"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/echain/echain-indexer/schema"
)

// operation is the operation a request names, or its only one; nil when there is no such
// operation (execution says why).
func operation(doc *ast.QueryDocument, opName string) *ast.OperationDefinition {
	switch {
	case opName != "":
		return doc.Operations.ForName(opName)
	case len(doc.Operations) == 1:
		return doc.Operations[0]
	}
	return nil
}

// compileFast compiles the operation, nil when it is not one the fast path serves.
func (e *Engine) compileFast(doc *ast.QueryDocument, opName string) *fastOp {
	od := operation(doc, opName)
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
