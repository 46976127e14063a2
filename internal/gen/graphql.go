package main

import (
	"github.com/echain/echain-indexer/api/graphql/codegen"
	"github.com/echain/echain-indexer/schema"
)

// emitGraphQL renders api/graphql/resolvers_gen.go: the typed resolvers of the query API
// (graph-gophers/graphql-go methods over api/graphql/engine).
func emitGraphQL(sch *schema.Schema) ([]byte, error) { return codegen.Resolvers(sch, "graphql") }
