package ddl

import (
	"strings"
	"testing"

	"github.com/echain/echain-indexer/schema"
)

func parse(t *testing.T, sdl string) *schema.Schema {
	t.Helper()
	s, err := schema.Parse("t.graphql", sdl)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const base = `
type A @entity {
  id: ID!
  "doc"
  owner: Bytes!
  b: B
  createdAt: BigInt!
  price: BigInt!
  title: String!
  status: String! @index
  tags: [String!]!
}
type B @entity(immutable: true) {
  id: ID!
  timestamp: Int8!
  amount: BigInt!
}
`

func TestLayoutIndexes(t *testing.T) {
	l, err := Build(parse(t, base))
	if err != nil {
		t.Fatal(err)
	}
	// Bytes and time fields are no longer indexed by name: only references and @index fields.
	if got := names(l.Table("A")); got != "a_id_current a_id_versions a_b a_status" {
		t.Errorf("A indexes: %s", got)
	}
	if got := names(l.Table("B")); got != "b_id" {
		t.Errorf("B indexes: %s", got)
	}
	a := l.Table("A")
	for _, want := range []string{
		`CREATE UNIQUE INDEX IF NOT EXISTS "a_id_current" ON "entities"."a" (id) WHERE upper_inf("block_range")`,
		`CREATE INDEX IF NOT EXISTS "a_b" ON "entities"."a" ("b", id)`, // references: every version
		`CREATE INDEX IF NOT EXISTS "a_status" ON "entities"."a" (left("status", 256), id) WHERE upper_inf("block_range")`,
	} {
		found := false
		for _, ix := range a.Deferred {
			found = found || ix.Create == want
		}
		if !found {
			t.Errorf("missing %s", want)
		}
	}
	if a.Deferred[0].Replaces != "a_id_hash" || !strings.Contains(strings.Join(a.Create, "\n"), `USING hash ("id") WHERE upper_inf`) {
		t.Error("the writer's hash index and its replacement are wrong")
	}
	if !strings.Contains(a.Create[0], `"title" text COLLATE "C" NOT NULL`) || !strings.Contains(a.Create[0], `"tags" text[] COLLATE "C" NOT NULL`) ||
		!strings.Contains(a.Create[0], `"block_range" int4range NOT NULL`) || !strings.Contains(l.Table("B").Create[0], `"block" int4 NOT NULL`) {
		t.Errorf("table DDL: %s", a.Create[0])
	}
}

// The fingerprint follows the tables, not the descriptions.
func TestFingerprint(t *testing.T) {
	fp := func(sdl string) string {
		l, err := Build(parse(t, sdl))
		if err != nil {
			t.Fatal(err)
		}
		return l.Fingerprint
	}
	orig := fp(base)
	if fp(strings.Replace(base, `"doc"`, `"other doc"`, 1)) != orig {
		t.Error("a description changed the fingerprint")
	}
	if fp(strings.Replace(base, "price: BigInt!", "price: BigInt", 1)) == orig {
		t.Error("a nullability change kept the fingerprint")
	}
	if fp(strings.Replace(base, "price: BigInt!", "price: BigInt!\n  extra: Int", 1)) == orig {
		t.Error("a new field kept the fingerprint")
	}
	if fp(strings.Replace(base, "price: BigInt!", "price: BigInt! @index", 1)) != orig {
		t.Error("an index change (no re-sync needed) changed the fingerprint")
	}
}

func TestBuildErrors(t *testing.T) {
	for sdl, want := range map[string]string{
		"type A @entity {\n  id: ID!\n  vid: Int\n}":                     `t.graphql:3: field A.vid: column "vid" is reserved`,
		"type A @entity {\n  id: ID!\n  _block: Int\n}":                  `column "_block" is reserved`,
		"type A @entity {\n  id: ID!\n  xY: Int\n  x_y: Int\n}":          `t.graphql:4: field A.x_y maps to column "x_y" like field xY`,
		"type A @entity {\n  id: ID!\n}\ntype a @entity {\n  id: ID!\n}": `t.graphql:4: type a maps to table "a" like type A`,
	} {
		_, err := Build(parse(t, sdl))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want %q", err, want)
		}
	}
}

func TestIndexNameFitsPostgres(t *testing.T) {
	long := strings.Repeat("x", 80)
	n := IndexName(long, "y")
	if len(n) > 63 || n == IndexName(long, "z") {
		t.Fatalf("index name %q", n)
	}
}

// @index(orderBy:) adds one (field, orderBy, id) index per named field: current rows of a mutable
// table, every row of an immutable one.
func TestIndexOrderBy(t *testing.T) {
	sdl := strings.Replace(base, "  owner: Bytes!\n", "  owner: Bytes! @index(orderBy: [\"createdAt\", \"price\"])\n", 1)
	sdl = strings.Replace(sdl, "  timestamp: Int8!\n", "  timestamp: Int8!\n  a: A! @index(orderBy: \"timestamp\")\n", 1)
	l, err := Build(parse(t, sdl))
	if err != nil {
		t.Fatal(err)
	}
	for typ, want := range map[string][]string{
		"A": {`CREATE INDEX IF NOT EXISTS "a_owner_created_at" ON "entities"."a" ("owner", "created_at", id) WHERE upper_inf("block_range")`,
			`CREATE INDEX IF NOT EXISTS "a_owner_price" ON "entities"."a" ("owner", "price", id) WHERE upper_inf("block_range")`},
		"B": {`CREATE INDEX IF NOT EXISTS "b_a_timestamp" ON "entities"."b" ("a", "timestamp", id)`},
	} {
		have := map[string]bool{}
		for _, ix := range l.Table(typ).Deferred {
			have[ix.Create] = true
		}
		for _, w := range want {
			if !have[w] {
				t.Errorf("%s: missing %s", typ, w)
			}
		}
	}
	// On an immutable table the composite replaces the reference's (a, id); on a mutable one the
	// reference keeps its index over every version, for time travel.
	sdl = strings.Replace(sdl, "  b: B\n", "  b: B @index(orderBy: \"price\")\n", 1)
	if l, err = Build(parse(t, sdl)); err != nil {
		t.Fatal(err)
	}
	if got := names(l.Table("B")); got != "b_id b_a_timestamp" {
		t.Errorf("B indexes: %s", got)
	}
	if got := names(l.Table("A")); got != "a_id_current a_id_versions a_b a_status a_owner_created_at a_owner_price a_b_price" {
		t.Errorf("A indexes: %s", got)
	}
	for bad, want := range map[string]string{
		`owner: Bytes! @index(orderBy: "nope")`:  `@index(orderBy: "nope") needs another stored field of A`,
		`owner: Bytes! @index(orderBy: "title")`: `@index(orderBy: "title") needs another stored field of A that is not a list or a String`,
		`owner: Bytes! @index(orderBy: "tags")`:  `@index(orderBy: "tags")`,
		`owner: Bytes! @index(orderBy: 3)`:       `@index(orderBy:) needs a field name or a list of them`,
	} {
		_, err := schema.Parse("t.graphql", strings.Replace(base, "owner: Bytes!", bad, 1))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", bad, err, want)
		}
	}
}

func names(tb *Table) string {
	var n []string
	for _, ix := range tb.Deferred {
		n = append(n, ix.Name)
	}
	return strings.Join(n, " ")
}
