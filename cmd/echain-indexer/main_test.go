package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/echain/echain-indexer/config"
	"github.com/echain/echain-indexer/devchain"
	"github.com/echain/echain-indexer/store"
	"github.com/echain/echain-indexer/store/storetest"
)

// asBinary makes the test binary behave as echain-indexer: tests start it as a child process,
// so signals, exit codes and restarts are the real ones.
const asBinary = "ECHAIN_TEST_AS_BINARY"

func TestMain(m *testing.M) {
	if os.Getenv(asBinary) == "1" {
		os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(storetest.Run(m))
}

// syncBuffer collects a child's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type child struct {
	t              *testing.T
	name           string
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{}
	code           int
}

// cleanEnv is the environment without configuration, so that children see only what a test sets.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "ECHAIN_") || name == "DATABASE_URL" {
			continue
		}
		out = append(out, kv)
	}
	return append(out, asBinary+"=1")
}

func startChild(t *testing.T, env []string, args ...string) *child {
	t.Helper()
	c := &child{t: t, name: strings.Join(args, " "), stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	c.cmd = exec.Command(os.Args[0], args...)
	c.cmd.Env = append(cleanEnv(), env...)
	c.cmd.Dir = t.TempDir() // no ./config.yaml: the built-in configuration plus env
	c.cmd.Stdout, c.cmd.Stderr = c.stdout, c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = c.cmd.Wait()
		c.code = c.cmd.ProcessState.ExitCode()
		close(c.done)
	}()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			_ = c.cmd.Process.Kill()
			<-c.done
		}
		if t.Failed() {
			t.Logf("%s: stdout:\n%s\nstderr:\n%s", c.name, tail(c.stdout.String(), 40), tail(c.stderr.String(), 40))
		}
		// A data race in a child fails the test wherever it happened (the child exits 66).
		if err := c.stderr.String(); strings.Contains(err, "WARNING: DATA RACE") {
			i := strings.Index(err, "WARNING: DATA RACE")
			t.Errorf("%s: data race:\n%s", c.name, tail(err[i:], 1000)[:min(len(err)-i, 12000)])
		}
	})
	return c
}

// stop sends sig and returns the exit code and how long the exit took.
func (c *child) stop(sig os.Signal, within time.Duration) (int, time.Duration) {
	c.t.Helper()
	start := time.Now()
	if err := c.cmd.Process.Signal(sig); err != nil {
		c.t.Fatalf("%s: signal: %v", c.name, err)
	}
	select {
	case <-c.done:
		return c.code, time.Since(start)
	case <-time.After(within):
		c.t.Fatalf("%s: still running %s after %s", c.name, within, sig)
		return -1, 0
	}
}

// waitFor is waitFor that also fails as soon as the child exits.
func (c *child) waitFor(within time.Duration, what string, cond func() bool) {
	c.t.Helper()
	waitFor(c.t, within, what, func() bool {
		select {
		case <-c.done:
			c.t.Fatalf("%s exited (code %d) while waiting for %s", c.name, c.code, what)
		default:
		}
		return cond()
	})
}

func (c *child) wait(within time.Duration) int {
	c.t.Helper()
	select {
	case <-c.done:
		return c.code
	case <-time.After(within):
		c.t.Fatalf("%s: did not exit within %s", c.name, within)
		return -1
	}
}

func tail(s string, lines int) string {
	ls := strings.Split(s, "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func httpGet(url string) (int, []byte, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// TestBadConfigIsOneLine: every way of giving a bad value stops the process before it does
// anything, with exit code 2 and a single line naming the key.
func TestBadConfigIsOneLine(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "bad.yaml")
	os.WriteFile(file, []byte("api:\n  max_frist: 10\n"), 0o644)
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

// TestDevchainMatchesDefaultConfig: the top level of config.yaml indexes the dev chain as
// `echain-indexer devchain` deploys it, with no flags.
func TestDevchainMatchesDefaultConfig(t *testing.T) {
	t.Chdir(t.TempDir())
	cfg, _, err := config.Load(config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	chain, err := devchain.Start(context.Background(), devchain.Config{Seed: cfg.Devchain.Seed, MetadataAddr: "off"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer chain.Close()
	a := chain.Addresses
	for _, c := range []struct {
		cfg  config.Contract
		addr any
	}{
		{cfg.Contracts.EventFactory, a.EventFactory}, {cfg.Contracts.Marketplace, a.Marketplace},
		{cfg.Contracts.POAPAttendance, a.POAPAttendance}, {cfg.Contracts.IncentiveManager, a.IncentiveManager},
	} {
		if c.cfg.Address != c.addr || c.cfg.StartBlock.Number != a.StartBlock {
			t.Errorf("config.yaml has %s at %s from block %d; the dev chain deploys it at %s in block %d",
				c.cfg.Name, c.cfg.Address.Hex(), c.cfg.StartBlock.Number, c.addr, a.StartBlock)
		}
	}
	if cfg.ChainID != devchain.ChainID {
		t.Errorf("chain_id %d, dev chain %d", cfg.ChainID, devchain.ChainID)
	}
}

// TestDevchainCommand: `devchain` serves JSON-RPC on the configured ports, produces blocks with
// traffic, and stops cleanly on SIGTERM.
func TestDevchainCommand(t *testing.T) {
	httpAddr, wsAddr, metaAddr := freePort(t), freePort(t), freePort(t)
	c := startChild(t, []string{
		"ECHAIN_DEVCHAIN_HTTP_LISTEN=" + httpAddr, "ECHAIN_DEVCHAIN_WS_LISTEN=" + wsAddr,
		"ECHAIN_DEVCHAIN_METADATA_LISTEN=" + metaAddr, "ECHAIN_DEVCHAIN_BLOCK_TIME=50ms",
	}, "devchain")
	c.waitFor(60*time.Second, "the devchain banner", func() bool { return strings.Contains(c.stdout.String(), "IncentiveManager") })
	out := c.stdout.String()
	for _, want := range []string{`http://` + httpAddr, `ws://` + wsAddr, `EventFactory\s+0xf9d1a0aE6Ef88328FfC7B71Cf555Ed86744e0211`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("banner lacks %q:\n%s", want, out)
		}
	}
	head := func() int64 {
		body := `{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}`
		resp, err := http.Post("http://"+httpAddr, "application/json", strings.NewReader(body))
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		var r struct{ Result string }
		json.NewDecoder(resp.Body).Decode(&r)
		var n int64
		fmt.Sscanf(r.Result, "0x%x", &n)
		return n
	}
	first := head()
	c.waitFor(30*time.Second, "blocks with traffic", func() bool { return head() >= first+3 })
	if code, took := c.stop(syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Fatalf("exit %d after %s", code, took)
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

func scanLines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}
