package indexer_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/echain/echain-indexer/devchain"
	"github.com/echain/echain-indexer/internal/testwait"
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
	testwait.For(t, "the first indexer (a child process) to index to the head", func() (bool, string) {
		h, err := st.Head(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return h != nil && h.Number == c.Head().Number.Int64(), fmt.Sprintf("at %+v", h)
	})

	standby := startIndexer(t, s)
	steps(t, tr, 10)
	time.Sleep(1500 * time.Millisecond)
	if stt := standby.fl.Status(); stt.Leader || stt.Mode != "standby" {
		t.Fatalf("second indexer: leader %v mode %q, want a waiting standby", stt.Leader, stt.Mode)
	}
	if n := counter(t, standby.reg, "echain_indexer_blocks_indexed_total", nil); n != 0 {
		t.Fatalf("standby committed %v blocks", n)
	}
	testwait.For(t, "the leader to follow the head while the standby waits", func() (bool, string) {
		h, err := st.Head(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return h.Number == c.Head().Number.Int64(), fmt.Sprintf("store at %d, chain at %d", h.Number, c.Head().Number)
	})

	killed := time.Now()
	if err := leader.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = leader.Wait()
	// How soon is a figure for the log (the lock goes with the dead session), not an assertion.
	testwait.For(t, "the standby to take the lock of the killed leader", func() (bool, string) {
		stt := standby.fl.Status()
		return stt.Leader, fmt.Sprintf("status %+v", stt)
	})
	t.Logf("standby took over %s after the leader was killed", time.Since(killed).Round(time.Millisecond))
	steps(t, tr, 10)
	waitSynced(t, standby, c)
	standby.stop()
	compareStores(t, scratchIndex(t, c), s.DB)
}
