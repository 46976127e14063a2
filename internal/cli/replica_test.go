package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"

	"github.com/echain/echain-indexer/devchain"
	"github.com/echain/echain-indexer/indexer/echain/echaintest"
	"github.com/echain/echain-indexer/schema"
	"github.com/echain/echain-indexer/store/pglocal"
	"github.com/echain/echain-indexer/store/storetest"
)

// TestReplicas runs the production topology on real PostgreSQL streaming replication: a
// primary and a hot standby (initdb, pg_basebackup -R, pg_ctl start), `run` on the primary, a
// spare `run` on the standby, and one `serve` on each.
//
//   - The same subscription on both serves receives the same sequence of results (the standby's
//     over both subscription protocols); answers on the standby equal the primary's at the same
//     `_meta` block, and `_meta` there never passes what the standby replayed.
//   - Replay paused with pg_wal_replay_pause(): the standby's subscribers get nothing newer than
//     it holds, its /readyz fails past api.ready_max_replication_lag, a query for the primary's
//     block (number_gte) waits for replay instead of answering older data; all resume with replay.
//   - The standby is promoted while the first indexer still writes the old primary, which is then
//     lost: the spare takes the leader lock on the new primary and resumes from the cursor
//     replication carried; the store equals a from-scratch index of the chain.
func TestReplicas(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	primary, err := pglocal.StartThrowaway(ctx, log)
	if err != nil {
		t.Fatal(err)
	}
	defer primary.Stop()
	standby, err := primary.StartStandby(ctx, log)
	if err != nil {
		t.Fatal(err)
	}
	defer standby.Stop()
	admin, err := pgx.Connect(ctx, primary.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE echain"); err != nil {
		t.Fatal(err)
	}
	admin.Close(ctx)
	primaryDB, standbyDB := storetest.WithDatabase(primary.URL, "echain"), storetest.WithDatabase(standby.URL, "echain")

	chain, err := devchain.Start(ctx, devchain.Config{}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer chain.Close()
	traffic := devchain.NewTraffic(chain, devchain.TrafficConfig{TxsPerBlock: 4}, log)
	step := stepper(ctx, t, traffic)
	step(20)
	chainHead := func() int64 { return chain.Head().Number.Int64() }
	env := func(db, apiAddr, metAddr string, extra ...string) []string {
		return append([]string{
			"ECHAIN_DATABASE_URL=" + db,
			"ECHAIN_RPC_HTTP_URL=" + chain.HTTPURL,
			"ECHAIN_RPC_WS_URL=" + chain.WSURL,
			"ECHAIN_METADATA_GATEWAY=" + chain.MetadataGateway,
			"ECHAIN_API_LISTEN=" + apiAddr,
			"ECHAIN_METRICS_LISTEN=" + metAddr,
			"ECHAIN_SHUTDOWN_TIMEOUT=15s",
			"ECHAIN_LOG_LEVEL=debug",
		}, extra...)
	}

	// The indexer on the primary; the standby gets the tables and the cursor by replication.
	runMet := freePort(t)
	first := startChild(t, env(primaryDB, freePort(t), runMet), "run")
	first.waitFor(120*time.Second, "the indexer on the primary to reach the chain head", func() bool {
		n, _ := headOf(t, primaryDB)
		return n == chainHead()
	})
	waitFor(t, 60*time.Second, "the standby to replay the indexed head", func() bool {
		n, _ := headOf(t, standbyDB)
		return n == chainHead()
	})

	spareMet := freePort(t)
	spare := startChild(t, env(standbyDB, freePort(t), spareMet), "run")
	pAddr, rAddr := freePort(t), freePort(t)
	servP := startChild(t, env(primaryDB, pAddr, freePort(t)), "serve")
	servR := startChild(t, env(standbyDB, rAddr, freePort(t), "ECHAIN_DATABASE_PRIMARY_URL="+primaryDB,
		"ECHAIN_API_READY_MAX_REPLICATION_LAG=1s", "ECHAIN_API_REPLICA_AWAIT_BLOCK=60s"), "serve")
	for _, c := range []struct {
		c    *child
		addr string
	}{{servP, pAddr}, {servR, rAddr}} {
		c.c.waitFor(60*time.Second, c.c.Name+" to be ready", func() bool {
			code, _, err := httpGet("http://" + c.addr + "/readyz")
			return err == nil && code == http.StatusOK
		})
	}
	spare.waitFor(90*time.Second, "the spare indexer to wait as a standby", func() bool {
		l, err := liveOf("http://" + spareMet)
		return err == nil && l.Mode == "standby" && !l.Leader
	})
	if rd := readyzOf(t, rAddr); rd.Replication == nil {
		t.Errorf("/readyz of the serve on the standby reports no replication: %+v", rd)
	}

	// 1. One subscription on both serves (the standby's over both protocols); a _meta
	// subscription on each tells when a serve has processed a block.
	const sub = `subscription { transactions(first: 3, orderBy: blockNumber, orderDirection: desc) { id blockNumber transactionType } }`
	const meta = `subscription { _meta { block { number } } }`
	onP := subscribe(t, pAddr, "graphql-transport-ws", sub)
	onR := subscribe(t, rAddr, "graphql-transport-ws", sub)
	onRLegacy := subscribe(t, rAddr, "graphql-ws", sub)
	all := []*subClient{onP, onR, onRLegacy}
	metas := []*subClient{subscribe(t, pAddr, "graphql-transport-ws", meta), subscribe(t, rAddr, "graphql-ws", meta)}
	waitAll := func(what string, n int64) {
		t.Helper()
		waitFor(t, 60*time.Second, what, func() bool {
			for _, c := range metas {
				if c.last() < n {
					return false
				}
			}
			for _, c := range all {
				if c.last() < 0 || c.latest() != all[0].latest() {
					return false
				}
			}
			return true
		})
	}
	waitAll("every subscriber's first result", chainHead())
	for range 5 {
		step(1)
		waitAll(fmt.Sprintf("both serves to process block %d", chainHead()), chainHead())
	}
	want := onP.results()
	for _, c := range all[1:] {
		if got := c.results(); !sameResults(want, got) {
			t.Errorf("%s on the standby got another sequence than on the primary:\n got %v\nwant %v", c.proto, blocksOf(got), blocksOf(want))
		}
	}
	if len(want) < 4 {
		t.Errorf("the subscription on the primary got %d results over 5 blocks: %v", len(want), blocksOf(want))
	}

	// 2. The standby's answer equals the primary's at the standby's _meta block; that block is
	// one the standby replayed.
	const q = `events(first: 1000, orderBy: id%s) { id ticketsSold } tickets(first: 1000, orderBy: id%s) { id owner }`
	step(1)
	var rAns struct {
		Meta struct {
			Block struct{ Number int64 } `json:"block"`
		} `json:"_meta"`
	}
	rRaw := gql(t, rAddr, "{ _meta { block { number } } "+fmt.Sprintf(q, "", "")+" }", &rAns)
	at := rAns.Meta.Block.Number
	if n, _ := headOf(t, standbyDB); at > n {
		t.Errorf("_meta on the standby says block %d; the standby has replayed %d", at, n)
	}
	arg := fmt.Sprintf(", block: {number: %d}", at)
	pRaw := gql(t, pAddr, fmt.Sprintf("{ _meta(block: {number: %d}) { block { number } } ", at)+fmt.Sprintf(q, arg, arg)+" }", nil)
	if string(rRaw) != string(pRaw) {
		t.Errorf("at block %d the standby answers\n%.400s\nand the primary\n%.400s", at, rRaw, pRaw)
	}
	// Time travel on the standby: the same as on the primary.
	back := fmt.Sprintf(", block: {number: %d}", at-3)
	tq := fmt.Sprintf("{ _meta(block: {number: %d}) { block { number } } ", at-3) + fmt.Sprintf(q, back, back) + " }"
	if r, p := gql(t, rAddr, tq, nil), gql(t, pAddr, tq, nil); string(r) != string(p) || len(r) == 0 {
		t.Errorf("at block %d (time travel) the standby answers\n%.400s\nand the primary\n%.400s", at-3, r, p)
	}

	// 3. Lag: replay paused. Nothing newer than the standby holds reaches its subscribers; its
	// /readyz fails; a client that saw the primary's block waits for it rather than going back.
	sconn, err := pgx.Connect(ctx, standby.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer sconn.Close(ctx)
	waitAll("every subscriber to be pushed the head", chainHead())
	if _, err := sconn.Exec(ctx, "SELECT pg_wal_replay_pause()"); err != nil {
		t.Fatal(err)
	}
	held, _ := headOf(t, standbyDB)
	step(3)
	first.waitFor(60*time.Second, "the indexer to index the blocks mined during the pause", func() bool {
		n, _ := headOf(t, primaryDB)
		return n == chainHead()
	})
	target := chainHead()
	waitFor(t, 60*time.Second, "/readyz of the lagging standby's serve to fail on replication lag", func() bool {
		rd := readyzOf(t, rAddr)
		return !rd.Ready && rd.Replication != nil && rd.Replication.ReplayPaused && rd.Replication.LagSeconds > 1 &&
			strings.Contains(rd.Reason, "replication")
	})
	st := startChild(t, env(standbyDB, freePort(t), freePort(t), "ECHAIN_DATABASE_PRIMARY_URL="+primaryDB), "status", "--json")
	if code := st.wait(60 * time.Second); code != 0 {
		t.Fatalf("status on the standby: exit %d", code)
	}
	var sr statusReport
	if err := json.Unmarshal([]byte(st.stdout.String()), &sr); err != nil {
		t.Fatalf("status --json: %v", err)
	}
	if rp := sr.Replication; rp == nil || !rp.ReplayPaused || rp.LagBlocks == nil || *rp.LagBlocks != target-held || rp.LagSeconds <= 0 {
		t.Errorf("status on the paused standby (held %d, primary %d): replication %+v", held, target, sr.Replication)
	}
	if n, _ := headOf(t, standbyDB); n != held {
		t.Fatalf("replay paused at block %d, yet the standby holds %d", held, n)
	}
	for _, c := range append(all[1:], metas[1]) {
		if c.last() > held {
			t.Errorf("%s on the paused standby was pushed block %d; it holds %d", c.proto, c.last(), held)
		}
	}
	waitFor(t, 60*time.Second, "the primary's serve to process the blocks mined during the pause", func() bool { return metas[0].last() == target })
	awaited := make(chan int64, 1)
	go func() { // a client moved here after reading block `target` on the primary
		var a struct {
			Meta struct {
				Block struct{ Number int64 } `json:"block"`
			} `json:"_meta"`
		}
		gql(t, rAddr, fmt.Sprintf("{ _meta(block: {number_gte: %d}) { block { number } } }", target), &a)
		awaited <- a.Meta.Block.Number
	}()
	select {
	case n := <-awaited:
		t.Fatalf("a query for block %d on the paused standby answered at once (block %d)", target, n)
	case <-time.After(300 * time.Millisecond):
	}
	if _, err := sconn.Exec(ctx, "SELECT pg_wal_replay_resume()"); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-awaited:
		if n < target {
			t.Errorf("the awaited query answered block %d, want at least %d", n, target)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the awaited query did not answer within 60s of resuming replay")
	}
	waitAll("the standby's subscribers to catch up after replay resumed", target)
	waitFor(t, 60*time.Second, "/readyz of the standby's serve to pass again", func() bool {
		return readyzOf(t, rAddr).Ready
	})

	// 4. Failover: promote the standby while the first indexer writes the old primary, lose the
	// old primary; the spare leads on the new one from the replicated cursor.
	if err := standby.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	step(2) // the old primary may index these: lost with it, as in a real failover
	if err := primary.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	first.kill()
	spare.waitFor(60*time.Second, "the spare indexer to take the leader lock on the promoted standby", func() bool {
		l, err := liveOf("http://" + spareMet)
		return err == nil && l.Leader
	})
	step(3)
	spare.waitFor(120*time.Second, "the spare indexer to reach the chain head", func() bool {
		n, _ := headOf(t, standbyDB)
		return n == chainHead()
	})
	waitFor(t, 60*time.Second, "the standby's serve to follow the new primary", func() bool {
		return metas[1].last() == chainHead()
	})
	for _, c := range append(all[1:], metas[1]) {
		if err := c.monotonic(); err != nil {
			t.Errorf("%s on the standby: %v", c.proto, err)
		}
	}

	scratch := storetest.NewDB(t)
	scratchRun := startChild(t, env(scratch, freePort(t), freePort(t)), "run")
	scratchRun.waitFor(120*time.Second, "a from-scratch index to reach the chain head", func() bool {
		n, _ := headOf(t, scratch)
		return n == chainHead()
	})
	sch, err := schema.Load()
	if err != nil {
		t.Fatal(err)
	}
	// Metadata documents arrive in the background after their Events commit and are written with
	// the next block's commit, so both indexers need time and blocks before their stores agree:
	// empty blocks are sealed while waiting.
	lastSeal := time.Now()
	waitFor(t, 180*time.Second, "the from-scratch index and the promoted standby to agree once metadata documents arrived", func() bool {
		a, _ := headOf(t, scratch)
		b, _ := headOf(t, standbyDB)
		if a == chainHead() && b == chainHead() && len(echaintest.Diff(readStore(t, scratch, sch), readStore(t, standbyDB, sch))) == 0 {
			return true
		}
		if time.Since(lastSeal) > time.Second {
			if _, err := chain.Commit(); err != nil {
				t.Fatal(err)
			}
			lastSeal = time.Now()
		}
		return false
	})
	spare.stop(syscall.SIGTERM, 20*time.Second)
	scratchRun.stop(syscall.SIGTERM, 20*time.Second)
	wantSt, gotSt := readStore(t, scratch, sch), readStore(t, standbyDB, sch)
	if d := echaintest.Diff(wantSt, gotSt); len(d) > 0 {
		t.Errorf("the promoted standby differs from a from-scratch index:\n%s", strings.Join(d[:min(len(d), 20)], "\n"))
	}
	// Every version once: nothing the failover replayed twice or skipped.
	// An Event's metadata fill is a version at whatever block was the head when its document
	// arrived, which differs between two indexers: Events compare by current rows only.
	eventTable := sch.Type("Event").Table
	wc, gc := entityCounts(t, scratch), entityCounts(t, standbyDB)
	for tbl, w := range wc {
		g := gc[tbl]
		if strings.Contains(tbl, `"`+eventTable+`"`) {
			w[0], g[0] = 0, 0
		}
		if g != w {
			t.Errorf("%s: %v versions/current after the failover, %v from scratch", tbl, gc[tbl], w)
		}
	}
	servP.kill()
	if code, _ := servR.stop(syscall.SIGTERM, 20*time.Second); code != 0 {
		t.Errorf("serve on the promoted standby: exit %d", code)
	}
}

func readStore(t *testing.T, db string, sch *schema.Schema) echaintest.State {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	st, err := echaintest.ReadStore(ctx, conn, sch, echaintest.Current)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

type readiness struct {
	Ready       bool   `json:"ready"`
	Reason      string `json:"reason"`
	Replication *struct {
		LagSeconds   float64 `json:"lagSeconds"`
		LagBlocks    *int64  `json:"lagBlocks"`
		ReplayPaused bool    `json:"replayPaused"`
	} `json:"replication"`
}

func readyzOf(t *testing.T, addr string) readiness {
	t.Helper()
	var rd readiness
	_, body, err := httpGet("http://" + addr + "/readyz")
	if err == nil {
		_ = json.Unmarshal(body, &rd)
	}
	return rd
}

// gql posts a query and returns its data (decoded into out when given); errors fail the test.
func gql(t *testing.T, addr, query string, out any) json.RawMessage {
	body, _ := json.Marshal(map[string]string{"query": query})
	resp, err := http.Post("http://"+addr+"/graphql", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Error(err)
		return nil
	}
	defer resp.Body.Close()
	var r struct {
		Data   json.RawMessage `json:"data"`
		Errors []any           `json:"errors"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || len(r.Errors) > 0 {
		t.Errorf("query %q: %v %v", query, err, r.Errors)
		return nil
	}
	if out != nil {
		if err := json.Unmarshal(r.Data, out); err != nil {
			t.Error(err)
		}
	}
	return r.Data
}

// subClient is one subscription over either protocol, recording every result.
type subClient struct {
	proto string
	mu    sync.Mutex
	res   []subResult
}

type subResult struct {
	Block int64
	Data  string
}

func subscribe(t *testing.T, addr, proto, query string) *subClient {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/graphql", http.Header{"Sec-WebSocket-Protocol": {proto}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	if err := ws.WriteJSON(map[string]any{"type": "connection_init"}); err != nil {
		t.Fatal(err)
	}
	start := "subscribe"
	if proto == "graphql-ws" {
		start = "start"
	}
	if err := ws.WriteJSON(map[string]any{"id": "1", "type": start, "payload": map[string]any{"query": query}}); err != nil {
		t.Fatal(err)
	}
	c := &subClient{proto: proto}
	go func() {
		for {
			var m struct {
				Type    string `json:"type"`
				Payload struct {
					Data       json.RawMessage `json:"data"`
					Extensions struct {
						Block *struct{ Number int64 } `json:"block"`
					} `json:"extensions"`
				} `json:"payload"`
			}
			_, raw, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Errorf("%s subscription: %v: %s", proto, err, raw)
				return
			}
			if (m.Type == "next" || m.Type == "data") && m.Payload.Extensions.Block == nil {
				t.Errorf("%s subscription: a result without its block: %s", proto, raw)
			}
			if m.Type != "next" && m.Type != "data" && m.Type != "ka" && m.Type != "connection_ack" && m.Type != "ping" && m.Type != "pong" {
				t.Errorf("%s subscription: unexpected %s message: %s", proto, m.Type, raw)
			}
			if (m.Type == "next" || m.Type == "data") && m.Payload.Extensions.Block != nil {
				c.mu.Lock()
				c.res = append(c.res, subResult{Block: m.Payload.Extensions.Block.Number, Data: string(m.Payload.Data)})
				c.mu.Unlock()
			}
		}
	}()
	return c
}

func (c *subClient) results() []subResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]subResult(nil), c.res...)
}

// latest is the last result, zero before the first.
func (c *subClient) latest() subResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.res) == 0 {
		return subResult{}
	}
	return c.res[len(c.res)-1]
}

func (c *subClient) last() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.res) == 0 {
		return -1
	}
	return c.res[len(c.res)-1].Block
}

// monotonic: the dev chain's traffic has no reorgs, so blocks only go up.
func (c *subClient) monotonic() error {
	rs := c.results()
	for i := 1; i < len(rs); i++ {
		if rs[i].Block <= rs[i-1].Block {
			return fmt.Errorf("result %d is at block %d after block %d", i, rs[i].Block, rs[i-1].Block)
		}
	}
	return nil
}

func sameResults(a, b []subResult) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func blocksOf(rs []subResult) []int64 {
	out := make([]int64, len(rs))
	for i, r := range rs {
		out[i] = r.Block
	}
	return out
}

// kill ends a child with SIGKILL unless it has exited already.
func (c *child) kill() { c.Kill() }
