package graphql

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/echain/echain-indexer/api/graphql/internal/gqltest"
)

// TestFastPathMatchesGraphQLGo runs a corpus of requests (the frontend shapes, fragments,
// aliases, merged fields, __typename, _meta, time travel, variables in every position, and
// requests graphql-go refuses or answers with errors) through the engine with its fast path and
// with graphql-go's executor only, and requires the same response bytes. It also checks that the
// fast path served the plain successes, one round trip per level of nesting (a root, its
// references and one of its lists: one).
func TestFastPathMatchesGraphQLGo(t *testing.T) {
	sch, pool := smallStore(t)
	fast := newHandler(t, sch, pool, Options{}).Engine()
	ref := newHandler(t, sch, pool, Options{DisableFastPath: true}).Engine()
	owner := fmt.Sprintf("0x%x", gqltest.BulkInfo(gqltest.Sizes{Owners: 20}).Owners[3])
	head := gqltest.BulkInfo(gqltest.Sizes{}).Head

	type tc struct {
		name, query, op string
		vars            map[string]any
		at              int64
		// roundTrips > 0: a success the fast path must serve in that many round trips.
		roundTrips int
	}
	cases := []tc{
		{name: "event with tickets", query: benchEventWithTickets, vars: map[string]any{"id": "7"}, roundTrips: 1},
		{name: "owner tickets", query: benchOwnerTickets, vars: map[string]any{"owner": owner}, roundTrips: 1},
		{name: "events page", query: benchEventsPage, vars: map[string]any{"after": "0", "skip": float64(2)}, roundTrips: 1},
		{name: "meta", query: `{ _meta { __typename deployment hasIndexingErrors block { number hash parentHash timestamp __typename } } }`, roundTrips: 1},
		{name: "missing entity", query: `{ event(id: "nope") { id tickets { id } } }`, roundTrips: 1},
		{name: "aliases, typename, merged fields and fragments", query: `
query Q($n: Int = 3) {
  __typename
  a: events(first: $n, orderBy: id) { id __typename ...E ... on Event { title organizer { verified } } }
  b: events(first: 2, skip: 1, orderBy: title, orderDirection: desc) { title id }
  e: event(id: "3") { id organizer { id } organizer { events(first: 2) { id } } }
}
fragment E on Event { organizer { id __typename } tickets(first: 2, orderBy: tokenId) { id tokenId owner } }`, roundTrips: 2},
		{name: "nested filters and variables inside objects", query: `query($o: Bytes, $t: [String!]) {
  tickets(where: {owner: $o, event_: {status: "active"}, ticketType_in: $t}, orderBy: event__startTime, first: 5) { id event { id status } }
}`, vars: map[string]any{"o": owner, "t": []any{"standard", "vip"}}, roundTrips: 1},
		{name: "or and nulls", query: `{ events(where: {or: [{location: null}, {title_starts_with: "Event 1"}]}, first: 4) { id location imageUrl } }`, roundTrips: 1},
		{name: "time travel", query: fmt.Sprintf(`{ events(block: {number: %d}, first: 2) { id tickets(first: 1) { id } } _meta(block: {number: %d}) { block { number hash } } }`, head-1, head-1)},
		{name: "number_gte", query: fmt.Sprintf(`{ events(block: {number_gte: %d}, first: 1) { id } }`, head), roundTrips: 1},
		{name: "subscription operation", query: `subscription S { events(first: 2) { id } }`, roundTrips: 1},
		{name: "at block", query: `{ events(first: 2) { id } _meta { block { number } } }`, at: head - 2},
		{name: "two operations", query: `query A { events(first: 1) { id } } query B { tickets(first: 1) { id } }`, op: "B", roundTrips: 1},
		{name: "derived first 0", query: `{ events(first: 2) { id tickets(first: 0) { id } } }`, roundTrips: 1},
		// graphql-go answers these (errors, coercions): the fast path steps aside.
		{name: "block ahead", query: fmt.Sprintf(`{ events(block: {number: %d}) { id } }`, head+5)},
		{name: "first too big", query: `{ events(first: 5000) { id } }`},
		{name: "nested first too big", query: `{ events(first: 2) { id tickets(first: 5000) { id } } }`},
		{name: "unknown field", query: `{ events { nope } }`},
		{name: "missing variable", query: `query($id: ID!) { event(id: $id) { id } }`},
		{name: "wrong variable type", query: `query($n: Int) { events(first: $n) { id } }`, vars: map[string]any{"n": "x"}},
		{name: "float variable", query: `query($n: Int) { events(first: $n) { id } }`, vars: map[string]any{"n": 1.5}},
		{name: "null first", query: `query($n: Int) { events(first: $n) { id } }`},
		{name: "integer id", query: `{ event(id: 3) { id } }`},
		{name: "bad filter", query: `{ events(where: {startTime_gt: "abc"}) { id } }`},
		{name: "skip directive", query: `query($s: Boolean!) { events(first: 2) { id title @skip(if: $s) } }`, vars: map[string]any{"s": true}},
		{name: "introspection", query: `{ __type(name: "Event") { name } events(first: 1) { id } }`},
		{name: "escaped string", query: `{ events(where: {title: "a\"b"}) { id } }`},
		{name: "no such operation", query: `query A { events { id } }`, op: "B"},
	}
	ctx := context.Background()
	for _, c := range cases {
		req := Request{Query: c.query, OperationName: c.op, Variables: c.vars}
		want := ref.Execute(ctx, req, ExecOptions{AtBlock: c.at}).JSON()
		// graphql-go sees the same variables map; give each run its own copy.
		if c.vars != nil {
			raw, _ := json.Marshal(c.vars)
			_ = json.Unmarshal(raw, &req.Variables)
		}
		res := fast.Execute(ctx, req, ExecOptions{AtBlock: c.at})
		if got := res.JSON(); string(got) != string(want) && sortedErrors(t, got) != sortedErrors(t, want) {
			t.Errorf("%s:\n fast      %s\n graphqlgo %s", c.name, got, want)
			continue
		}
		if c.roundTrips > 0 && (len(res.Errors) > 0 || res.RoundTrips != c.roundTrips) {
			t.Errorf("%s: %d round trips, want %d (errors %v)", c.name, res.RoundTrips, c.roundTrips, res.Errors)
		}
	}
}

// sortedErrors renders a response with its errors in a fixed order: graphql-go resolves sibling
// fields concurrently, so the order of their errors varies from run to run.
func sortedErrors(t *testing.T, body []byte) string {
	var r struct {
		Data   json.RawMessage   `json:"data"`
		Errors []json.RawMessage `json:"errors"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	errs := make([]string, len(r.Errors))
	for i, e := range r.Errors {
		errs[i] = string(e)
	}
	slices.Sort(errs)
	return fmt.Sprintf("%s %v", r.Data, errs)
}
