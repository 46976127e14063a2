// Package schema reads schema/schema.graphql, the single source of truth for the entities, into a
// model that the generator, the store and the GraphQL API share: entity types, their fields, the
// PostgreSQL names and types of their columns, references and derived (reverse) fields.
package schema

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
)

// SDL is the entity schema compiled into the binary.
//
//go:embed schema.graphql
var SDL string

// FileName is the name errors report for the embedded schema.
const FileName = "schema/schema.graphql"

// Kind is the scalar kind of a field, or KindEntity for a reference to another entity.
type Kind int

// The kinds The Graph's schema language allows.
const (
	KindID Kind = iota
	KindString
	KindBoolean
	KindInt
	KindInt8
	KindBigInt
	KindBigDecimal
	KindBytes
	KindTimestamp
	KindEntity
)

var kindNames = map[string]Kind{
	"ID": KindID, "String": KindString, "Boolean": KindBoolean, "Int": KindInt, "Int8": KindInt8,
	"BigInt": KindBigInt, "BigDecimal": KindBigDecimal, "Bytes": KindBytes, "Timestamp": KindTimestamp,
}

// String returns the GraphQL name of a scalar kind ("Entity" for references).
func (k Kind) String() string {
	for n, v := range kindNames {
		if v == k {
			return n
		}
	}
	return "Entity"
}

// SQLType is the PostgreSQL column type of one value of the kind. Bytes are bytea: half the size
// of hex text, compared byte-wise, and COPYed without a text round trip; the analyst views and the
// API render them as lowercase 0x hex. Timestamp is microseconds since the epoch (int8), as The
// Graph sends it.
func (k Kind) SQLType() string {
	switch k {
	case KindBoolean:
		return "boolean"
	case KindInt:
		return "int4"
	case KindInt8, KindTimestamp:
		return "int8"
	case KindBigInt, KindBigDecimal:
		return "numeric"
	case KindBytes:
		return "bytea"
	default: // ID, String, and entity references (which hold the referenced id)
		return "text"
	}
}

// Field is one field of an entity type.
type Field struct {
	Name        string // GraphQL name, e.g. ticketsSold
	Column      string // PostgreSQL column, e.g. tickets_sold (quote it: some are keywords)
	Kind        Kind
	Ref         string // referenced entity type when Kind == KindEntity
	NonNull     bool   // the field (or the list) is non-null
	List        bool   // a list of Kind (or of Ref)
	ElemNonNull bool   // list elements are non-null
	DerivedFrom string // for a derived field, the field of Ref that points back; such fields are not stored
	Index       bool   // @index: the store builds a secondary index for the field beyond its default set
	// IndexOrderBy (@index(orderBy: ["createdAt"])) names the fields that pages filtered on this
	// one are ordered by: the store builds an index (field, orderBy, id) for each, so such a
	// page walks the index instead of sorting every matching row.
	IndexOrderBy []string
	Description  string
	Line         int
}

// Stored reports whether the field has a column (derived fields are virtual).
func (f *Field) Stored() bool { return f.DerivedFrom == "" }

// SQLType is the column type, arrays included.
func (f *Field) SQLType() string {
	if f.List {
		return f.Kind.SQLType() + "[]"
	}
	return f.Kind.SQLType()
}

// EntityType is one @entity type.
type EntityType struct {
	Name        string // GraphQL type name, e.g. Ticket
	Table       string // PostgreSQL table, e.g. ticket (quote it: transaction is a keyword)
	Single      string // query field for one entity, e.g. ticket
	Plural      string // query field for a list, e.g. tickets
	Immutable   bool
	Description string
	Fields      []*Field // declaration order, id and derived fields included
	Columns     []*Field // stored fields in declaration order; Columns[0] is id
	Line        int

	byName map[string]*Field
}

// Field returns the field with the GraphQL name, or nil.
func (t *EntityType) Field(name string) *Field { return t.byName[name] }

// ColumnIndex returns the index in Columns of the stored field with that name, or -1.
func (t *EntityType) ColumnIndex(name string) int {
	for i, c := range t.Columns {
		if c.Name == name {
			return i
		}
	}
	return -1
}

