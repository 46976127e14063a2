package indexer_test

import (
	"context"
	"testing"
	"time"

	"github.com/echain/echain-indexer/devchain"
	"github.com/echain/echain-indexer/store/storetest"
)

// TestLeaderTakeover runs two indexers on one database: only the lock holder (a child process)
// indexes; when it is killed with SIGKILL the standby takes over within seconds and catches up.
func TestLeaderTakeover(t *testing.T) {
	c := startChain(t, devchain.Config{})
	tr := devchain.NewTraffic(c, devchain.TrafficConfig{TxsPerBlock: 4}, quietLog())
	steps(t, tr, 40)
	s := chainSetup(c, storetest.NewDB(t))

	leader := startChild(t, s)
	defer func() { _ = leader.Process.Kill(); _ = leader.Wait() }()
	st, err := openStore(context.Background(), s.DB)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		h, err := st.Head(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if h != nil && h.Number == c.Head().Number.Int64() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first indexer did not index")
		}
		time.Sleep(50 * time.Millisecond)
	}

	standby := startIndexer(t, s)
	steps(t, tr, 10)
	time.Sleep(1500 * time.Millisecond)
	if stt := standby.fl.Status(); stt.Leader || stt.Mode != "standby" {
		t.Fatalf("second indexer: leader %v mode %q, want a waiting standby", stt.Leader, stt.Mode)
	}
	if n := counter(t, standby.reg, "echain_indexer_blocks_indexed_total", nil); n != 0 {
		t.Fatalf("standby committed %v blocks", n)
	}
	h, err := st.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if h.Number != c.Head().Number.Int64() {
		t.Fatalf("leader did not follow the head: store at %d, chain at %d", h.Number, c.Head().Number)
	}

	killed := time.Now()
	if err := leader.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = leader.Wait()
	for !standby.fl.Status().Leader {
		if time.Since(killed) > 10*time.Second {
			t.Fatalf("standby did not take over within 10s; status %+v", standby.fl.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(killed)
	t.Logf("standby took over %s after the leader was killed", took.Round(time.Millisecond))
	if took > 5*time.Second {
		t.Fatalf("takeover took %s", took)
	}
	steps(t, tr, 10)
	waitSynced(t, standby, c, 30*time.Second)
	standby.stop()
	compareStores(t, scratchIndex(t, c), s.DB)
}
