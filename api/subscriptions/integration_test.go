package subscriptions_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/echain/echain-indexer/api/subscriptions"
	"github.com/echain/echain-indexer/devchain"
	"github.com/echain/echain-indexer/indexer"
	"github.com/echain/echain-indexer/indexer/echain"
	"github.com/echain/echain-indexer/indexer/source"
	"github.com/echain/echain-indexer/schema"
	"github.com/echain/echain-indexer/store"
)

// The leader-kill test runs indexers in child processes: this test binary re-executed with
// childEnv set to a JSON indexerSetup.
const childEnv = "ECHAIN_SUBS_TEST_INDEXER"

// indexerSetup is what an indexing process needs: the database and the dev chain.
type indexerSetup struct {
	DB        string
	HTTPURL   string
	WSURL     string
	Addresses devchain.Addresses
}

func runChild() int {
	var s indexerSetup
	if err := json.Unmarshal([]byte(os.Getenv(childEnv)), &s); err != nil {
		fmt.Fprintf(os.Stderr, "child: bad setup: %v\n", err)
		return 2
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer cancel()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	fl, closeAll, err := buildIndexer(ctx, s, log)
	if err != nil {
		fmt.Fprintf(os.Stderr, "child: %v\n", err)
		return 1
	}
	defer closeAll()
	if err := fl.Run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "child: run: %v\n", err)
		return 1
	}
	return 0
}

// buildIndexer assembles the indexing side as `echain-indexer run` does: source, mappings,
// store, follower (whose leader election decides who writes).
func buildIndexer(ctx context.Context, s indexerSetup, log *slog.Logger) (*indexer.Follower, func(), error) {
	reg := prometheus.NewRegistry()
	sch, err := schema.Load()
	if err != nil {
		return nil, nil, err
	}
	st, err := store.Open(ctx, s.DB, sch, store.Options{Logger: log, Registerer: reg})
	if err != nil {
		return nil, nil, fmt.Errorf("store: %w", err)
	}
	src, err := source.New(ctx, source.Config{
		Endpoints:    []source.Endpoint{{Name: "dev", HTTPURL: s.HTTPURL, WSURL: s.WSURL}},
		PollInterval: 200 * time.Millisecond,
	}, log, reg)
	if err != nil {
		st.Close()
		return nil, nil, fmt.Errorf("source: %w", err)
	}
	a := s.Addresses
	cc := func(addr common.Address) echain.ContractConfig {
		return echain.ContractConfig{Address: addr, StartBlock: a.StartBlock}
	}
	h, err := echain.New(echain.Config{EventFactory: cc(a.EventFactory), Marketplace: cc(a.Marketplace),
		POAPAttendance: cc(a.POAPAttendance), IncentiveManager: cc(a.IncentiveManager)}, src, log, reg)
	if err != nil {
		src.Close()
		st.Close()
		return nil, nil, fmt.Errorf("mappings: %w", err)
	}
	fl, err := indexer.New(indexer.Config{FinalityDepth: 32}, src, st, h, log, reg)
	if err != nil {
		src.Close()
		st.Close()
		return nil, nil, err
	}
	return fl, func() { src.Close(); st.Close() }, nil
}

// stack is a dev chain with one event on sale and an empty, migrated database.
type stack struct {
	chain *devchain.Chain
	setup indexerSetup
	sch   *schema.Schema
	st    *store.Store // for reading the cursor
	ev    devchain.Created
}

func startStack(t *testing.T) *stack {
	t.Helper()
	ctx := context.Background()
	chain, err := devchain.Start(ctx, devchain.Config{}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { chain.Close() })
	org := chain.User(0)
	h1, err := chain.VerifyOrganizer(ctx, org)
	if err != nil {
		t.Fatal(err)
	}
	h2, err := chain.CreateEvent(ctx, org, devchain.EventParams{Name: "Live", MetadataURI: devchain.MetadataURI(1, 0),
		TicketPrice: big.NewInt(1e15), MaxTickets: 100, StartTime: 2e9, EndTime: 2e9 + 3600})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := chain.Mine(ctx, h1, h2)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := chain.CreatedEvent(rs[1])
	if err != nil {
		t.Fatal(err)
	}
	st, sch, db := openStore(t)
	return &stack{chain: chain, sch: sch, st: st, ev: ev,
		setup: indexerSetup{DB: db, HTTPURL: chain.HTTPURL, WSURL: chain.WSURL, Addresses: chain.Addresses}}
}

// runIndexer runs an indexer in this process until the test ends.
func (s *stack) runIndexer(t *testing.T) *indexer.Follower {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	fl, closeAll, err := buildIndexer(ctx, s.setup, testLogger())
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- fl.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("indexer: %v", err)
		}
		closeAll()
	})
	return fl
}

// startChildIndexer runs an indexer in a child process; kill it with SIGKILL at will.
func (s *stack) startChildIndexer(t *testing.T) *exec.Cmd {
	t.Helper()
	b, err := json.Marshal(s.setup)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(b))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// synced waits until the store holds the chain's head block.
