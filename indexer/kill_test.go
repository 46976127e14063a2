package indexer_test

import (
	"context"
	"fmt"
	"math/rand"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/echain/echain-indexer/devchain"
	"github.com/echain/echain-indexer/indexer/source"
	"github.com/echain/echain-indexer/internal/testwait"
	"github.com/echain/echain-indexer/store/storetest"
)

// TestKillRecovery kills a child indexer process with SIGKILL at random instants, 24 times:
// during the backfill and at the head (with reorgs going on), restarting it each time; the final
// store must equal a from-scratch index of the canonical chain.
func TestKillRecovery(t *testing.T) {
	c := startChain(t, devchain.Config{MaxReorgDepth: 8})
	tr := devchain.NewTraffic(c, devchain.TrafficConfig{TxsPerBlock: 6, ReorgEvery: 15, ReorgMaxDepth: 8}, quietLog())
	steps(t, tr, 500)

	s := chainSetup(c, storetest.NewDB(t))
	s.Config.FinalityDepth = 16
	s.Config.BackfillMinBlocks = 20
	// Small ranges: many commits to be killed between (and inside).
	s.Config.Range = source.RangeSizerConfig{Initial: 2, Max: 3}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if _, err := tr.Step(ctx); err != nil && ctx.Err() == nil {
				t.Errorf("traffic: %v", err)
				return
			}
			time.Sleep(60 * time.Millisecond)
		}
	}()
	stopTraffic := func() { cancel(); wg.Wait() }
	defer stopTraffic()

	st, err := openStore(context.Background(), s.DB)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	storeHead := func() int64 {
		h, err := st.Head(context.Background())
		if err != nil {
			t.Fatalf("store head: %v", err)
		}
		if h == nil {
			return -1
		}
		return h.Number
	}
	behind := func() int64 { return c.Head().Number.Int64() - storeHead() }
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	var inBackfill, atHead, advanced int
	last := int64(-1)
	kill := func(cmd *exec.Cmd, after time.Duration) {
		time.Sleep(after)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatalf("kill child: %v", err)
		}
		_ = cmd.Wait()
		if h := storeHead(); h > last {
			advanced++
			last = h
		}
	}
	// Kills during the backfill: the store is far behind the chain.
	for i := 0; i < 12 && behind() > s.Config.FinalityDepth+s.Config.BackfillMinBlocks; i++ {
		kill(startChild(t, s), time.Duration(100+rng.Intn(300))*time.Millisecond)
		inBackfill++
	}
	// Kills at the head: each restart first catches up, then dies at a random instant.
	for atHead < 12 {
		cmd := startChild(t, s)
		testwait.For(t, "a restarted indexer to catch up to 3 blocks behind the head", func() (bool, string) {
			n := behind()
			return n <= 3, fmt.Sprintf("%d blocks behind", n)
		})
		kill(cmd, time.Duration(rng.Intn(400))*time.Millisecond)
		atHead++
	}
	stopTraffic()
	t.Logf("%d kills during backfill, %d at the head; cursor advanced between %d of them", inBackfill, atHead, advanced)
	if inBackfill < 8 {
		t.Fatalf("only %d kills happened during the backfill", inBackfill)
	}
	in := startIndexer(t, s)
	waitSynced(t, in, c)
	in.stop()
	compareStores(t, scratchIndex(t, c), s.DB)
}
