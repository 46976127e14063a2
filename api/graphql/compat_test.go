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
		// graph-node takes a String for an enum when it names one of its values, and an Int
		// for an ID (as its decimal string).
		{"String in enum positions", `query($o: String, $d: String!) { events(first: 4, orderBy: $o, orderDirection: $d) { id title } }`,
			`query($o: Event_orderBy, $d: OrderDirection!) { events(first: 4, orderBy: $o, orderDirection: $d) { id title } }`, map[string]any{"o": "title", "d": "desc"}},
		{"String with a default in an enum position", `query($o: String = "title") { events(first: 4, orderBy: $o) { id title } }`,
			`query { events(first: 4, orderBy: title) { id title } }`, nil},
		{"Int in an ID! position", `query Ev($id: Int) { event(id: $id) { id title } }`,
			`query Ev($id: ID!) { event(id: $id) { id title } }`, map[string]any{"id": 7}},
		{"Int! in an ID position of a filter", `query($after: Int!) { events(first: 3, orderBy: id, where: {id_gt: $after}) { id } }`,
			`query { events(first: 3, orderBy: id, where: {id_gt: "3"}) { id } }`, map[string]any{"after": 3}},
		{"Strings in a list of IDs", `query($ids: [String!]) { events(orderBy: id, where: {id_in: $ids}) { id } }`,
			`query($ids: [ID!]) { events(orderBy: id, where: {id_in: $ids}) { id } }`, map[string]any{"ids": []any{"2", "5"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := gqltest.Post(t, fast, c.exact, exactVars(c.vars))
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
	// What graph-node refuses while coercing variable values (it does not validate documents by
	// default), refused with its texts (graphql/src/execution/query.rs, values/coercion.rs), by
	// queries and subscriptions alike.
	refused := []struct {
		q    string
		vars map[string]any
		want string
	}{
		{`query($x: Event) { event(id: $x) { id } }`, map[string]any{"x": "5"}, "Variable `x` must have an input type"},
		{`query($x: Nope) { event(id: $x) { id } }`, map[string]any{"x": "5"}, "Variable `x` must have an input type"},
		{`query($id: ID!) { event(id: $id) { id } }`, nil, "No value provided for required variable `id`"},
		{`query($n: Int!) { events(first: $n) { id } }`, map[string]any{"n": nil}, "Invalid value provided for argument `n`: Null"},
		{`query($n: Int) { events(first: $n) { id } }`, map[string]any{"n": "5"}, "Invalid value provided for argument `n`: String(\"5\")"},
		{`query($n: Int) { events(first: $n) { id } }`, map[string]any{"n": 5.5}, "Invalid value provided for argument `n`: Float(5.5)"},
		{`query($n: Int) { events(first: $n) { id } }`, map[string]any{"n": 1 << 31}, "Invalid value provided for argument `n`: Int(2147483648)"},
		{`query($s: String) { events(first: 2, where: {title: $s}) { id } }`, map[string]any{"s": 5}, "Invalid value provided for argument `s`: Int(5)"},
		{`query($d: OrderDirection) { events(first: 2, orderBy: id, orderDirection: $d) { id } }`, map[string]any{"d": "sideways"}, "Invalid value provided for argument `d`: String(\"sideways\")"},
		{`query($w: Event_filter) { events(first: 2, where: $w) { id } }`, map[string]any{"w": map[string]any{"nope": 1}}, "Invalid value provided for argument `w`: Object({\"nope\": Int(1)})"},
		{`query($ids: [ID!]) { events(where: {id_in: $ids}) { id } }`, map[string]any{"ids": "1"}, "Invalid value provided for argument `ids`: String(\"1\")"},
		// Variables graph-node lets into a position of another type: the argument's own
		// coercion refuses what does not fit it.
		{`query($o: String) { events(first: 2, orderBy: $o) { id } }`, map[string]any{"o": "nope"}, "Invalid value provided for argument `orderBy`: String(\"nope\")"},
		{`query($d: OrderDirection) { events(first: 2, where: {title: $d}) { id } }`, map[string]any{"d": "asc"}, "Invalid value provided for argument `where`: Object({\"title\": Enum(\"asc\")})"},
		{`query($id: Int) { event(id: $id) { id } }`, nil, "Invalid value provided for argument `id`: Null"},
		{`query($id: String) { event(id: $id) { id } }`, map[string]any{"id": nil}, "Invalid value provided for argument `id`: Null"},
		{`query($n: String) { events(first: $n) { id } }`, map[string]any{"n": "5"}, "Invalid value provided for argument `first`: String(\"5\")"},
		{`query($t: Int) { events(first: 2, where: {title: $t}) { id } }`, map[string]any{"t": 5}, "Invalid value provided for argument `where`: Object({\"title\": Int(5)})"},
		{`query($ids: [String]) { events(where: {id_in: $ids}) { id } }`, map[string]any{"ids": []any{"1", nil}}, "Invalid value provided for argument `where`: Object({\"id_in\": List([String(\"1\"), Null])})"},
	}
	for _, c := range refused {
		for name, h := range map[string]*Handler{"fast path": fast, "graphql-go": ref} {
			r := gqltest.Post(t, h, c.q, c.vars)
			if len(r.Errors) != 1 || r.Errors[0]["message"] != c.want || len(r.Data) > 0 {
				t.Errorf("%s %v (%s): want the one error %q, got %s", c.q, c.vars, name, c.want, r.Raw)
			}
		}
		_, errs := fast.Engine().Prepare(context.Background(), Request{Query: "subscription" + c.q[len("query"):], Variables: c.vars})
		if len(errs) != 1 || errs[0].Message != c.want {
			t.Errorf("subscribe %s %v: want %q, got %v", c.q, c.vars, c.want, errs)
		}
	}
}

// exactVars is what the exactly typed query of a case takes: an Int in an ID is its decimal
// string.
func exactVars(vars map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range vars {
		if n, ok := v.(int); ok {
			v = fmt.Sprint(n)
		}
		out[k] = v
	}
	return out
}

// introspectionQuery is graphql-js's getIntrospectionQuery() as GraphiQL 3 sends it.
const introspectionQuery = `query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } }
}`

// TestIntrospectionWithinCost: GraphiQL and Apollo's tools introspect the schema first; the cost
// budget prices introspection lists by the schema's size (max_first would refuse it), and still
// refuses an introspection query that nests lists through types and fields to blow up.
func TestIntrospectionWithinCost(t *testing.T) {
	sch, pool := smallStore(t)
	h := newHandler(t, sch, pool, Options{})
	r := gqltest.Post(t, h, introspectionQuery, nil)
	if len(r.Errors) > 0 || r.Data["__schema"] == nil {
		t.Fatalf("the standard introspection query is refused: %.600s", r.Raw)
	}
	deep := `{ __schema { types { fields { type { fields { type { fields { type { fields { type { fields { name } } } } } } } } } } } }`
	r = gqltest.Post(t, h, deep, nil)
	if c := r.ErrorCodes(); len(c) == 0 || c[0] != "LIMIT_COST" {
		t.Fatalf("a nested introspection query should exceed max_cost: %.600s", r.Raw)
	}
}
