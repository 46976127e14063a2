// Package ddl derives the PostgreSQL layout of the entities from the schema model: one table per
// entity type, the indexes the writer needs at once, the secondary indexes built later for the
// API, and the analyst views. The generator renders it into store/entities.gen.sql; the store
// executes the same statements, so the file is exactly what runs.
package ddl

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/echain/echain-indexer/schema"
)

// Table is the layout of one entity type.
type Table struct {
	Type *schema.EntityType
	// Name is the schema-qualified, quoted table name, e.g. entities."ticket".
	Name string
	// Create makes the table and the indexes the writer uses (primary key on vid, hash on id).
	Create []string
	// Deferred are the secondary indexes for the API, built after backfill (EnsureIndexes).
	Deferred []Index
	// View creates the analyst view and its comments (run after Create).
	View []string
}

// Index is one deferred secondary index.
type Index struct {
	Name   string // unqualified index name
	Create string // CREATE INDEX IF NOT EXISTS ... (the store adds CONCURRENTLY)
	// Replaces names the writer's index this one makes redundant: the unique btree on id does
	// every lookup the hash index did, index-only, so the hash is dropped once it exists.
	Replaces string
}

// Layout is the whole entity layout.
type Layout struct {
	Tables []*Table
	// Fingerprint identifies the table layout (tables, columns, types, the writer's indexes).
	// Descriptions, views and secondary indexes are not part of it: changing them needs no
	// re-sync (Migrate recreates the views, EnsureIndexes reconciles the indexes).
	Fingerprint string
	// Grants gives the reader role access to the views (run after every view is created).
	Grants []string
}

// Table returns the layout of the entity type, or nil.
func (l *Layout) Table(typ string) *Table {
	for _, t := range l.Tables {
		if t.Type.Name == typ {
			return t
		}
	}
	return nil
}

var reserved = map[string]bool{ColVid: true, ColBlockRange: true, ColBlock: true, ColViewBlock: true}

// Build derives the layout. Errors name the schema file and line.
func Build(s *schema.Schema) (*Layout, error) {
	l := &Layout{}
	h := sha256.New()
	tables := map[string]string{}
	indexes := map[string]string{}
	for _, t := range s.Types {
		if prev, ok := tables[t.Table]; ok {
			return nil, fmt.Errorf("%s:%d: type %s maps to table %q like type %s", s.File, t.Line, t.Name, t.Table, prev)
		}
		tables[t.Table] = t.Name
		cols := map[string]string{}
		for _, c := range t.Columns {
			if reserved[c.Column] {
				return nil, fmt.Errorf("%s:%d: field %s.%s: column %q is reserved by the store", s.File, c.Line, t.Name, c.Name, c.Column)
			}
			if prev, ok := cols[c.Column]; ok {
				return nil, fmt.Errorf("%s:%d: field %s.%s maps to column %q like field %s", s.File, c.Line, t.Name, c.Name, c.Column, prev)
			}
			cols[c.Column] = c.Name
		}
		tb := build(t)
		names := []string{IndexName(t.Table, "id", "hash")}
		for _, ix := range tb.Deferred {
			names = append(names, ix.Name)
		}
		for _, n := range names {
			if prev, ok := indexes[n]; ok {
				return nil, fmt.Errorf("%s:%d: type %s: index name %q is also used by type %s; rename a type or field", s.File, t.Line, t.Name, n, prev)
			}
			indexes[n] = t.Name
		}
		for _, q := range tb.Create {
			h.Write([]byte(q))
			h.Write([]byte{0})
		}
		l.Tables = append(l.Tables, tb)
	}
	l.Fingerprint = hex.EncodeToString(h.Sum(nil))
	l.Grants = []string{
		// The role may be missing when the migrating user cannot create roles; views still work
		// for their owner.
		fmt.Sprintf(`DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '%s') THEN GRANT SELECT ON ALL TABLES IN SCHEMA %s TO %s; END IF; END $$`,
			ReaderRole, ViewSchema, ReaderRole),
	}
	return l, nil
}

