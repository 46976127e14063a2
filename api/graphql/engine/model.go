package engine

import (
	"fmt"
	"strings"

	"github.com/echain/echain-indexer/schema"
	"github.com/echain/echain-indexer/store/ddl"
)

// op is a filter operator: the suffix of a filter key (field_gt) or the nested filter (field_).
type op int

const (
	opEq op = iota
	opNot
	opGt
	opLt
	opGte
	opLte
	opIn
	opNotIn
	opContains
	opContainsNocase
	opNotContains
	opNotContainsNocase
	opStartsWith
	opStartsWithNocase
	opNotStartsWith
	opNotStartsWithNocase
	opEndsWith
	opEndsWithNocase
	opNotEndsWith
	opNotEndsWithNocase
	opNested // field_: { ... }
)

var opSuffix = map[op]string{
	opEq: "", opNot: "_not", opGt: "_gt", opLt: "_lt", opGte: "_gte", opLte: "_lte", opIn: "_in", opNotIn: "_not_in",
	opContains: "_contains", opContainsNocase: "_contains_nocase", opNotContains: "_not_contains",
	opNotContainsNocase: "_not_contains_nocase", opStartsWith: "_starts_with", opStartsWithNocase: "_starts_with_nocase",
	opNotStartsWith: "_not_starts_with", opNotStartsWithNocase: "_not_starts_with_nocase", opEndsWith: "_ends_with",
	opEndsWithNocase: "_ends_with_nocase", opNotEndsWith: "_not_ends_with", opNotEndsWithNocase: "_not_ends_with_nocase",
	opNested: "_",
}

// The operator sets per field type, in the order graph-node lists them.
var (
	comparisonOps = []op{opEq, opNot, opGt, opLt, opGte, opLte, opIn, opNotIn}
	stringOps     = []op{opEq, opNot, opGt, opLt, opGte, opLte, opIn, opNotIn,
		opContains, opContainsNocase, opNotContains, opNotContainsNocase,
		opStartsWith, opStartsWithNocase, opNotStartsWith, opNotStartsWithNocase,
		opEndsWith, opEndsWithNocase, opNotEndsWith, opNotEndsWithNocase}
	bytesOps     = []op{opEq, opNot, opGt, opLt, opGte, opLte, opIn, opNotIn, opContains, opNotContains}
	boolOps      = []op{opEq, opNot, opIn, opNotIn}
	listOps      = []op{opEq, opNot, opContains, opNotContains}
	listTextOps  = []op{opEq, opNot, opContains, opContainsNocase, opNotContains, opNotContainsNocase}
	derivedOnlyN = []op{opNested}
)

// fieldOps returns the filter operators The Graph generates for a field.
func fieldOps(f *schema.Field) []op {
	switch {
	case f.DerivedFrom != "":
		return derivedOnlyN
	case f.List:
		if f.Kind == schema.KindString || f.Kind == schema.KindID {
			return listTextOps
		}
		return listOps
	case f.Kind == schema.KindEntity:
		return append(append([]op{}, stringOps...), opNested)
	case f.Kind == schema.KindString:
		return stringOps
	case f.Kind == schema.KindBytes:
		return bytesOps
	case f.Kind == schema.KindBoolean:
		return boolOps
	default: // ID, Int, Int8, BigInt, BigDecimal, Timestamp
		return comparisonOps
	}
}

// filterKey is what one key of a Foo_filter input means.
type filterKey struct {
	field *schema.Field
	col   int // index in Columns, -1 for derived fields
	op    op
}

// orderKey is one value of a Foo_orderBy enum.
type orderKey struct {
	field *schema.Field // the field of this type
	col   int           // its column, -1 when derived
	child *schema.Field // for parent__child: the field of the referenced type
	ccol  int
}

// entity is an entity type with everything the executor derives from it once.
type entity struct {
	*schema.EntityType
	index      int
	table      string    // quoted, schema-qualified
	all        *loadCols // every column
	derived    map[int]*derivedInfo
	filterKeys map[string]filterKey
	orderKeys  map[string]orderKey
	orderNames []string
}

type derivedInfo struct {
	field  *schema.Field
	target *entity
	back   int // column of the target that points here
}

// model is the entity schema prepared for serving.
type model struct {
	sch    *schema.Schema
	types  []*entity
	byName map[string]*entity
}

func newModel(sch *schema.Schema) (*model, error) {
	m := &model{sch: sch, byName: map[string]*entity{}}
	for i, t := range sch.Types {
		e := &entity{EntityType: t, index: i, table: ddl.TableName(t),
			derived: map[int]*derivedInfo{}, filterKeys: map[string]filterKey{}, orderKeys: map[string]orderKey{}}
		cols := make([]int, len(t.Columns))
		for i := range cols {
			cols[i] = i
		}
		e.all = newLoadCols(e, cols)
		m.types = append(m.types, e)
		m.byName[t.Name] = e
	}
	for _, e := range m.types {
		for fi, f := range e.Fields {
			col := e.ColumnIndex(f.Name)
			if f.DerivedFrom != "" {
				target := m.byName[f.Ref]
				back := target.ColumnIndex(f.DerivedFrom)
				if back < 0 {
					return nil, fmt.Errorf("field %s.%s: derived from missing column %s.%s", e.Name, f.Name, f.Ref, f.DerivedFrom)
				}
				e.derived[fi] = &derivedInfo{field: f, target: target, back: back}
			}
			for _, o := range fieldOps(f) {
				e.filterKeys[f.Name+opSuffix[o]] = filterKey{field: f, col: col, op: o}
			}
			e.orderKeys[f.Name] = orderKey{field: f, col: col}
			e.orderNames = append(e.orderNames, f.Name)
			if f.Kind == schema.KindEntity && !f.List && f.DerivedFrom == "" {
				child := m.byName[f.Ref]
				for _, cf := range child.Fields {
					if cf.List || cf.DerivedFrom != "" {
						continue
					}
					name := f.Name + "__" + cf.Name
					e.orderKeys[name] = orderKey{field: f, col: col, child: cf, ccol: child.ColumnIndex(cf.Name)}
					e.orderNames = append(e.orderNames, name)
				}
			}
		}
	}
	return m, nil
}

