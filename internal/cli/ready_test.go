package cli

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/echain/echain-indexer/devchain"
	"github.com/echain/echain-indexer/indexer/source/rpcproxy"
	"github.com/echain/echain-indexer/store/storetest"
)

// TestReadyzWithoutTheNode: /readyz fails when no endpoint has answered for
// api.ready_max_rpc_silence (it stayed 200 with every endpoint down), and when the node comes
// back as another chain (same chain id, a fresh chain shorter than the indexed block and below
// the kept window) it says so instead of "lag 0".
func TestReadyzWithoutTheNode(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	chain, err := devchain.Start(ctx, devchain.Config{}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer chain.Close()
	fresh, err := devchain.Start(ctx, devchain.Config{}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	traffic := devchain.NewTraffic(chain, devchain.TrafficConfig{TxsPerBlock: 3}, log)
	step := stepper(ctx, t, traffic)
	step(40)
	host := strings.TrimPrefix(chain.HTTPURL, "http://")
	proxy, err := rpcproxy.NewTCP(host)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()

	o := &opsEnv{chain: chain, db: storetest.NewDB(t), apiAddr: freePort(t), metAddr: freePort(t)}
	o.apiURL = "http://" + o.apiAddr
	env := append(o.env("ECHAIN_API_READY_MAX_RPC_SILENCE=3s", "ECHAIN_FINALITY_DEPTH=4"),
		"ECHAIN_RPC_HTTP_URL=http://"+proxy.Addr(), "ECHAIN_RPC_WS_URL=ws://"+proxy.Addr())
	run := startChild(t, env, "run")
	readyz := func() (int, map[string]any) {
		code, body, err := httpGet(o.apiURL + "/readyz")
		var r map[string]any
		if err == nil {
			_ = json.Unmarshal(body, &r)
		}
		return code, r
	}
	// A block a second: heads keep the endpoint answering (the silence allowed is 3 s) at a pace
	// a loaded machine's indexer keeps up with.
	lastStep := time.Now()
	run.waitFor(120*time.Second, "/readyz 200 at the head", func() bool {
		if time.Since(lastStep) > time.Second {
			step(1)
			lastStep = time.Now()
		}
		code, _ := readyz()
		return code == 200
	})

	// Every endpoint down.
	proxy.Refuse(time.Hour)
	proxy.CutAll()
	run.waitFor(60*time.Second, "/readyz to fail with every endpoint down", func() bool {
		code, r := readyz()
		return code == 503 && strings.Contains(r["reason"].(string), "no RPC endpoint has answered")
	})

	// The node comes back as a fresh chain of the same id: its head is far below the cursor.
	proxy.SetTarget(strings.TrimPrefix(fresh.HTTPURL, "http://"))
	proxy.Refuse(0)
	var last map[string]any
	run.waitFor(60*time.Second, "/readyz to say the node's head is below the indexed block", func() bool {
		code, r := readyz()
		last = r
		return code == 503 && strings.Contains(r["reason"].(string), "below the indexed block")
	})
	if lag, _ := last["lagBlocks"].(float64); lag >= 0 {
		t.Errorf("/readyz lagBlocks %v with the node behind the cursor, want negative: %v", lag, last)
	}
	run.waitFor(60*time.Second, "the follower's cursor check after the reconnection", func() bool {
		return strings.Contains(run.stderr.String(), "the node's head is below the indexed block")
	})
	if code, _ := run.stop(syscall.SIGTERM, 20*time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
}
