package graphql

import (
	"context"
	"fmt"
	"testing"

	"github.com/echain/echain-indexer/api/graphql/internal/gqltest"
)

// TestGraphNodeVariableTypes: graph-node does not run the specification's validations by
// default, so frontends declare a String variable where an ID or Bytes is expected, and get
// answers. Each such query answers what the same query with the exact types answers, with the
// fast path and with graphql-go alone; a variable that is not a string where one is expected
// keeps its refusal.
func TestGraphNodeVariableTypes(t *testing.T) {
	sch, pool := smallStore(t)
	fast := newHandler(t, sch, pool, Options{})
	ref := newHandler(t, sch, pool, Options{DisableFastPath: true})
	owner := fmt.Sprintf("0x%x", gqltest.BulkInfo(gqltest.Sizes{Owners: 20}).Owners[3])
	cases := []struct {
		name, loose, exact string
		vars               map[string]any
	}{
		{"String in an ID position", `query($lastID: String) { events(first: 3, orderBy: id, where: {id_gt: $lastID}) { id } }`,
			`query($lastID: ID) { events(first: 3, orderBy: id, where: {id_gt: $lastID}) { id } }`, map[string]any{"lastID": "3"}},
		{"String! in an ID! position", `query Ev($id: String!) { event(id: $id) { id title } }`,
			`query Ev($id: ID!) { event(id: $id) { id title } }`, map[string]any{"id": "7"}},
		{"String in an ID! position", `query Ev($id: String) { event(id: $id) { id title } }`,
			`query Ev($id: ID!) { event(id: $id) { id title } }`, map[string]any{"id": "7"}},
		{"String! in a Bytes position", `query($owner: String!) { tickets(first: 5, orderBy: id, where: {owner: $owner}) { id owner } }`,
			`query($owner: Bytes!) { tickets(first: 5, orderBy: id, where: {owner: $owner}) { id owner } }`, map[string]any{"owner": owner}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := gqltest.Post(t, fast, c.exact, c.vars)
			if len(want.Errors) > 0 || len(want.Data) == 0 {
				t.Fatalf("the exact query fails: %s", want.Raw)
			}
			for name, h := range map[string]*Handler{"fast path": fast, "graphql-go": ref} {
				got := gqltest.Post(t, h, c.loose, c.vars)
				if string(got.Raw) != string(want.Raw) {
					t.Errorf("%s: %s\nwant %s", name, got.Raw, want.Raw)
				}
			}
			// subscriptions accept them too
			if _, errs := fast.Engine().Prepare(context.Background(), Request{Query: "subscription" + c.loose[len("query"):], Variables: c.vars}); len(errs) > 0 {
				t.Errorf("subscribe: %v", errs)
			}
		})
	}
	// Not a string where one is expected, or a String where an Int is: still refused.
	for _, q := range []string{
		`query($n: String) { events(first: $n) { id } }`,
		`query($id: Int) { event(id: $id) { id } }`,
	} {
		if r := gqltest.Post(t, fast, q, map[string]any{"n": "5", "id": "5"}); len(r.Errors) == 0 {
			t.Errorf("%s: accepted: %s", q, r.Raw)
		}
	}
}
