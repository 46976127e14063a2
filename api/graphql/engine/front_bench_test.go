package engine

import (
	"fmt"
	"strings"
	"testing"

	gql "github.com/graph-gophers/graphql-go"

	"github.com/echain/echain-indexer/schema"
)

// BenchmarkFrontEnd prices issue 20's validation attacks: graphql-go's validation as the API
// ran it before the parse budget (no overlap or selection limit), against the front end's
// parse and budget pass that now refuses them before any validation.
//
//	go test ./api/graphql/engine -run '^$' -bench BenchmarkFrontEnd -benchmem -benchtime 3x
func BenchmarkFrontEnd(b *testing.B) {
	sch, err := schema.Load()
	if err != nil {
		b.Fatal(err)
	}
	m, err := newModel(sch)
	if err != nil {
		b.Fatal(err)
	}
	sdl := m.sdl(100)
	unbounded := gql.MustParseSchema(sdl, nil, gql.UseStringDescriptions(), gql.MaxDepth(16), gql.MaxQueryLength(1<<20))
	o := Options{}
	o.defaults()
	f, err := newFront(sdl, budget{tokens: o.MaxTokens, fields: o.MaxFields, aliases: o.MaxAliases, spreads: o.MaxFragmentSpreads, depth: o.MaxDepth})
	if err != nil {
		b.Fatal(err)
	}
	repeated := func(n int) string { return `{ events(first: 1) { ` + strings.Repeat("id ", n) + `} }` }
	doubling := func(levels int) string {
		var s strings.Builder
		s.WriteString("{ events(first: 1) { ...F1 } }\n")
		for i := 1; i < levels; i++ {
			fmt.Fprintf(&s, "fragment F%d on Event { id ...F%d ...F%d }\n", i, i+1, i+1)
		}
		fmt.Fprintf(&s, "fragment F%d on Event { id }\n", levels)
		return s.String()
	}
	for _, n := range []int{1000, 2000} {
		q := repeated(n)
		b.Run(fmt.Sprintf("graphql-go_unbounded/repeated_%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				unbounded.Validate(q)
			}
		})
	}
	for name, q := range map[string]string{"repeated_4000": repeated(4000), "repeated_20000": repeated(20000), "doubling_30": doubling(30), "doubling_60": doubling(60)} {
		b.Run("front_end/"+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				doc, r, _ := f.parse(q)
				if r == nil {
					r = f.measure(doc)
				}
				if r == nil {
					b.Fatal("not refused")
				}
			}
		})
	}
	// What a query just inside the budget costs to validate: repeats merged first.
	q := repeated(o.MaxFields - 2)
	b.Run(fmt.Sprintf("front_end/validate_repeated_%d", o.MaxFields-2), func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			doc, _, _ := f.parse(q)
			mergeLeaves(doc)
			if errs := f.validate(doc); len(errs) > 0 {
				b.Fatal(errs)
			}
		}
	})
}
