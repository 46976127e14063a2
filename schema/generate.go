package schema

// The generator (internal/gen) derives schema/entity/entity_gen.go, store/entities.gen.sql and
// api/graphql/resolvers_gen.go from schema.graphql. It lives outside schema because it imports
// store/ddl and api/graphql/codegen, which import schema.
//go:generate go run ../internal/gen
