package alltypes

import (
	"bytes"
	"os"
	"testing"

	"github.com/echain/echain-indexer/api/graphql/codegen"
)

// TestResolversUpToDate: ECHAIN_UPDATE_GEN=1 rewrites resolvers_gen.go.
func TestResolversUpToDate(t *testing.T) {
	sch, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	want, err := codegen.Resolvers(sch, "alltypes")
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
		t.Fatal("resolvers_gen.go is stale: run ECHAIN_UPDATE_GEN=1 go test ./api/graphql/internal/alltypes -run TestResolversUpToDate")
	}
}
