// Package alltypes is a test schema with every scalar kind, lists, references and derived
// fields, with its generated resolvers: the API's filter and ordering tests run against it.
package alltypes

import (
	_ "embed"

	"github.com/echain/echain-indexer/schema"
)

//go:embed schema.graphql
var sdl string

// Schema parses the test schema.
func Schema() (*schema.Schema, error) {
	return schema.Parse("api/graphql/internal/alltypes/schema.graphql", sdl)
}
