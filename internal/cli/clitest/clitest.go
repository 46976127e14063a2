// Package clitest runs a test binary as echain-indexer or echain-dev in a child process, so that
// signals, exit codes and restarts in tests are the real ones, and reads what the child serves.
package clitest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// asBinary names the command line a child test binary runs instead of the tests.
const asBinary = "ECHAIN_TEST_AS_BINARY"

// RunAs is for TestMain: in a child started by Start it runs the named binary's main and exits;
// in the test process itself it returns.
func RunAs(mains map[string]func() int) {
	name := os.Getenv(asBinary)
	if name == "" {
		return
	}
	m, ok := mains[name]
	if !ok {
		os.Stderr.WriteString("clitest: this test binary cannot run as " + name + "\n")
		os.Exit(3)
	}
	os.Exit(m())
}

// Buffer collects a child's output while the test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Child is a running child process.
type Child struct {
	t              *testing.T
	Name           string
	Cmd            *exec.Cmd
	Stdout, Stderr *Buffer
	done           chan struct{}
	code           int
}

// ConfigFreeEnv is the process environment without configuration (ECHAIN_*, DATABASE_URL), so
// that a child sees only what a test sets.
func ConfigFreeEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "ECHAIN_") || name == "DATABASE_URL" || name == asBinary {
			continue
		}
		out = append(out, kv)
	}
	return out
}

func cleanEnv(binary string) []string {
	return append(ConfigFreeEnv(), asBinary+"="+binary)
}

// Start runs the test binary as binary (a name RunAs knows) with args, the environment env on top
// of one without configuration, in an empty directory (no ./config.yaml). The child is killed
// when the test ends; a data race in it fails the test.
func Start(t *testing.T, binary string, env []string, args ...string) *Child {
	t.Helper()
	c := &Child{t: t, Name: strings.Join(args, " "), Stdout: &Buffer{}, Stderr: &Buffer{}, done: make(chan struct{})}
	c.Cmd = exec.Command(os.Args[0], args...)
	c.Cmd.Env = append(cleanEnv(binary), env...)
	c.Cmd.Dir = t.TempDir()
	c.Cmd.Stdout, c.Cmd.Stderr = c.Stdout, c.Stderr
	if err := c.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = c.Cmd.Wait()
		c.code = c.Cmd.ProcessState.ExitCode()
		close(c.done)
	}()
	t.Cleanup(func() {
		c.Kill()
		if t.Failed() {
			t.Logf("%s: stdout:\n%s\nstderr:\n%s", c.Name, Tail(c.Stdout.String(), 40), Tail(c.Stderr.String(), 40))
		}
		// A data race in a child fails the test wherever it happened (the child exits 66).
		if err := c.Stderr.String(); strings.Contains(err, "WARNING: DATA RACE") {
			i := strings.Index(err, "WARNING: DATA RACE")
			t.Errorf("%s: data race:\n%s", c.Name, Tail(err[i:], 1000)[:min(len(err)-i, 12000)])
		}
	})
	return c
}

// Kill ends the child with SIGKILL unless it has exited already, and waits for it.
func (c *Child) Kill() {
	select {
	case <-c.done:
	default:
		_ = c.Cmd.Process.Kill()
		<-c.done
	}
}

// Stop sends sig and returns the exit code and how long the exit took.
func (c *Child) Stop(sig os.Signal, within time.Duration) (int, time.Duration) {
	c.t.Helper()
	start := time.Now()
	if err := c.Cmd.Process.Signal(sig); err != nil {
		c.t.Fatalf("%s: signal: %v", c.Name, err)
	}
	select {
	case <-c.done:
		return c.code, time.Since(start)
	case <-time.After(within):
		c.t.Fatalf("%s: still running %s after %s", c.Name, within, sig)
		return -1, 0
	}
}

// WaitFor is WaitFor that also fails as soon as the child exits.
func (c *Child) WaitFor(within time.Duration, what string, cond func() bool) {
	c.t.Helper()
	WaitFor(c.t, within, what, func() bool {
		select {
		case <-c.done:
			c.t.Fatalf("%s exited (code %d) while waiting for %s", c.Name, c.code, what)
		default:
		}
		return cond()
	})
}

// Wait waits for the child to exit and returns its exit code.
func (c *Child) Wait(within time.Duration) int {
	c.t.Helper()
	select {
	case <-c.done:
		return c.code
	case <-time.After(within):
		c.t.Fatalf("%s: did not exit within %s", c.Name, within)
		return -1
	}
}

// Tail is the last lines of s.
func Tail(s string, lines int) string {
	ls := strings.Split(s, "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// FreePort is a free 127.0.0.1 address.
func FreePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// WaitFor polls cond until it holds; after within it fails the test naming what it waited for.
func WaitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// HTTPGet returns the status and body of a GET.
func HTTPGet(url string) (int, []byte, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// GraphQLTotals asks the API for the number of events and the tickets sold.
func GraphQLTotals(t *testing.T, apiURL string) (events, tickets int) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"query": `{ events(first: 1000) { ticketsSold } }`})
	resp, err := http.Post(apiURL+"/graphql", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Events []struct{ TicketsSold string } `json:"events"`
		}
		Errors []any
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || len(r.Errors) > 0 {
		t.Fatalf("graphql: %v %v", err, r.Errors)
	}
	for _, e := range r.Data.Events {
		n, _ := strconv.Atoi(e.TicketsSold)
		tickets += n
	}
	return len(r.Data.Events), tickets
}

// Scrape reads /metrics into name{labels} -> value, summing series by name as well.
func Scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	code, body, err := HTTPGet(base + "/metrics")
	if err != nil || code != 200 {
		t.Fatalf("/metrics: %d %v", code, err)
	}
	out := map[string]float64{}
	for _, line := range ScanLines(string(body)) {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		series := line[:i]
		name := series
		if j := strings.IndexByte(series, '{'); j >= 0 {
			name = series[:j]
			out[series] = v
			// Also index by a subset of labels in the order the test writes them.
			for _, sub := range labelSubsets(series[j+1 : len(series)-1]) {
				out[name+"{"+sub+"}"] += v
			}
		}
		out[name] += v
	}
	return out
}

// labelSubsets returns each single label and each pair in order (a="x",b="y").
func labelSubsets(labels string) []string {
	parts := strings.Split(labels, ",")
	var out []string
	for i, p := range parts {
		out = append(out, p)
		for _, q := range parts[i+1:] {
			out = append(out, p+","+q)
		}
	}
	return out
}

// ScanLines splits s into lines.
func ScanLines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// StopGroup ends a child started in a process group of its own (Setpgid): SIGTERM to the group,
// then SIGKILL when the child has not exited within grace. exited delivers the child's Wait.
func StopGroup(pid int, exited <-chan error, grace time.Duration) {
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(grace):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-exited
	}
}
