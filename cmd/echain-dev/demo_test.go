package main

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/echain/echain-indexer/internal/cli/clitest"
	"github.com/echain/echain-indexer/store/storetest"
)

// TestDemo runs `demo` as `make demo` does: it must print the GraphQL URL, answer with events and
// tickets sold growing, take the dev chain's webhooks as hints, and on Ctrl-C stop everything and
// drop its database.
func TestDemo(t *testing.T) {
	server := storetest.ServerURL(t)
	api, met := clitest.FreePort(t), clitest.FreePort(t)
	// The dev chain's addresses, and the endpoints that point at them: what the default
	// configuration does on 127.0.0.1:8545 and 8546, on ports of this test's own.
	httpL, wsL := clitest.FreePort(t), clitest.FreePort(t)
	conf := []string{"ECHAIN_API_LISTEN=" + api, "ECHAIN_METRICS_LISTEN=" + met,
		"ECHAIN_DEVCHAIN_HTTP_LISTEN=" + httpL, "ECHAIN_DEVCHAIN_WS_LISTEN=" + wsL, "ECHAIN_DEVCHAIN_METADATA_LISTEN=" + clitest.FreePort(t),
		"ECHAIN_RPC_HTTP_URL=http://" + httpL, "ECHAIN_RPC_WS_URL=ws://" + wsL}
	started := time.Now()
	c := clitest.Start(t, "echain-dev", append([]string{"DATABASE_URL=" + server, "ECHAIN_DEVCHAIN_BLOCK_TIME=250ms"}, conf...), "demo")
	c.WaitFor(60*time.Second, "the first GraphQL answer", func() bool { return strings.Contains(c.Stdout.String(), "first GraphQL answer") })
	t.Logf("first GraphQL answer %s after start", time.Since(started).Round(10*time.Millisecond))
	out := c.Stdout.String()
	if !strings.Contains(out, "GraphQL:    http://"+api+"/graphql") {
		t.Errorf("no GraphQL URL in:\n%s", out)
	}
	if !strings.Contains(out, "dev chain:  ws://"+wsL+" ") {
		t.Errorf("the dev chain is not on devchain.ws_listen %s:\n%s", wsL, out)
	}
	db := regexp.MustCompile(`database (echain_demo_[0-9a-f]+) on`).FindStringSubmatch(out)
	if db == nil {
		t.Fatalf("no database name in:\n%s", out)
	}

	// Events and tickets sold grow, as GraphQL reports them.
	line := regexp.MustCompile(`block (\d+): (\d+) events, (\d+) tickets sold`)
	var firstSold, lastSold int
	c.WaitFor(60*time.Second, "tickets sold to grow", func() bool {
		ms := line.FindAllStringSubmatch(c.Stdout.String(), -1)
		if len(ms) < 2 {
			return false
		}
		firstSold, _ = strconv.Atoi(ms[0][3])
		lastSold, _ = strconv.Atoi(ms[len(ms)-1][3])
		events, _ := strconv.Atoi(ms[len(ms)-1][2])
		return lastSold > firstSold && events > 0
	})
	events, sold := clitest.GraphQLTotals(t, "http://"+api)
	if events == 0 || sold < lastSold {
		t.Errorf("GraphQL now: %d events, %d tickets sold; the demo printed %d", events, sold, lastSold)
	}
	// The status line the demo prints works from another shell with the same configuration: it
	// finds the demo's database, chain and running indexer, and needs no flags for the addresses
	// that configuration already has.
	hint := regexp.MustCompile(`status: +ECHAIN_DATABASE_URL=('([^']*)'|<[^>]*>) \S+ (.*)`).FindStringSubmatch(out)
	if hint == nil {
		t.Fatalf("no status line in:\n%s", out)
	}
	dbURL := hint[2]
	if dbURL == "" { // a password was not printed
		var err error
		if dbURL, err = withDatabase(server, db[1]); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Contains(hint[3], "--rpc-http-url") || strings.Contains(hint[3], "--indexer-url") {
		t.Errorf("the status line repeats addresses the configuration has: %s", hint[0])
	}
	st := clitest.Start(t, "echain-indexer", append([]string{"ECHAIN_DATABASE_URL=" + dbURL}, conf...), strings.Fields(hint[3])...)
	if code := st.Wait(60 * time.Second); code != 0 {
		t.Fatalf("%s: exit %d\n%s", hint[0], code, st.Stderr)
	}
	for _, want := range []string{"indexed ", "realtime, leader", " ok"} {
		if !strings.Contains(st.Stdout.String(), want) {
			t.Errorf("%s: output lacks %q:\n%s", hint[0], want, st.Stdout)
		}
	}
	if strings.Contains(st.Stdout.String(), "chain head       -") {
		t.Errorf("%s: no chain head:\n%s", hint[0], st.Stdout)
	}

	// The dev chain's signed webhooks reach the indexer as hints.
	c.WaitFor(90*time.Second, "webhook hints", func() bool {
		m := clitest.Scrape(t, "http://"+met)
		return m["echain_indexer_hints_total"] > 0 && m[`echain_indexer_http_requests_total{code="200",handler="webhook"}`] > 0
	})

	code, took := c.Stop(syscall.SIGINT, 30*time.Second)
	if code != 0 {
		t.Fatalf("demo exit %d after Ctrl-C", code)
	}
	t.Logf("demo stopped in %s", took.Round(10*time.Millisecond))
	if !strings.HasSuffix(c.Stdout.String(), "demo stopped\n") {
		t.Errorf("output does not end with 'demo stopped':\n%s", clitest.Tail(c.Stdout.String(), 5))
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var left int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname = $1`, db[1]).Scan(&left); err != nil || left != 0 {
		t.Errorf("database %s still there after the demo (%d, %v)", db[1], left, err)
	}
}
