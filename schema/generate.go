package schema

// The generator derives schema/entity/entity_gen.go and store/entities.gen.sql from schema.graphql.
//go:generate go run ./gen