// Schema is a parsed entity schema.
type Schema struct {
	Types       []*EntityType // declaration order
	Fingerprint string        // sha256 of the source; recorded by the store to refuse a changed schema
	File        string        // the file name Parse was given, for errors that name file:line
	byName      map[string]*EntityType
}

// Type returns the entity type with the GraphQL name, or nil.
func (s *Schema) Type(name string) *EntityType { return s.byName[name] }

// Load parses the embedded schema.
func Load() (*Schema, error) { return Parse(FileName, SDL) }

// Parse reads an entity schema. Errors name the file, the line and the reason.
func Parse(file, src string) (*Schema, error) {
	doc, err := parser.ParseSchema(&ast.Source{Name: file, Input: src})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	sum := sha256.Sum256([]byte(src))
	s := &Schema{Fingerprint: hex.EncodeToString(sum[:]), File: file, byName: map[string]*EntityType{}}
	fail := func(pos *ast.Position, format string, args ...any) error {
		line := 0
		if pos != nil {
			line = pos.Line
		}
		return fmt.Errorf("%s:%d: %s", file, line, fmt.Sprintf(format, args...))
	}
	for _, def := range doc.Definitions {
		if def.Kind != ast.Object {
			return nil, fail(def.Position, "%s: only entity object types are supported, not %s", def.Name, strings.ToLower(string(def.Kind)))
		}
		ent := def.Directives.ForName("entity")
		if ent == nil {
			return nil, fail(def.Position, "type %s has no @entity directive", def.Name)
		}
		if s.byName[def.Name] != nil {
			return nil, fail(def.Position, "type %s is declared twice", def.Name)
		}
		t := &EntityType{
			Name: def.Name, Table: snake(def.Name), Single: lowerFirst(def.Name), Plural: plural(lowerFirst(def.Name)),
			Description: def.Description, Line: line(def.Position), byName: map[string]*Field{},
		}
		if a := ent.Arguments.ForName("immutable"); a != nil && a.Value != nil {
			t.Immutable = a.Value.Raw == "true"
		}
		s.Types = append(s.Types, t)
		s.byName[t.Name] = t
	}
	for _, def := range doc.Definitions {
		t := s.byName[def.Name]
		for _, fd := range def.Fields {
			f, err := s.field(fd, fail)
			if err != nil {
				return nil, fmt.Errorf("type %s: %w", t.Name, err)
			}
			if t.byName[f.Name] != nil {
				return nil, fail(fd.Position, "field %s.%s is declared twice", t.Name, f.Name)
			}
			t.Fields = append(t.Fields, f)
			t.byName[f.Name] = f
			if f.Stored() {
				t.Columns = append(t.Columns, f)
			}
		}
		id := t.byName["id"]
		if id == nil || id.Kind != KindID || !id.NonNull || id.List {
			return nil, fail(def.Position, "type %s needs a field id: ID!", t.Name)
		}
		// id first: every table, row and codec relies on it.
		for i, c := range t.Columns {
			if c == id {
				copy(t.Columns[1:i+1], t.Columns[:i])
				t.Columns[0] = id
				break
			}
		}
	}
	for _, t := range s.Types {
		for _, f := range t.Fields {
			for _, by := range f.IndexOrderBy {
				o := t.byName[by]
				if !f.Stored() || f.List {
					return nil, fmt.Errorf("%s:%d: field %s.%s: @index(orderBy:) needs a stored field that is not a list", file, f.Line, t.Name, f.Name)
				}
				if o == nil || !o.Stored() || o.List || o.Kind == KindString || o == f {
					return nil, fmt.Errorf("%s:%d: field %s.%s: @index(orderBy: %q) needs another stored field of %s that is not a list or a String", file, f.Line, t.Name, f.Name, by, t.Name)
				}
			}
			if f.Kind != KindEntity {
				continue
			}
			target := s.byName[f.Ref]
			if f.DerivedFrom == "" {
				continue
			}
			back := target.byName[f.DerivedFrom]
			if back == nil || !back.Stored() || back.Kind != KindEntity || back.Ref != t.Name {
				return nil, fmt.Errorf("%s:%d: field %s.%s: @derivedFrom(field: %q) needs a stored field %s.%s that references %s",
					file, f.Line, t.Name, f.Name, f.DerivedFrom, f.Ref, f.DerivedFrom, t.Name)
			}
		}
	}
	return s, nil
}

