package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/echain/echain-indexer/devchain"
	"github.com/echain/echain-indexer/internal/cli/clitest"
	"github.com/echain/echain-indexer/store/storetest"
)

// recipeMarker precedes the README's Base Sepolia recipe: the code block after it is what
// TestREADMEBaseSepoliaRecipe runs.
const recipeMarker = "<!-- recipe: base-sepolia (run by internal/cli/recipe_test.go) -->"

// recipe is the README's Base Sepolia code block: its `export NAME=VALUE` lines and the rest.
type recipe struct {
	env      [][2]string // in order
	commands string
}

func readRecipe(t *testing.T, readme string) recipe {
	t.Helper()
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), recipeMarker)
	if !ok {
		t.Fatalf("README.md has no %q", recipeMarker)
	}
	m := regexp.MustCompile("(?s)^\\s*```sh\\n(.*?)\\n```").FindStringSubmatch(after)
	if m == nil {
		t.Fatalf("README.md: no ```sh block right after %q", recipeMarker)
	}
	var r recipe
	var cmds []string
	export := regexp.MustCompile(`^export ([A-Z_][A-Z0-9_]*)=(.*)$`)
	for _, line := range strings.Split(m[1], "\n") {
		if e := export.FindStringSubmatch(strings.TrimSpace(line)); e != nil {
			r.env = append(r.env, [2]string{e[1], strings.Trim(e[2], `'"`)})
			continue
		}
		cmds = append(cmds, line)
	}
	r.commands = strings.Join(cmds, "\n")
	if len(r.env) == 0 || strings.TrimSpace(r.commands) == "" {
		t.Fatalf("README recipe has no exports or no commands:\n%s", m[1])
	}
	return r
}

// TestREADMEBaseSepoliaRecipe runs the README's "Index Base Sepolia" recipe literally, from the
// checkout (the same commands, variable names and profile), against the Base Sepolia lookalike
// dev chain; the placeholders (<key>, <password>) get the lookalike's URLs and a fresh test
// database. The only additions are free ports for the API and metrics and the lookalike's
// metadata server (a test does not reach the internet). Entities must appear over GraphQL.
func TestREADMEBaseSepoliaRecipe(t *testing.T) {
	ctx := context.Background()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	r := readRecipe(t, filepath.Join(root, "README.md"))

	log := slog.New(slog.DiscardHandler)
	chain, err := devchain.Start(ctx, devchain.Config{Like: "base-sepolia"}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer chain.Close()
	traffic := devchain.NewTraffic(chain, devchain.TrafficConfig{TxsPerBlock: 4}, log)
	step := stepper(ctx, t, traffic)
	step(30)

	placeholders := map[string]string{
		"ECHAIN_RPC_WS_URL":   chain.WSURL,
		"ECHAIN_RPC_HTTP_URL": chain.HTTPURL,
		"ECHAIN_DATABASE_URL": storetest.NewDB(t),
	}
	env := clitest.ConfigFreeEnv()
	for _, kv := range r.env {
		v := kv[1]
		if strings.Contains(v, "<") {
			sub, ok := placeholders[kv[0]]
			if !ok {
				t.Fatalf("README recipe: %s=%s has a placeholder this test does not know how to fill", kv[0], v)
			}
			v = sub
		}
		env = append(env, kv[0]+"="+v)
	}
	apiAddr := freePort(t)
	env = append(env, "ECHAIN_API_LISTEN="+apiAddr, "ECHAIN_METRICS_LISTEN="+freePort(t),
		"ECHAIN_METADATA_GATEWAY="+chain.MetadataGateway)

	cmd := exec.Command("bash", "-euo", "pipefail", "-c", r.commands)
	cmd.Dir = root
	cmd.Env = env
	var out clitest.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // make and the indexer stop together
	started := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		clitest.StopGroup(cmd.Process.Pid, done, 30*time.Second)
		if t.Failed() {
			t.Logf("recipe output:\n%s", clitest.Tail(out.String(), 60))
		}
	}()

	var events, tickets int
	var firstAt time.Duration
	lastStep := time.Now()
	deadline := time.Now().Add(10 * time.Minute) // a cold `make build` on a busy 2-core machine
	for {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("the recipe exited (%v) before entities appeared", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no entities over GraphQL within 10 minutes of running the recipe (events %d, tickets %d)", events, tickets)
		}
		if e, k, err := countEntities("http://" + apiAddr); err == nil {
			if e > 0 && firstAt == 0 {
				firstAt = time.Since(started)
			}
			events, tickets = e, k
			if s := traffic.Stats(); e == s.Events && k == s.Tickets && e > 0 && k > 0 {
				break
			}
		}
		if time.Since(lastStep) > time.Second { // a block a second, like Base's two
			step(1)
			lastStep = time.Now()
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("recipe: first entities %s after it started, all %d events and %d tickets sold after %s",
		firstAt.Round(time.Second), events, tickets, time.Since(started).Round(time.Second))
	for _, want := range []string{"start block found", "ECHAIN_CONTRACTS_EVENT_FACTORY_START_BLOCK="} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the run did not log %q", want)
		}
	}
}

// countEntities asks the API for the number of events and tickets sold.
func countEntities(apiURL string) (events, tickets int, err error) {
	body, _ := json.Marshal(map[string]string{"query": `{ events(first: 1000) { ticketsSold } }`})
	resp, err := http.Post(apiURL+"/graphql", "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Events []struct {
				TicketsSold json.Number `json:"ticketsSold"`
			} `json:"events"`
		}
		Errors []any
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, 0, err
	}
	if len(r.Errors) > 0 {
		return 0, 0, fmt.Errorf("graphql: %v", r.Errors)
	}
	for _, e := range r.Data.Events {
		n, _ := e.TicketsSold.Int64()
		tickets += int(n)
	}
	return len(r.Data.Events), tickets, nil
}