func (s *stack) synced(t *testing.T) {
	t.Helper()
	waitFor(t, "the indexer to reach the chain head", patience, func() bool {
		h, err := s.st.Head(context.Background())
		return err == nil && h != nil && h.Hash == s.chain.Head().Hash()
	})
}

// buy mines a one-ticket purchase by user i; it returns the ticket's entity id, its block and
// the transaction.
func (s *stack) buy(t *testing.T, user int) (string, uint64, common.Hash) {
	t.Helper()
	ctx := context.Background()
	h, err := s.chain.BuyTickets(ctx, s.chain.User(user), s.ev.TicketContract, 1)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := s.chain.Mine(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	ids := s.chain.MintedTokenIDs(rs[0])
	if len(ids) != 1 {
		t.Fatalf("minted %v", ids)
	}
	return fmt.Sprintf("%d-%d", s.ev.EventID, ids[0]), rs[0].BlockNumber.Uint64(), h
}

// reorgDropping reorganises the chain until tx is left out of the canonical chain (a reorg
// re-includes each sender's removed transactions only by chance).
func (s *stack) reorgDropping(t *testing.T, tx common.Hash) devchain.ReorgResult {
	t.Helper()
	ctx := context.Background()
	for range 12 {
		r, err := s.chain.Receipt(ctx, tx)
		if err != nil || r == nil {
			t.Fatalf("receipt of %s: %v", tx, err)
		}
		depth := int(s.chain.Head().Number.Uint64()-r.BlockNumber.Uint64()) + 1
		res, err := s.chain.Reorg(ctx, depth)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(res.Dropped, tx) {
			return res
		}
	}
	t.Fatal("12 reorgs kept the purchase")
	return devchain.ReorgResult{}
}

// canonical reports whether the dev chain's block number n has this hash now.
func (s *stack) canonical(t *testing.T, n int64, hash string) bool {
	t.Helper()
	h, err := s.chain.Client().HeaderByNumber(context.Background(), big.NewInt(n))
	return err == nil && h.Hash().Hex() == hash
}

const ticketsQuery = `subscription Tickets($e: String!) { tickets(where: {event: $e}, orderBy: tokenId) { id owner } }`

type ticketsData struct {
	Tickets []struct {
		ID    string `json:"id"`
		Owner string `json:"owner"`
	} `json:"tickets"`
}

func (d ticketsData) has(id string) bool {
	for _, tk := range d.Tickets {
		if tk.ID == id {
			return true
		}
	}
	return false
}

// jsLine is one event printed by jsclient/clients.mjs.
type jsLine struct {
	Client  string          `json:"client"`
	Kind    string          `json:"kind"`
	Payload json.RawMessage `json:"payload"`
}

var jsClients = []string{"graphql-ws", "subscriptions-transport-ws"}

// npmInstall installs the pinned clients (package-lock.json) once per checkout.
func npmInstall(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "graphql-ws", "package.json")); err == nil {
		return
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatalf("npm is needed for the JavaScript client tests: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
}

// Real npm clients, both protocols: the initial result, a purchase's update naming the block
// it was mined in, and the corrected result when a reorg drops the purchase.
func TestJSClients(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is needed for the JavaScript client tests: %v", err)
	}
	dir, err := filepath.Abs("jsclient")
	if err != nil {
		t.Fatal(err)
	}
	npmInstall(t, dir)
	s := startStack(t)
	s.runIndexer(t)
	s.synced(t)
	r := startReplica(t, s.setup.DB, s.sch, subscriptions.Options{})

	vars, _ := json.Marshal(map[string]any{"e": fmt.Sprint(s.ev.EventID)})
	cmd := exec.Command(node, filepath.Join(dir, "clients.mjs"), r.url, ticketsQuery, string(vars))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); _ = cmd.Wait() }()
	lines := make(chan jsLine, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var l jsLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Errorf("clients.mjs printed %q: %v", sc.Text(), err)
				continue
			}
			lines <- l
		}
		close(lines)
	}()
	// await waits until every client received a result satisfying ok.
	await := func(what string, ok func(d ticketsData, block int64, hash string) bool) {
		t.Helper()
		pending := map[string]bool{jsClients[0]: true, jsClients[1]: true}
		deadline := time.After(patience)
		for len(pending) > 0 {
			select {
			case l, open := <-lines:
				if !open {
					t.Fatalf("clients.mjs exited while waiting for %s", what)
				}
				if l.Kind != "next" {
					t.Fatalf("%s: %s %s while waiting for %s", l.Client, l.Kind, l.Payload, what)
				}
				res := decodeResult(t, wsMsg{Payload: l.Payload})
				var d ticketsData
				if len(res.Errors) > 0 || json.Unmarshal(res.Data, &d) != nil || res.Extensions.Block == nil {
					t.Fatalf("%s: bad result %s", l.Client, l.Payload)
				}
				t.Logf("%s: block %d, %d tickets", l.Client, res.Extensions.Block.Number, len(d.Tickets))
				if ok(d, res.Extensions.Block.Number, res.Extensions.Block.Hash) {
					delete(pending, l.Client)
				}
			case <-deadline:
				t.Fatalf("%v did not get %s within 30s", pending, what)
			}
		}
	}
	await("the initial result", func(d ticketsData, block int64, hash string) bool {
		return len(d.Tickets) == 0 && s.canonical(t, block, hash)
	})

	id, mined, tx := s.buy(t, 3)
	buyer := strings.ToLower(s.chain.User(3).Address.Hex())
	await("the purchase", func(d ticketsData, block int64, hash string) bool {
		if !d.has(id) {
			return false
		}
		if block != int64(mined) || d.Tickets[0].Owner != buyer {
			t.Fatalf("ticket %s reported at block %d owned by %s; mined in %d by %s", id, block, d.Tickets[0].Owner, mined, buyer)
		}
		return true
	})

	res := s.reorgDropping(t, tx)
	t.Logf("reorg: depth %d, ancestor %d, new head %d", res.Depth, res.Ancestor, res.NewHead)
	await("the corrected result", func(d ticketsData, block int64, hash string) bool {
		if d.has(id) {
			return false
		}
		if !s.canonical(t, block, hash) {
			t.Fatalf("the corrected result names block %d %s, not on the canonical chain", block, hash)
		}
		return true
	})
}