func (s *Schema) field(fd *ast.FieldDefinition, fail func(*ast.Position, string, ...any) error) (*Field, error) {
	f := &Field{Name: fd.Name, Column: snake(fd.Name), Description: fd.Description, Line: line(fd.Position)}
	typ := fd.Type
	f.NonNull = typ.NonNull
	if typ.Elem != nil {
		f.List = true
		f.ElemNonNull = typ.Elem.NonNull
		if typ.Elem.Elem != nil {
			return nil, fail(fd.Position, "field %s: nested lists are not supported", fd.Name)
		}
		typ = typ.Elem
	}
	if k, ok := kindNames[typ.NamedType]; ok {
		f.Kind = k
	} else if s.byName[typ.NamedType] != nil {
		f.Kind = KindEntity
		f.Ref = typ.NamedType
	} else {
		return nil, fail(fd.Position, "field %s: unknown type %s", fd.Name, typ.NamedType)
	}
	if d := fd.Directives.ForName("derivedFrom"); d != nil {
		a := d.Arguments.ForName("field")
		if a == nil || a.Value == nil || a.Value.Raw == "" {
			return nil, fail(fd.Position, "field %s: @derivedFrom needs a field argument", fd.Name)
		}
		if f.Kind != KindEntity {
			return nil, fail(fd.Position, "field %s: @derivedFrom needs an entity type, not %s", fd.Name, typ.NamedType)
		}
		f.DerivedFrom = a.Value.Raw
	}
	if d := fd.Directives.ForName("index"); d != nil {
		a := d.Arguments.ForName("orderBy")
		if a == nil {
			f.Index = true
		} else {
			if a.Value == nil {
				return nil, fail(fd.Position, "field %s: @index(orderBy:) needs a field name or a list of them", fd.Name)
			}
			vals := []*ast.Value{a.Value}
			if a.Value.Kind == ast.ListValue {
				vals = nil
				for _, c := range a.Value.Children {
					vals = append(vals, c.Value)
				}
			}
			for _, v := range vals {
				if v == nil || v.Kind != ast.StringValue || v.Raw == "" {
					return nil, fail(fd.Position, "field %s: @index(orderBy:) needs a field name or a list of them", fd.Name)
				}
				f.IndexOrderBy = append(f.IndexOrderBy, v.Raw)
			}
		}
	}
	if f.Kind == KindEntity && f.List && f.DerivedFrom == "" {
		return nil, fail(fd.Position, "field %s: lists of entities must be @derivedFrom (stored entity lists are not supported)", fd.Name)
	}
	return f, nil
}

func line(p *ast.Position) int {
	if p == nil {
		return 0
	}
	return p.Line
}

// snake turns a GraphQL name into a PostgreSQL identifier: ticketsSold -> tickets_sold.
func snake(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		if unicode.IsUpper(r) {
			if i > 0 && (unicode.IsLower(rs[i-1]) || unicode.IsDigit(rs[i-1]) || (i+1 < len(rs) && unicode.IsLower(rs[i+1]))) {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(r))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	r := []rune(s)
	r[0] = unicode.ToLower(r[0])
	return string(r)
}

// plural follows the English rules graph-node's inflector applies to entity names.
func plural(s string) string {
	switch {
	case strings.HasSuffix(s, "y") && len(s) > 1 && !strings.ContainsRune("aeiou", rune(s[len(s)-2])):
		return s[:len(s)-1] + "ies"
	case strings.HasSuffix(s, "s"), strings.HasSuffix(s, "x"), strings.HasSuffix(s, "ch"), strings.HasSuffix(s, "sh"):
		return s + "es"
	}
	return s + "s"
}

// GraphQLType renders the field's type as written in the schema, e.g. [Ticket!]! or BigInt.
func (f *Field) GraphQLType() string {
	name := f.Ref
	if f.Kind != KindEntity {
		name = f.Kind.String()
	}
	if f.List {
		if f.ElemNonNull {
			name += "!"
		}
		name = "[" + name + "]"
	}
	if f.NonNull {
		name += "!"
	}
	return name
}
