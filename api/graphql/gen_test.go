package graphql

import (
	"bytes"
	"os"
	"testing"

	"github.com/echain/echain-indexer/api/graphql/codegen"
	"github.com/echain/echain-indexer/schema"
)

// TestResolversUpToDate fails when resolvers_gen.go is not what the schema generates.
// ECHAIN_UPDATE_GEN=1 rewrites it (go generate ./... does the same through internal/gen).
func TestResolversUpToDate(t *testing.T) {
	sch, err := schema.Load()
	if err != nil {
		t.Fatal(err)
	}
	want, err := codegen.Resolvers(sch, "graphql")
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("ECHAIN_UPDATE_GEN") == "1" {
		if err := os.WriteFile("resolvers_gen.go", want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	have, err := os.ReadFile("resolvers_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(have, want) {
		t.Fatal("resolvers_gen.go is stale: run `go generate ./...`")
	}
}
