// Package graphql serves the entities of schema/schema.graphql as The Graph's GraphQL dialect
// (graph-node's query API), so a frontend written against the Echain subgraph works unchanged.
// The executor and HTTP handler are in package engine; this package binds them to the resolvers
// generated from the schema (resolvers_gen.go, `go generate ./...`).
package graphql

import (
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/echain/echain-indexer/api/graphql/engine"
	"github.com/echain/echain-indexer/schema"
)

// Options configure the API; see engine.Options for each field and its default.
type Options = engine.Options

// Handler is the HTTP handler of the API (an http.Handler).
type Handler = engine.Handler

// Request and ExecOptions are for running a query without HTTP (subscriptions).
type (
	Request     = engine.Request
	ExecOptions = engine.ExecOptions
	Result      = engine.Result
	Prepared    = engine.Prepared
)

// NewHandler serves sch (which must be the schema the resolvers were generated from) over the
// store reached through pool. Mount it at /graphql and /subgraphs/name/echain, GET and POST.
func NewHandler(pool *pgxpool.Pool, sch *schema.Schema, opts Options) (*Handler, error) {
	e, err := engine.New(pool, sch, Binding(), opts)
	if err != nil {
		return nil, err
	}
	return engine.NewHandler(e), nil
}
