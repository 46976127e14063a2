package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The committed outputs must be what the generator makes of the committed schema.
func TestCommittedOutputIsFresh(t *testing.T) {
	tmp := t.TempDir()
	if err := run("../../schema/schema.graphql", "schema/schema.graphql", tmp, false); err != nil {
		t.Fatal(err)
	}
	for _, e := range emitters() {
		want, err := os.ReadFile(filepath.Join(tmp, e.Path))
		if err != nil {
			t.Fatal(err)
		}
		have, err := os.ReadFile(filepath.Join("..", "..", e.Path))
		if err != nil {
			t.Fatalf("%s: %v (run `go generate ./...`)", e.Path, err)
		}
		if !bytes.Equal(have, want) {
			t.Errorf("%s is stale: run `go generate ./...` and commit the result", e.Path)
		}
	}
	// -check mode agrees.
	if err := run("../../schema/schema.graphql", "schema/schema.graphql", "../..", true); err != nil {
		t.Errorf("check mode: %v", err)
	}
}

func TestCheckModeReportsStaleFiles(t *testing.T) {
	root := t.TempDir()
	sch := filepath.Join(root, "schema", "schema.graphql")
	src, err := os.ReadFile("../../schema/schema.graphql")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(sch), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sch, src, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(sch, "schema/schema.graphql", root, false); err != nil {
		t.Fatal(err)
	}
	if err := run(sch, "schema/schema.graphql", root, true); err != nil {
		t.Fatalf("fresh output reported stale: %v", err)
	}
	// Adding a field changes every output: the check names them.
	edited := strings.Replace(string(src), "  burned: Boolean!\n", "  burned: Boolean!\n  \"A new field.\"\n  note: String\n", 1)
	if edited == string(src) {
		t.Fatal("test schema edit did not apply")
	}
	if err := os.WriteFile(sch, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	err = run(sch, "schema/schema.graphql", root, true)
	if err == nil || !strings.Contains(err.Error(), "schema/entity/entity_gen.go is stale") || !strings.Contains(err.Error(), "store/entities.gen.sql is stale") {
		t.Fatalf("stale outputs not reported: %v", err)
	}
	// Regenerating picks the field up everywhere.
	if err := run(sch, "schema/schema.graphql", root, false); err != nil {
		t.Fatal(err)
	}
	goSrc, _ := os.ReadFile(filepath.Join(root, "schema/entity/entity_gen.go"))
	sqlSrc, _ := os.ReadFile(filepath.Join(root, "store/entities.gen.sql"))
	if !strings.Contains(string(goSrc), "\tNote *string\n") || !strings.Contains(string(sqlSrc), `"note" text COLLATE "C",`) {
		t.Fatal("the new field is missing from the generated code or DDL")
	}
}

func TestBadSchemaFailsWithFileLineReason(t *testing.T) {
	cases := map[string]struct{ src, want string }{
		"unknown type":   {"type A @entity {\n  id: ID!\n  x: Foo\n}\n", "schema/schema.graphql:3: field x: unknown type Foo"},
		"syntax":         {"type A @entity {\n  id: ID!\n  x: \n}\n", "schema/schema.graphql:4"},
		"reserved":       {"type A @entity {\n  id: ID!\n  blockRange: Int\n}\n", "schema/schema.graphql:3: field A.blockRange: column \"block_range\" is reserved"},
		"column clash":   {"type A @entity {\n  id: ID!\n  fooBar: Int\n  foo_bar: Int\n}\n", "schema/schema.graphql:4: field A.foo_bar maps to column \"foo_bar\""},
		"method clash":   {"type A @entity {\n  id: ID!\n  save: Int\n}\n", "schema/schema.graphql:3: field A.save: Go name Save"},
		"no entity":      {"type A {\n  id: ID!\n}\n", "schema/schema.graphql:1: type A has no @entity"},
		"table clash":    {"type Foo @entity {\n  id: ID!\n}\ntype foo @entity {\n  id: ID!\n}\n", "schema/schema.graphql:4: type foo maps to table \"foo\""},
		"enum (unknown)": {"enum E { X }\ntype A @entity {\n  id: ID!\n}\n", "schema/schema.graphql:1"},
	}
	for name, c := range cases {
		root := t.TempDir()
		sch := filepath.Join(root, "schema", "schema.graphql")
		if err := os.MkdirAll(filepath.Dir(sch), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(sch, []byte(c.src), 0o644); err != nil {
			t.Fatal(err)
		}
		err := run(sch, "schema/schema.graphql", root, false)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", name, err, c.want)
		}
		if _, statErr := os.Stat(filepath.Join(root, "schema/entity/entity_gen.go")); statErr == nil {
			t.Errorf("%s: output written despite the error", name)
		}
	}
}

func TestGoNames(t *testing.T) {
	for in, want := range map[string]string{"id": "ID", "tokenId": "TokenID", "metadataUri": "MetadataURI", "imageUrl": "ImageURL",
		"ticketsSold": "TicketsSold", "from": "From", "createdAtBlock": "CreatedAtBlock", "eventId": "EventID", "a_b": "AB", "_x": "X"} {
		if got := goName(in); got != want {
			t.Errorf("goName(%q) = %q, want %q", in, got, want)
		}
	}
}