func build(t *schema.EntityType) *Table {
	name := TableName(t)
	tb := &Table{Type: t, Name: name}
	var cols []string
	sys := SystemColumns(t)
	cols = append(cols, Quote(sys[0])+" int8 NOT NULL PRIMARY KEY")
	if t.Immutable {
		cols = append(cols, Quote(sys[1])+" int4 NOT NULL")
	} else {
		cols = append(cols, Quote(sys[1])+" int4range NOT NULL")
	}
	for _, c := range t.Columns {
		col := Quote(c.Column) + " " + c.SQLType()
		if c.SQLType() == "text" || c.SQLType() == "text[]" {
			// Byte order, whatever the server's locale: ids and strings sort and compare as
			// graph-node's (which requires C) do, and btree comparisons are a memcmp.
			col += ` COLLATE "C"`
		}
		if c.NonNull {
			col += " NOT NULL"
		}
		cols = append(cols, col)
	}
	tb.Create = append(tb.Create, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (\n  %s\n)", name, strings.Join(cols, ",\n  ")))
	// The writer looks entities up by id (Batch.Get, blind Sets, the immutable re-set check).
	// A hash index is a quarter the size of a btree on these text ids and costs about half as
	// much per COPYed row; uniqueness is the writer's job until the deferred unique btree exists.
	current := ""
	if !t.Immutable {
		current = " WHERE " + Current("")
	}
	tb.Create = append(tb.Create, fmt.Sprintf("CREATE INDEX IF NOT EXISTS %s ON %s USING hash (%s)%s",
		Quote(IndexName(t.Table, "id", "hash")), name, Quote("id"), current))

	add := func(ix, def string) {
		n := IndexName(t.Table, ix)
		tb.Deferred = append(tb.Deferred, Index{Name: n, Create: fmt.Sprintf("CREATE %s %s ON %s %s", indexKind(def), Quote(n), name, strings.TrimPrefix(def, "UNIQUE "))})
	}
	hash := IndexName(t.Table, "id", "hash")
	if t.Immutable {
		add("id", "UNIQUE (id)")
		tb.Deferred[0].Replaces = hash
	} else {
		// Current state by id, index-only; also the database's own check that each id has one
		// current version.
		add("id_current", "UNIQUE (id)"+current)
		tb.Deferred[0].Replaces = hash
		// Time travel by id: the versions of an id in block order.
		add("id_versions", "(id, "+VersionStart(t, "")+")")
	}
	for _, c := range t.Columns[1:] {
		if !Indexed(c) {
			continue
		}
		if t.Immutable && !c.Index && len(c.IndexOrderBy) > 0 {
			// (ref, orderBy, id) over every row serves what (ref, id) would: filters by the
			// reference, and its pages (a handful of rows) sort cheaply.
			continue
		}
		if c.Kind == schema.KindEntity && !t.Immutable {
			// References serve derived fields at any block (event.tickets, ticket.transfers), so
			// they cover every version; the heap check for current rows is cheap next to that.
			add(c.Column, fmt.Sprintf("(%s, id)", Quote(c.Column)))
			continue
		}
		if c.Kind == schema.KindEntity && !c.Index {
			// An immutable table's reference without a page of its own (event.transactions)
			// keys on the reference alone: PostgreSQL stores equal keys once (deduplication), a
			// tenth of (ref, id) with its 66-character hash ids, and a parent's children (a
			// handful) sort cheaply. A page on it declares @index(orderBy:).
			add(c.Column, "("+Quote(c.Column)+")")
			continue
		}
		key := Quote(c.Column)
		if c.Kind == schema.KindString {
			key = StringIndexExpr(c.Column)
		}
		add(c.Column, fmt.Sprintf("(%s, id)%s", key, current))
	}
	// Pages filtered on one field and ordered by another (a holder's tickets newest first, an
	// organizer's events, an event's listings by price): the index yields them in order, so a
	// page reads its rows and stops, where (field, id) would read and sort every match. Current
	// rows only; time travel filters through the field's own index.
	for _, c := range t.Columns[1:] {
		key := Quote(c.Column)
		if c.Kind == schema.KindString {
			key = StringIndexExpr(c.Column)
		}
		for _, by := range c.IndexOrderBy {
			o := t.Field(by)
			add(c.Column+"_"+o.Column, fmt.Sprintf("(%s, %s, id)%s", key, Quote(o.Column), current))
		}
	}
	tb.View = view(t, name)
	return tb
}

// indexKind splits "UNIQUE (..)" into the keyword for CREATE.
func indexKind(def string) string {
	if strings.HasPrefix(def, "UNIQUE ") {
		return "UNIQUE INDEX IF NOT EXISTS"
	}
	return "INDEX IF NOT EXISTS"
}

// Indexed reports whether a column gets a deferred secondary index (col, id), serving `where`
// filters and `ORDER BY col, id` pages: references (derived fields read them, at any block) and
// fields marked @index. Pages filtered on a field and ordered by another get their index from
// @index(orderBy:) instead. Not every column, as graph-node does: each index costs every write at
// the head a page, every version a revert reopens a page too, and disk for every version kept.
// Indexing every Bytes field and every field named like a time or block (the rule before) made
// the indexes of an immutable Transfer 924 bytes a row, four times the row, for filters no page
// of the frontend sends (issue 21). Lists are never indexed (a btree cannot answer _contains).
func Indexed(c *schema.Field) bool {
	return !c.List && (c.Index || c.Kind == schema.KindEntity)
}

// StringIndexExpr is the indexed expression of a String column. Values are unbounded and a
// btree entry over ~2.7 kB fails the insert (a long event title would stop indexing), so the
// index holds the first 256 characters, as graph-node's does. To use it, a query repeats the
// expression: equality as `left(col, 256) = left($1, 256) AND col = $1`, ordering as
// `ORDER BY left(col, 256), col, id`.
func StringIndexExpr(column string) string { return "left(" + Quote(column) + ", 256)" }

func view(t *schema.EntityType, table string) []string {
	vname := Quote(ViewSchema) + "." + Quote(t.Table)
	var sel []string
	for _, c := range t.Columns {
		q := Quote(c.Column)
		switch {
		case c.Kind == schema.KindBytes && c.List:
			sel = append(sel, fmt.Sprintf("CASE WHEN %[1]s IS NULL THEN NULL ELSE ARRAY(SELECT '0x' || encode(x, 'hex') FROM unnest(%[1]s) WITH ORDINALITY AS u(x, o) ORDER BY o) END AS %[1]s", q))
		case c.Kind == schema.KindBytes:
			sel = append(sel, fmt.Sprintf("'0x' || encode(%[1]s, 'hex') AS %[1]s", q))
		default:
			sel = append(sel, q)
		}
	}
	where := ""
	sel = append(sel, VersionStart(t, "")+" AS "+Quote(ColViewBlock))
	if !t.Immutable {
		where = "\nWHERE " + Current("")
	}
	out := []string{
		fmt.Sprintf("DROP VIEW IF EXISTS %s", vname),
		fmt.Sprintf("CREATE VIEW %s AS\nSELECT %s\nFROM %s%s", vname, strings.Join(sel, ",\n  "), table, where),
	}
	desc := t.Description
	if desc == "" {
		desc = t.Name + " entities"
	}
	kind := "current state, one row per entity"
	if t.Immutable {
		kind = "immutable: one row per entity, never updated"
	}
	out = append(out, fmt.Sprintf("COMMENT ON VIEW %s IS %s", vname, Literal(fmt.Sprintf("%s (%s; GraphQL type %s)", desc, kind, t.Name))))
	for _, c := range t.Columns {
		out = append(out, fmt.Sprintf("COMMENT ON COLUMN %s.%s IS %s", vname, Quote(c.Column), Literal(columnComment(c))))
	}
	out = append(out, fmt.Sprintf("COMMENT ON COLUMN %s.%s IS %s", vname, Quote(ColViewBlock),
		Literal("Block number at which this version of the entity was written.")))
	return out
}

func columnComment(c *schema.Field) string {
	var notes []string
	notes = append(notes, c.Name+": "+c.GraphQLType())
	switch c.Kind {
	case schema.KindBytes:
		notes = append(notes, "lowercase 0x hex")
	case schema.KindEntity:
		notes = append(notes, "id of the "+c.Ref)
	case schema.KindTimestamp:
		notes = append(notes, "microseconds since the epoch")
	}
	s := "[" + strings.Join(notes, "; ") + "]"
	if c.Description != "" {
		return c.Description + " " + s
	}
	return s
}

// IndexName builds an index name from a table and parts, kept within PostgreSQL's 63 bytes.
func IndexName(table string, parts ...string) string {
	n := table + "_" + strings.Join(parts, "_")
	if len(n) <= 63 {
		return n
	}
	sum := sha256.Sum256([]byte(n))
	return n[:54] + "_" + hex.EncodeToString(sum[:4])
}

// Quote quotes an identifier (some columns are keywords: from, to, transaction).
func Quote(id string) string { return `"` + strings.ReplaceAll(id, `"`, `""`) + `"` }

// Literal quotes a string constant.
func Literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// SQL renders the layout as one script, the content of store/entities.gen.sql.
func (l *Layout) SQL(sch *schema.Schema) string {
	var b strings.Builder
	b.WriteString("-- Code generated by internal/gen from " + sch.File + "; DO NOT EDIT.\n")
	b.WriteString("-- The entity layout the store creates (store.Migrate) and indexes (store.EnsureIndexes).\n")
	fmt.Fprintf(&b, "-- layout fingerprint: %s\n\n", l.Fingerprint)
	fmt.Fprintf(&b, "CREATE SCHEMA IF NOT EXISTS %s;\nCREATE SCHEMA IF NOT EXISTS %s;\n", Quote(EntitySchema), Quote(ViewSchema))
	for _, t := range l.Tables {
		kind := "mutable: one row per version, visible at the blocks of block_range"
		if t.Type.Immutable {
			kind = "immutable: one row per entity, created at block"
		}
		fmt.Fprintf(&b, "\n-- %s (%s)\n", t.Type.Name, kind)
		for _, q := range t.Create {
			b.WriteString(q + ";\n")
		}
	}
	b.WriteString("\n-- Secondary indexes for the API, built after backfill with CREATE INDEX CONCURRENTLY.\n")
	for _, t := range l.Tables {
		for _, ix := range t.Deferred {
			b.WriteString(ix.Create + ";\n")
			if ix.Replaces != "" {
				fmt.Fprintf(&b, "DROP INDEX IF EXISTS %s.%s;\n", Quote(EntitySchema), Quote(ix.Replaces))
			}
		}
	}
	b.WriteString("\n-- Analyst views: current state, Bytes as 0x hex.\n")
	for _, t := range l.Tables {
		b.WriteString("\n")
		for _, q := range t.View {
			b.WriteString(q + ";\n")
		}
	}
	b.WriteString("\n")
	for _, q := range l.Grants {
		b.WriteString(q + ";\n")
	}
	return b.String()
}