// selectExpr is how a column is read: numerics as text (they are sent as decimal strings and
// must not pass through floats), lists as JSON text.
func selectExpr(alias string, f *schema.Field) string {
	c := alias + "." + ddl.Quote(f.Column)
	switch {
	case f.List:
		return "to_json(" + c + ")::text"
	case f.Kind == schema.KindBigInt || f.Kind == schema.KindBigDecimal:
		return c + "::text"
	}
	return c
}

// SDL renders the query API of The Graph's dialect for the entity schema. defaultFirst is the
// default of every `first` argument.
func SDL(sch *schema.Schema, defaultFirst int) (string, error) {
	m, err := newModel(sch)
	if err != nil {
		return "", err
	}
	return m.sdl(defaultFirst), nil
}

func (m *model) sdl(defaultFirst int) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w(`schema { query: Query subscription: Subscription }

"Arbitrary precision integer, sent as a decimal string."
scalar BigInt
"Arbitrary precision decimal, sent as a decimal string."
scalar BigDecimal
"Byte string, sent as lowercase 0x hex."
scalar Bytes
"64-bit integer, sent as a decimal string."
scalar Int8
"Microseconds since the epoch, sent as a decimal string."
scalar Timestamp

enum OrderDirection { asc desc }

enum _SubgraphErrorPolicy_ {
  "Data will be returned even if the indexer has indexing errors."
  allow
  "If the indexer has indexing errors, data will be omitted."
  deny
}

"Selects the state of a block: by hash, by number, or the latest state once the indexer has reached number_gte."
input Block_height {
  hash: Bytes
  number: Int
  number_gte: Int
}

input BlockChangedFilter {
  number_gte: Int!
}

type _Block_ {
  "The hash of the block; null when the indexer no longer keeps it."
  hash: Bytes
  "The block number."
  number: Int!
  "Integer representation of the timestamp stored in blocks for the chain."
  timestamp: Int
  "The hash of the parent block."
  parentHash: Bytes
}

"The type for the top-level _meta field."
type _Meta_ {
  "Information about a specific block: the latest indexed block, or the one asked for with block:."
  block: _Block_!
  "The deployment name."
  deployment: String!
  "True if the indexer encountered indexing errors at some past block."
  hasIndexingErrors: Boolean!
}

`)
	listArgs := func(t string, top bool) string {
		s := fmt.Sprintf("skip: Int = 0, first: Int = %d, orderBy: %s_orderBy, orderDirection: OrderDirection, where: %s_filter", defaultFirst, t, t)
		if top {
			s += ", block: Block_height, subgraphError: _SubgraphErrorPolicy_! = deny"
		}
		return s
	}
	// Subscription has Query's fields: a subscription re-runs its selection as a query at each
	// block the indexer commits.
	for _, root := range []string{"Query", "Subscription"} {
		w("type %s {\n", root)
		for _, e := range m.types {
			w("  %s(id: ID!, block: Block_height, subgraphError: _SubgraphErrorPolicy_! = deny): %s\n", e.Single, e.Name)
			w("  %s(%s): [%s!]!\n", e.Plural, listArgs(e.Name, true), e.Name)
		}
		w("  \"Access to indexer metadata.\"\n  _meta(block: Block_height): _Meta_\n}\n\n")
	}

	for _, e := range m.types {
		if e.Description != "" {
			w("%s\n", quoteDesc(e.Description))
		}
		w("type %s {\n", e.Name)
		for _, f := range e.Fields {
			if f.Description != "" {
				w("  %s\n", quoteDesc(f.Description))
			}
			if f.DerivedFrom != "" {
				w("  %s(%s): %s\n", f.Name, listArgs(f.Ref, false), f.GraphQLType())
				continue
			}
			w("  %s: %s\n", f.Name, f.GraphQLType())
		}
		w("}\n\n")

		w("input %s_filter {\n", e.Name)
		for _, f := range e.Fields {
			for _, o := range fieldOps(f) {
				w("  %s%s: %s\n", f.Name, opSuffix[o], filterInputType(f, o))
			}
		}
		w("  \"Filter for the block changed event.\"\n  _change_block: BlockChangedFilter\n")
		w("  and: [%s_filter]\n  or: [%s_filter]\n}\n\n", e.Name, e.Name)

		w("enum %s_orderBy {\n", e.Name)
		for _, n := range e.orderNames {
			w("  %s\n", n)
		}
		w("}\n\n")
	}
	return b.String()
}

// filterInputType is the GraphQL type of one filter input field.
func filterInputType(f *schema.Field, o op) string {
	if o == opNested {
		return f.Ref + "_filter"
	}
	scalar := f.Kind.String()
	if f.Kind == schema.KindEntity {
		scalar = "String"
	}
	if f.List {
		return "[" + scalar + "!]"
	}
	if o == opIn || o == opNotIn {
		return "[" + scalar + "!]"
	}
	return scalar
}

func quoteDesc(s string) string {
	if strings.ContainsAny(s, "\"\\\n") {
		return `"""` + strings.ReplaceAll(s, `"""`, `\"""`) + `"""`
	}
	return `"` + s + `"`
}