// Two API replicas (separate pools, separate LISTEN connections) beside one indexer: a client
// on each receives the same results for the same blocks.
func TestReplicasReceiveTheSameUpdates(t *testing.T) {
	s := startStack(t)
	s.runIndexer(t)
	s.synced(t)
	a := startReplica(t, s.setup.DB, s.sch, subscriptions.Options{})
	b := startReplica(t, s.setup.DB, s.sch, subscriptions.Options{})
	vars := map[string]any{"e": fmt.Sprint(s.ev.EventID)}
	ca := dial(t, a.url, subscriptions.ProtoTransportWS)
	ca.initTransport()
	ca.subscribe("t", ticketsQuery, vars)
	cb := dial(t, b.url, subscriptions.ProtoLegacyWS)
	cb.initLegacy()
	cb.start("t", ticketsQuery, vars)

	seen := func(c *wsClient, typ string) string {
		m := c.expect(typ, "t")
		r := decodeResult(t, m)
		return fmt.Sprintf("%d %s %s", r.Extensions.Block.Number, r.Extensions.Block.Hash, compact(t, r.Data))
	}
	if x, y := seen(ca, "next"), seen(cb, "data"); x != y {
		t.Fatalf("initial results differ:\n%s\n%s", x, y)
	}
	for i := range 3 {
		id, mined, _ := s.buy(t, 4+i)
		x, y := seen(ca, "next"), seen(cb, "data")
		if x != y {
			t.Fatalf("replicas disagree after purchase %d:\n%s\n%s", i, x, y)
		}
		if !strings.HasPrefix(x, fmt.Sprint(mined, " ")) || !strings.Contains(x, id) {
			t.Fatalf("purchase %s in block %d, replicas pushed %s", id, mined, x)
		}
	}
	for _, r := range []*replica{a, b} {
		if n := r.metric("echain_indexer_subscriptions_feed_reconnects_total"); n != 0 {
			t.Fatalf("feed reconnected %v times", n)
		}
	}
}

// The leader indexer (a child process) is killed with SIGKILL: the standby takes over and the
// subscription goes on receiving purchases.
func TestLeaderKilledSubscriptionsContinue(t *testing.T) {
	s := startStack(t)
	leader := s.startChildIndexer(t)
	s.synced(t)
	standby := s.runIndexer(t)
	r := startReplica(t, s.setup.DB, s.sch, subscriptions.Options{})
	c := dial(t, r.url, subscriptions.ProtoTransportWS)
	c.initTransport()
	c.subscribe("t", ticketsQuery, map[string]any{"e": fmt.Sprint(s.ev.EventID)})
	c.expect("next", "t")

	check := func(id string, mined uint64) {
		t.Helper()
		m := c.expect("next", "t")
		res := decodeResult(t, m)
		var d ticketsData
		if err := json.Unmarshal(res.Data, &d); err != nil || !d.has(id) || res.Extensions.Block.Number != int64(mined) {
			t.Fatalf("after buying %s in block %d: %s", id, mined, m.Payload)
		}
	}
	id, mined, _ := s.buy(t, 5)
	check(id, mined)
	if st := standby.Status(); st.Leader {
		t.Fatal("the in-process indexer leads: the child was meant to")
	}

	if err := leader.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = leader.Wait()
	killed := time.Now()
	id, mined, _ = s.buy(t, 6)
	check(id, mined)
	t.Logf("purchase after the kill delivered %v after it", time.Since(killed).Round(time.Millisecond))
	if !standby.Status().Leader {
		t.Fatal("the standby did not take over")
	}
	id, mined, _ = s.buy(t, 7)
	check(id, mined)
}
