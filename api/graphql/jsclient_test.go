package graphql

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/echain/echain-indexer/api/graphql/internal/gqltest"
)

// npmDeps installs the pinned client packages (package-lock.json) unless node_modules has them.
func npmDeps(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@apollo", "client", "package.json")); err == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
}

// stripTypename removes the __typename Apollo adds to every selection, after checking it.
func stripTypename(t *testing.T, v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, val := range x {
			if k == "__typename" {
				if s, _ := val.(string); s == "" {
					t.Errorf("empty __typename")
				}
				continue
			}
			out[k] = stripTypename(t, val)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = stripTypename(t, val)
		}
		return out
	}
	return v
}

// TestApolloClient runs the frontend's query shapes through Apollo Client in Node (POST and
// GET) against the running server and checks it gets exactly the server's answers, and that a
// refused query reaches it as a GraphQL error naming the limit.
func TestApolloClient(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is needed for the client test: %v", err)
	}
	dir, err := filepath.Abs("clienttest")
	if err != nil {
		t.Fatal(err)
	}
	npmDeps(t, dir)
	sch, pool := smallStore(t)
	h := newHandler(t, sch, pool, Options{})
	srv := httptest.NewServer(h)
	defer srv.Close()

	owner := fmt.Sprintf("0x%x", gqltest.BulkInfo(gqltest.Sizes{Owners: 20}).Owners[3])
	spec := map[string]any{
		"queries": map[string]string{
			"EventPage":  qEventWithTickets,
			"Events":     qEventsPage,
			"MyTickets":  qOwnerTickets,
			"Tickets":    qEventTickets,
			"Analytics":  qEventAnalytics,
			"Meta":       `query Meta { _meta { block { number hash timestamp parentHash } deployment hasIndexingErrors } }`,
			"TimeTravel": `query TT($b: Block_height) { events(block: $b, first: 3) { id title } }`,
		},
		"variables": map[string]any{
			"EventPage":  map[string]any{"id": "7"},
			"Events":     map[string]any{"skip": 4},
			"MyTickets":  map[string]any{"owner": owner},
			"Tickets":    map[string]any{"id": "3"},
			"Analytics":  map[string]any{"id": "5"},
			"TimeTravel": map[string]any{"b": map[string]any{"number_gte": 1}},
		},
	}
	specFile := filepath.Join(t.TempDir(), "spec.json")
	b, _ := json.Marshal(spec)
	if err := os.WriteFile(specFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "client.mjs"), srv.URL+"/subgraphs/name/echain", specFile)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node client: %v\n%s", err, stderr.String())
	}
	var got map[string]map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("client output: %v: %s", err, out)
	}
	for _, mode := range []string{"post", "get"} {
		for name, q := range spec["queries"].(map[string]string) {
			vars, _ := spec["variables"].(map[string]any)[name].(map[string]any)
			direct := gqltest.Post(t, h, q, vars)
			if len(direct.Errors) > 0 {
				t.Fatalf("%s: %s", name, direct.Raw)
			}
			sameJSON(t, mode+" "+name, stripTypename(t, got[mode][name]), direct.Data)
		}
		le, _ := got[mode]["limitError"].(map[string]any)
		if le == nil || le["code"] != "LIMIT_FIRST" {
			t.Fatalf("%s: the refused query should reach Apollo as LIMIT_FIRST: %v", mode, got[mode]["limitError"])
		}
	}
	if ev, _ := got["post"]["EventPage"].(map[string]any)["event"].(map[string]any); ev == nil || ev["__typename"] != "Event" || len(ev["tickets"].([]any)) != 10 {
		t.Fatalf("event page through Apollo: %v", got["post"]["EventPage"])
	}
}
