// Command gen derives code from schema/schema.graphql: `go generate ./...` runs it from the schema
// directory (see schema/generate.go). Each emitter writes one file relative to the repository
// root; to add an output, add an entry to emitters.
//
//	go run ../internal/gen [-schema schema.graphql] [-root ..] [-check]
//
// With -check nothing is written and the command fails when a committed file differs from what
// it would generate.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/echain/echain-indexer/schema"
	"github.com/echain/echain-indexer/store/ddl"
)

// emitter renders one generated file from the schema.
type emitter struct {
	Path string // relative to the repository root
	Emit func(*schema.Schema) ([]byte, error)
}

// emitters lists every generated file.
func emitters() []emitter {
	return []emitter{
		{Path: "schema/entity/entity_gen.go", Emit: emitEntities},
		{Path: "store/entities.gen.sql", Emit: emitSQL},
		{Path: "api/graphql/resolvers_gen.go", Emit: emitGraphQL}, // internal/gen/graphql.go (API engineer)
	}
}

func main() {
	schemaPath := flag.String("schema", "schema.graphql", "the entity schema")
	root := flag.String("root", "..", "the repository root the outputs are relative to")
	name := flag.String("name", "schema/schema.graphql", "the schema's path in the repository, for errors and headers")
	check := flag.Bool("check", false, "compare instead of writing; fail when an output is stale")
	flag.Parse()
	if err := run(*schemaPath, *name, *root, *check); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// run generates every output of the schema at schemaPath into root; name is how errors and
// file headers call the schema.
func run(schemaPath, name, root string, check bool) error {
	src, err := os.ReadFile(schemaPath)
	if err != nil {
		return fmt.Errorf("gen: %w", err)
	}
	sch, err := schema.Parse(name, string(src))
	if err != nil {
		return err
	}
	outs, err := generate(sch)
	if err != nil {
		return err
	}
	var stale []error
	for _, e := range emitters() {
		path := filepath.Join(root, filepath.FromSlash(e.Path))
		if check {
			have, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(have, outs[e.Path]) {
				stale = append(stale, fmt.Errorf("%s is stale: run `go generate ./...`", e.Path))
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("gen: %w", err)
		}
		if err := os.WriteFile(path, outs[e.Path], 0o644); err != nil {
			return fmt.Errorf("gen: %w", err)
		}
	}
	return errors.Join(stale...)
}

// generate renders every output in memory, keyed by path.
func generate(sch *schema.Schema) (map[string][]byte, error) {
	// The table layout has the strictest rules (reserved and clashing columns): check it first so
	// that every output reports a bad schema the same way.
	if _, err := ddl.Build(sch); err != nil {
		return nil, err
	}
	outs := map[string][]byte{}
	for _, e := range emitters() {
		b, err := e.Emit(sch)
		if err != nil {
			return nil, fmt.Errorf("gen %s: %w", e.Path, err)
		}
		outs[e.Path] = b
	}
	return outs, nil
}
