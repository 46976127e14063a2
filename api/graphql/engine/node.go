package engine

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"

	gql "github.com/graph-gophers/graphql-go"
)

// Node is one entity of a result. Its generated resolver (built from the row when it is read)
// holds the scalar fields and follows references and derived fields through Follow and Derived.
type Node struct {
	g    *group
	keys []string // by column: the id and the references (what batched loads follow); "" otherwise
	res  any      // the generated resolver of the entity, built once when the row is read
}

// group is the set of sibling nodes one SQL statement produced. The first resolver that follows
// a relation from any of them loads that relation for all of them with one statement, so a query
// costs one statement per (level, field, arguments), however many rows each level has.
type group struct {
	s     *session
	e     *entity
	b     bound
	nodes []*Node

	mu    sync.Mutex
	loads map[string]*load
}

type load struct {
	done chan struct{}
	err  error
	by   map[string][]*Node // parent id (derived) or referenced id (ref) -> nodes
}

func newGroup(s *session, e *entity, b bound) *group {
	return &group{s: s, e: e, b: b}
}

// Resolver is the generated resolver of the entity.
func (n *Node) Resolver() any { return n.res }

// ID is the entity's id.
func (n *Node) ID() gql.ID { return gql.ID(n.keys[0]) }

func (n *Node) id() string { return n.keys[0] }

// once runs fn for the first caller with key and makes every other caller wait for its result.
func (g *group) once(ctx context.Context, key string, fn func() (map[string][]*Node, error)) (*load, error) {
	g.mu.Lock()
	if g.loads == nil {
		g.loads = map[string]*load{}
	}
	l := g.loads[key]
	if l == nil {
		l = &load{done: make(chan struct{})}
		g.loads[key] = l
		g.mu.Unlock()
		l.by, l.err = fn()
		close(l.done)
		return l, l.err
	}
	g.mu.Unlock()
	select {
	case <-l.done:
		return l, l.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Ref follows the reference stored in column col: the referenced entity at the same block, or
// nil when the column is NULL (or the entity does not exist at that block).
func (n *Node) Ref(ctx context.Context, col int) (*Node, error) {
	id := n.keys[col]
	if id == "" {
		return nil, nil // NULL (an empty id cannot be stored by the mappings)
	}
	g := n.g
	l, err := g.once(ctx, "r"+strconv.Itoa(col), func() (map[string][]*Node, error) {
		seen := make(map[string]bool, len(g.nodes))
		ids := make([]string, 0, len(g.nodes))
		for _, p := range g.nodes {
			if v := p.keys[col]; v != "" && !seen[v] {
				seen[v] = true
				ids = append(ids, v)
			}
		}
		f := g.e.Columns[col]
		target := g.s.e.m.byName[f.Ref]
		return g.s.loadByIDs(ctx, target, g.s.plan.columns(target, f.Name), g.b, ids)
	})
	if err != nil {
		return nil, err
	}
	if ns := l.by[id]; len(ns) > 0 {
		return ns[0], nil
	}
	return nil, nil
}

// Follow is Ref for generated resolvers that graphql-go runs inline: a reference field without
// context or error result is resolved synchronously, sparing a goroutine per field of every
// entity in a list. It reads with the request's context and reports a failure by panicking with
// a LoadFailure, which the engine's panic handler turns into the field's GraphQL error.
func (n *Node) Follow(col int) *Node {
	r, err := n.Ref(n.g.s.ctx, col)
	if err != nil {
		panic(LoadFailure{err})
	}
	return r
}

// LoadFailure carries a load error out of a synchronous resolver (see Follow).
type LoadFailure struct{ Err error }

// Derived returns the entities whose back reference points at n (field index fi of the type),
// with the collection arguments applied per parent.
func (n *Node) Derived(ctx context.Context, fi int, a *ListArgs) ([]*Node, error) {
	g := n.g
	d := g.e.derived[fi]
	if d == nil {
		return nil, errorf(codeInternal, "field %d of %s is not derived", fi, g.e.Name)
	}
	key, err := argsKey(fi, a)
	if err != nil {
		return nil, err
	}
	l, err := g.once(ctx, key, func() (map[string][]*Node, error) {
		seen := make(map[string]bool, len(g.nodes))
		ids := make([]string, 0, len(g.nodes))
		for _, p := range g.nodes {
			if id := p.id(); !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
		return g.s.loadDerived(ctx, d, g.b, ids, a)
	})
	if err != nil {
		return nil, err
	}
	return l.by[n.id()], nil
}

// argsKey identifies a derived load: the same field with the same arguments (under any alias)
// is loaded once per group.
func argsKey(fi int, a *ListArgs) (string, error) {
	b := make([]byte, 0, 64)
	b = append(b, 'd')
	b = strconv.AppendInt(b, int64(fi), 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, int64(a.Skip), 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, int64(a.First), 10)
	if a.OrderBy != nil {
		b = append(b, ":o="...)
		b = append(b, *a.OrderBy...)
	}
	if a.OrderDirection != nil {
		b = append(b, ":d="...)
		b = append(b, *a.OrderDirection...)
	}
	if a.Where.Set {
		w, err := json.Marshal(a.Where.M) // map keys come out sorted
		if err != nil {
			return "", errorf(codeBadFilter, "where: %v", err)
		}
		b = append(b, ":w="...)
		b = append(b, w...)
	}
	return string(b), nil
}

// Helpers for generated resolvers: convert a stored value to the resolver's return type.

// Opt returns a pointer to the value, nil for NULL.
func Opt[T any](v any) *T {
	if v == nil {
		return nil
	}
	t := v.(T)
	return &t
}

// List is a non-null list of non-null elements.
func List[T any](v any) []T {
	l, _ := v.([]any)
	out := make([]T, len(l))
	for i, x := range l {
		if x != nil {
			out[i] = x.(T)
		}
	}
	return out
}

// OptList is a nullable list of non-null elements.
func OptList[T any](v any) *[]T {
	if v == nil {
		return nil
	}
	l := List[T](v)
	return &l
}

// ListOpt is a non-null list of nullable elements.
func ListOpt[T any](v any) []*T {
	l, _ := v.([]any)
	out := make([]*T, len(l))
	for i, x := range l {
		out[i] = Opt[T](x)
	}
	return out
}

// OptListOpt is a nullable list of nullable elements.
func OptListOpt[T any](v any) *[]*T {
	if v == nil {
		return nil
	}
	l := ListOpt[T](v)
	return &l
}
