package subscriptions

import (
	"context"
	"reflect"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/echain/echain-indexer/api/graphql"
	"github.com/echain/echain-indexer/schema"
)

// testSchema is the API schema of the real entity schema (the pool never connects).
func testSchema(t *testing.T) *apiSchema {
	t.Helper()
	sch, err := schema.Load()
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(context.Background(), "postgres://127.0.0.1:1/none")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	h, err := graphql.NewHandler(pool, sch, graphql.Options{})
	if err != nil {
		t.Fatal(err)
	}
	as, err := newAPISchema(h.Engine())
	if err != nil {
		t.Fatal(err)
	}
	return as
}

// What a subscription reads decides when it runs again: too little misses updates, too much
// wastes executions. Selections, fragments, nested filters and nested orderBy all count.
func TestReadTypes(t *testing.T) {
	as := testSchema(t)
	lim := limits{maxDepth: 10, maxCost: 1 << 20, maxFirst: 1000}
	cases := []struct {
		query string
		vars  map[string]any
		types []string
		ids   map[string][]string // root lookups by id
		meta  bool
	}{
		{query: `subscription { event(id: "1") { ticketsSold } }`, types: []string{"Event"}, ids: map[string][]string{"Event": {"1"}}},
		{query: `subscription($id: ID!) { event(id: $id) { ticketsSold organizer { id } } }`, vars: map[string]any{"id": "7"},
			types: []string{"Event", "Organizer"}, ids: map[string][]string{"Event": {"7"}}},
		{query: `subscription($me: Bytes) { tickets(where: {owner: $me}) { id isUsed } }`, vars: map[string]any{"me": "0xab"}, types: []string{"Ticket"}},
		{query: `subscription { tickets(where: {event_: {title_contains: "x"}}) { id } }`, types: []string{"Event", "Ticket"}},
		{query: `subscription($w: Ticket_filter) { tickets(where: $w) { id } }`,
			vars:  map[string]any{"w": map[string]any{"or": []any{map[string]any{"event_": map[string]any{"organizer_": map[string]any{"verified": true}}}}}},
			types: []string{"Event", "Organizer", "Ticket"}},
		{query: `subscription { tickets(orderBy: event__title) { id } }`, types: []string{"Event", "Ticket"}},
		{query: `subscription { event(id: "1") { ...F } } fragment F on Event { tickets(first: 5) { transfers { id } } }`,
			types: []string{"Event", "Ticket", "Transfer"}, ids: map[string][]string{"Event": {"1"}}},
		{query: `subscription { _meta { block { number } } }`, types: []string{}, meta: true},
		// Typed as graph-node takes them (an Int for an ID, a String for an enum): the id the
		// operation reads is the one graph-node coerces the value to.
		{query: `subscription($id: Int!, $o: String) { event(id: $id) { tickets(orderBy: $o) { id } } }`, vars: map[string]any{"id": 7, "o": "tokenId"},
			types: []string{"Event", "Ticket"}, ids: map[string][]string{"Event": {"7"}}},
	}
	for _, tc := range cases {
		o, errs := as.parseOperation(context.Background(), tc.query, "", tc.vars, lim)
		if len(errs) > 0 {
			t.Fatalf("%s: %s", tc.query, errs[0].msg)
		}
		if got := o.readTypes(); !reflect.DeepEqual(got, tc.types) {
			t.Errorf("%s: reads %v, want %v", tc.query, got, tc.types)
		}
		for typ, set := range o.reads {
			want := tc.ids[typ]
			if want == nil {
				if set != nil {
					t.Errorf("%s: %s restricted to %v, want any id", tc.query, typ, set)
				}
				continue
			}
			if len(set) != len(want) {
				t.Errorf("%s: %s ids %v, want %v", tc.query, typ, set, want)
			}
			for _, id := range want {
				if _, ok := set[id]; !ok {
					t.Errorf("%s: %s ids %v, want %v", tc.query, typ, set, want)
				}
			}
		}
		if o.metaReads != tc.meta {
			t.Errorf("%s: metaReads %v", tc.query, o.metaReads)
		}
	}

	ev, _ := as.parseOperation(context.Background(), `subscription { event(id: "1") { ticketsSold } }`, "", nil, lim)
	for _, tc := range []struct {
		change map[string][]string
		want   bool
	}{
		{map[string][]string{"Event": {"1"}}, true},
		{map[string][]string{"Event": {"2"}}, false},
		{map[string][]string{"Event": nil}, true}, // "some ids" (the payload was too long)
		{map[string][]string{"Ticket": {"1-1"}}, false},
		{map[string][]string{}, false},
	} {
		if got := ev.affectedBy(tc.change); got != tc.want {
			t.Errorf("event(id: 1) affected by %v: %v, want %v", tc.change, got, tc.want)
		}
	}
}

// Spellings of one subscription share one operation; different variables do not.
func TestOperationKey(t *testing.T) {
	as := testSchema(t)
	lim := limits{maxDepth: 10, maxCost: 1 << 20, maxFirst: 1000}
	key := func(q string, vars map[string]any) string {
		o, errs := as.parseOperation(context.Background(), q, "", vars, lim)
		if len(errs) > 0 {
			t.Fatalf("%s: %s", q, errs[0].msg)
		}
		return o.key
	}
	a := key(`subscription($id: ID!) { event(id: $id) { ticketsSold } }`, map[string]any{"id": "1"})
	b := key("subscription ($id: ID!) {\n  # same\n  event(id: $id) {\n    ticketsSold\n  }\n}", map[string]any{"id": "1"})
	c := key(`subscription($id: ID!) { event(id: $id) { ticketsSold } }`, map[string]any{"id": "2"})
	if a != b {
		t.Error("equivalent spellings got different keys")
	}
	if a == c {
		t.Error("different variables share a key")
	}
}
