package engine

import (
	"strings"

	gql "github.com/graph-gophers/graphql-go"
)

// ListArgs are the arguments of a collection field (`events(...)`, `event.tickets(...)`).
// Derived fields have no block or subgraphError argument; those stay zero.
type ListArgs struct {
	Skip           int32
	First          int32
	OrderBy        *string
	OrderDirection *string
	Where          Filter
	Block          *BlockHeight
	SubgraphError  string
}

// SingleArgs are the arguments of a single-entity field (`event(id: ...)`).
type SingleArgs struct {
	ID            gql.ID
	Block         *BlockHeight
	SubgraphError string
}

// MetaArgs are the arguments of `_meta`.
type MetaArgs struct {
	Block *BlockHeight
}

// BlockHeight is the `block:` argument: time travel.
type BlockHeight struct {
	Hash      *Bytes
	Number    *int32
	NumberGte *int32
}

// Filter is a `where:` argument as the client wrote it. graphql-go has already checked its keys
// against the Foo_filter input type; the executor interprets the values against the entity type.
type Filter struct {
	Set bool
	M   map[string]any
}

// ImplementsGraphQLType lets one Go type stand for every Foo_filter input type.
func (Filter) ImplementsGraphQLType(name string) bool { return strings.HasSuffix(name, "_filter") }

// UnmarshalGraphQL keeps the raw input object.
func (f *Filter) UnmarshalGraphQL(in any) error {
	if in == nil {
		*f = Filter{}
		return nil
	}
	m, ok := in.(map[string]any)
	if !ok {
		return errorf(codeBadFilter, "where: an input object is expected, got %s", describe(in))
	}
	*f = Filter{Set: true, M: m}
	return nil
}

// Nullable marks the filter argument as optional for graphql-go.
func (Filter) Nullable() {}
