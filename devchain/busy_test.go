package devchain

import (
	"context"
	"fmt"
	"math/big"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/echain/echain-indexer/internal/testwait"
)

// TestBusyHistory checks that a busy history is what it promises: every block after the
// tokens' deployment holds at least Unrelated token Transfer logs, Echain's logs are only in one
// block of EchainEvery, and the cached history imports as the same chain, on which the live
// generator goes on.
func TestBusyHistory(t *testing.T) {
	ctx := context.Background()
	busy := BusyConfig{Unrelated: 20, EchainEvery: 10, EchainTxs: 4}
	h := HistoryConfig{Blocks: 60, CacheDir: t.TempDir(), Busy: &busy}
	c1, err := StartWithHistory(ctx, Config{MetadataAddr: "off"}, h, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	head1 := c1.Head()
	// The built chain goes on through the pool and the beacon (the pre-build bypassed both).
	b1, err := NewBusy(ctx, c1, TrafficConfig{}, busy, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := b1.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := c1.Head().Number.Uint64(); got != head1.Number.Uint64()+4 {
		t.Fatalf("after the tokens and 3 busy blocks on the built chain, head %d, want %d", got, head1.Number.Uint64()+4)
	}
	c1.Close()
	// Block 1 deploys Echain, block 2 the tokens, then the 60 busy blocks.
	if head1.Number.Uint64() != 62 {
		t.Fatalf("busy history head %d, want 62", head1.Number)
	}

	c, err := StartWithHistory(ctx, Config{MetadataAddr: "off"}, h, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hc := dial(t, c.HTTPURL)
	if got := must[*types.Header](t)(hc.HeaderByNumber(ctx, big.NewInt(62))); got.Hash() != head1.Hash() {
		t.Fatalf("imported block 62 is %s, built %s", got.Hash(), head1.Hash())
	}
	tokens := map[common.Address]bool{}
	for _, r := range must[[]*types.Receipt](t)(hc.BlockReceipts(ctx, rpc.BlockNumberOrHashWithNumber(2))) {
		tokens[r.ContractAddress] = true
	}
	if len(tokens) != 2 {
		t.Fatalf("block 2 deployed %d contracts, want the 2 tokens", len(tokens))
	}

	b, err := NewBusy(ctx, c, TrafficConfig{}, busy, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if _, err := b.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	e20, e721 := b.Tokens()
	tokens[e20], tokens[e721] = true, true
	head := c.Head().Number.Uint64()

	logs := must[[]types.Log](t)(hc.FilterLogs(ctx, ethereum.FilterQuery{FromBlock: big.NewInt(3), ToBlock: new(big.Int).SetUint64(head)}))
	unrelated, echain := map[uint64]int{}, map[uint64]int{}
	for _, l := range logs {
		if tokens[l.Address] {
			if l.Topics[0] != common.HexToHash(transferTopic) {
				t.Fatalf("token log with topic %s", l.Topics[0])
			}
			unrelated[l.BlockNumber]++
		} else {
			echain[l.BlockNumber]++
		}
	}
	for n := uint64(3); n <= head; n++ {
		if n == 63 || n == 64 {
			continue // the empty block the import seals on top, the second tokens' deployment
		}
		if unrelated[n] < busy.Unrelated {
			t.Errorf("block %d has %d unrelated logs, want at least %d", n, unrelated[n], busy.Unrelated)
		}
	}
	total := 0
	for _, v := range echain {
		total += v
	}
	// 60+10 busy blocks: 7 carry Echain traffic.
	if len(echain) == 0 || len(echain) > 7 || total == 0 {
		t.Errorf("Echain logs in %d blocks (%d logs), want them in 1..7 of %d blocks", len(echain), total, head-2)
	}
	if s := b.Traffic().Stats(); s.Reverted != 0 {
		t.Errorf("%d Echain transactions reverted", s.Reverted)
	}
	t.Logf("%d blocks: %d unrelated logs, %d Echain logs in %d blocks", head-2, len(logs)-total, total, len(echain))
}

// TestRunBusy runs the `echain-dev devchain --busy` loop: it prints the tokens and seals busy
// blocks until stopped.
func TestRunBusy(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, RunConfig{Chain: Config{MetadataAddr: "off"},
			Busy: &BusyConfig{Unrelated: 6, EchainEvery: 3, BlockInterval: 10 * time.Millisecond}}, testLogger(t), &out)
	}()
	var rpcURL string
	testwait.For(t, "Run to print the chain's URL and the busy tokens", func() (bool, string) {
		select {
		case err := <-done:
			t.Fatalf("Run returned before it was stopped: %v", err)
		default:
		}
		text := out.String()
		m := regexp.MustCompile(`HTTP RPC\s+(\S+)`).FindStringSubmatch(text)
		if m == nil || !strings.Contains(text, "busy chain: unrelated ERC-20 0x") {
			return false, text
		}
		rpcURL = m[1]
		return true, ""
	})
	hc := dial(t, rpcURL)
	testwait.For(t, "ten busy blocks", func() (bool, string) {
		n, err := hc.BlockNumber(ctx)
		return err == nil && n >= 12, fmt.Sprintf("head %d (%v)", n, err)
	})
	logs := must[[]types.Log](t)(hc.FilterLogs(ctx, ethereum.FilterQuery{FromBlock: big.NewInt(3), ToBlock: big.NewInt(12),
		Topics: [][]common.Hash{{common.HexToHash(transferTopic)}}}))
	if len(logs) < 6*10 {
		t.Errorf("%d Transfer logs in 10 busy blocks of 6 unrelated transfers", len(logs))
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after ctx ended: %v", err)
		}
	case <-testwait.After(t):
		t.Fatal("Run did not return after its context ended")
	}
}
