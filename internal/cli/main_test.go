package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/echain/echain-indexer/devchain"
	"github.com/echain/echain-indexer/internal/cli/clitest"
	"github.com/echain/echain-indexer/store"
	"github.com/echain/echain-indexer/store/storetest"
)

func TestMain(m *testing.M) {
	// Tests start the test binary as echain-indexer in a child process, so signals, exit codes
	// and restarts are the real ones.
	clitest.RunAs(map[string]func() int{"echain-indexer": func() int { return Main(os.Args[1:], os.Stdout, os.Stderr) }})
	os.Exit(storetest.Run(m))
}

// child is echain-indexer running in a child process (clitest.Child, under the names these
// tests use).
type child struct {
	*clitest.Child
	stdout, stderr *clitest.Buffer
}

func startChild(t *testing.T, env []string, args ...string) *child {
	t.Helper()
	c := clitest.Start(t, "echain-indexer", env, args...)
	return &child{Child: c, stdout: c.Stdout, stderr: c.Stderr}
}

func (c *child) stop(sig os.Signal, within time.Duration) (int, time.Duration) {
	return c.Stop(sig, within)
}

func (c *child) waitFor(within time.Duration, what string, cond func() bool) {
	c.WaitFor(within, what, cond)
}

func (c *child) wait(within time.Duration) int { return c.Wait(within) }

func freePort(t *testing.T) string { return clitest.FreePort(t) }

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	clitest.WaitFor(t, within, what, cond)
}

func httpGet(url string) (int, []byte, error) { return clitest.HTTPGet(url) }

func scanLines(s string) []string { return clitest.ScanLines(s) }

func graphqlTotals(t *testing.T, apiURL string) (events, tickets int) {
	return clitest.GraphQLTotals(t, apiURL)
}

func scrape(t *testing.T, base string) map[string]float64 { return clitest.Scrape(t, base) }

// TestBadConfigIsOneLine: every way of giving a bad value stops the process before it does
// anything, with exit code 2 and a single line naming the key.
func TestBadConfigIsOneLine(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "bad.yaml")
	os.WriteFile(file, []byte("api:\n  max_frist: 10\n"), 0o644)
	malformed := filepath.Join(dir, "malformed.yaml")
	os.WriteFile(malformed, []byte("api: [\n"), 0o644)
	secret := filepath.Join(dir, "secret.yaml")
	os.WriteFile(secret, []byte("database:\n  url: postgres://u:pw@db/x\n"), 0o644)
	cases := []struct {
		env  []string
		args []string
		want string
	}{
		{[]string{"ECHAIN_RPC_WS_URL=https://node.example/ws/KEY"}, []string{"run"},
			"config: rpc.ws_url: https://node.example/… is not a ws:// or wss:// URL (from $ECHAIN_RPC_WS_URL)"},
		{nil, []string{"run", "--set", "shutdown_timeout=soon"},
			`config: shutdown_timeout: "soon" is not a duration like 30s, 500ms or 5m (from --set shutdown_timeout)`},
		{nil, []string{"status", "--config", file},
			"config: api.max_frist: unknown key (did you mean api.max_first?) (from " + file + ")"},
		{nil, []string{"migrate", "--config", secret},
			"config: database.url: a secret is read from the environment only (ECHAIN_DATABASE_URL); remove it from the file (from " + secret + ")"},
		{[]string{"ECHAIN_PROFILE=mainnet"}, []string{"serve"},
			`config: profile: no profile "mainnet" (profiles: base-sepolia) (from $ECHAIN_PROFILE)`},
		{nil, []string{"resync"}, "resync: give exactly one of --from-block N and --from-start"},
		{nil, []string{"migrate"}, "config: database.url: no database named: create one for the indexer " +
			"(createuser echain; createdb -O echain echain) and set ECHAIN_DATABASE_URL=postgres://echain@127.0.0.1:5432/echain"},
		{nil, []string{"run", "--config", filepath.Join(dir, "none.yaml")},
			"config: " + filepath.Join(dir, "none.yaml") + ": no such file or directory (from --config)"},
		{[]string{"ECHAIN_CONFIG=" + malformed}, []string{"run"},
			"config: " + malformed + ": does not parse: yaml: line 1: did not find expected node content (from $ECHAIN_CONFIG)"},
	}
	for _, tc := range cases {
		c := startChild(t, tc.env, tc.args...)
		if code := c.wait(30 * time.Second); code != exitConfig {
			t.Errorf("%v %v: exit %d, want %d", tc.env, tc.args, code, exitConfig)
		}
		got := c.stderr.String()
		if got != tc.want+"\n" {
			t.Errorf("%v %v:\n got %q\nwant %q", tc.env, tc.args, got, tc.want)
		}
	}
}

func TestVersion(t *testing.T) {
	c := startChild(t, nil, "version", "--json")
	if code := c.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit %d: %s", code, c.stderr)
	}
	var b buildInfo
	if err := json.Unmarshal([]byte(c.stdout.String()), &b); err != nil || b.GoVersion == "" || b.Version == "" {
		t.Fatalf("version --json: %v %q", err, c.stdout)
	}
}

// headOf reads the cursor from the database.
func headOf(t *testing.T, dbURL string) (int64, string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	h, err := store.ReadHead(ctx, conn)
	if errors.Is(err, store.ErrNotMigrated) {
		return -1, ""
	}
	if err != nil {
		t.Fatal(err)
	}
	if h == nil {
		return -1, ""
	}
	return h.Number, h.Hash.Hex()
}

func liveOf(url string) (*liveStatus, error) {
	code, body, err := httpGet(url + "/status")
	if err != nil {
		return nil, err
	}
	if code != 200 {
		return nil, fmt.Errorf("status %d", code)
	}
	var l liveStatus
	return &l, json.Unmarshal(body, &l)
}

// stepper returns step(n), which seals n blocks of traffic or fails the test.
func stepper(ctx context.Context, t *testing.T, traffic *devchain.Traffic) func(n int) {
	return func(n int) {
		t.Helper()
		for range n {
			if _, err := traffic.Step(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
}
