package devchain

import (
	"bytes"
	"context"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/echain/echain-indexer/abis"
	"github.com/echain/echain-indexer/internal/testwait"
)

// specEvents are the logs SPEC.md maps, by contract.
var specEvents = map[string][]string{
	abis.EventFactory:     {"OrganizerVerified", "OrganizerUnverified", "EventCreated", "EventUpdated", "EventStatusChanged"},
	abis.EventTicket:      {"Transfer", "TicketMinted", "TicketUsed", "TicketTransferRestricted"},
	abis.Marketplace:      {"TicketListed", "TicketSold", "ListingCancelled"},
	abis.POAPAttendance:   {"AttendanceMinted"},
	abis.IncentiveManager: {"RewardMinted", "ReferralCodeGenerated", "ReferralUsed"},
}

// Traffic drives every SPEC operation: counted from the node over HTTP (eth_getLogs), not from
// the generator's own model, which must agree.
func TestTrafficCoversEveryOperation(t *testing.T) {
	ctx := context.Background()
	c := startChain(t, Config{})
	tr := NewTraffic(c, TrafficConfig{TxsPerBlock: 10}, testLogger(t))

	// Explicit operations from another goroutine interleave safely with the generator.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := c.SendETH(ctx, c.Deployer(), c.Treasury().Address, big.NewInt(1)); err != nil {
				t.Error(err)
				return
			}
			if _, err := c.Commit(); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	for i := 0; i < 130; i++ {
		if _, err := tr.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()

	s := tr.Stats()
	if s.Reverted != 0 {
		t.Errorf("%d traffic transactions reverted", s.Reverted)
	}
	for _, o := range opTable() {
		if s.Ops[o.name] == 0 {
			t.Errorf("operation %s never sent (ops %v)", o.name, s.Ops)
		}
	}
	for _, o := range []string{"deployWallet", "verifyOrganizerViaWallet", "approve"} {
		if s.Ops[o] == 0 {
			t.Errorf("operation %s never sent", o)
		}
	}

	hc := dial(t, c.HTTPURL)
	head := must[uint64](t)(hc.BlockNumber(ctx))
	var topics []common.Hash
	names := map[common.Hash]string{}
	for contract, evs := range specEvents {
		a := must[abi.ABI](t)(abis.Echain(contract))
		for _, e := range evs {
			topics = append(topics, a.Events[e].ID)
			names[a.Events[e].ID] = e
		}
	}
	logs, err := hc.FilterLogs(ctx, ethereum.FilterQuery{FromBlock: big.NewInt(0), ToBlock: new(big.Int).SetUint64(head), Topics: [][]common.Hash{topics}})
	if err != nil {
		t.Fatal(err)
	}
	clones := map[common.Address]bool{}
	for _, l := range logs {
		if names[l.Topics[0]] == "EventCreated" {
			clones[common.BytesToAddress(l.Topics[3].Bytes())] = true
		}
	}
	count := map[common.Hash]int{}
	burns, perPurchase := 0, map[common.Hash]int{}
	perBlock := map[uint64]map[common.Hash]bool{}
	for _, l := range logs {
		if names[l.Topics[0]] == "Transfer" && !clones[l.Address] {
			continue // POAP and reward NFTs
		}
		count[l.Topics[0]]++
		if names[l.Topics[0]] == "Transfer" && l.Topics[2] == (common.Hash{}) {
			burns++
		}
		if names[l.Topics[0]] == "TicketMinted" {
			perPurchase[l.TxHash]++
		}
		if perBlock[l.BlockNumber] == nil {
			perBlock[l.BlockNumber] = map[common.Hash]bool{}
		}
		perBlock[l.BlockNumber][l.TxHash] = true
	}
	for tp, n := range count {
		if n == 0 {
			t.Errorf("no %s log", names[tp])
		}
		if s.Logs[tp] != n {
			t.Errorf("%s: the node has %d logs, the traffic model %d", names[tp], n, s.Logs[tp])
		}
	}
	if len(count) != len(topics) {
		for _, tp := range topics {
			if count[tp] == 0 {
				t.Errorf("no %s log on the chain", names[tp])
			}
		}
	}
	if burns == 0 {
		t.Error("no burn")
	}
	busiest := 0
	for _, txs := range perBlock {
		busiest = max(busiest, len(txs))
	}
	if busiest < 6 {
		t.Errorf("at most %d Echain transactions in a block", busiest)
	}

	// Purchases of 1 to 3 tickets, and gas limits with headroom, from the blocks themselves.
	quantities := map[int]int{}
	purchase := c.contract.ticket.Methods["purchaseTicket"].ID
	for n := uint64(1); n <= head; n++ {
		blk := must[*types.Block](t)(hc.BlockByNumber(ctx, new(big.Int).SetUint64(n)))
		rs := must[[]*types.Receipt](t)(hc.BlockReceipts(ctx, rpc.BlockNumberOrHashWithNumber(rpc.BlockNumber(n))))
		for i, tx := range blk.Transactions() {
			if rs[i].Status == types.ReceiptStatusSuccessful && rs[i].GasUsed*100 > tx.Gas()*90 && tx.Gas() > 21_000 {
				t.Errorf("tx %s used %d of %d gas", tx.Hash(), rs[i].GasUsed, tx.Gas())
			}
			if bytes.HasPrefix(tx.Data(), purchase) {
				quantities[perPurchase[tx.Hash()]]++
			}
		}
	}
	if quantities[1] == 0 || quantities[2] == 0 || quantities[3] == 0 || len(quantities) != 3 {
		t.Errorf("purchase quantities %v, want 1..3", quantities)
	}

	// Metadata URIs: mostly ipfs://, some empty, some the gateway cannot serve; some events are
	// organised by a smart wallet.
	kinds := map[string]int{}
	viaWallet := 0
	for id := uint64(1); id <= uint64(s.Events); id++ {
		d := must[EventDetails](t)(c.EventDetails(ctx, id))
		switch {
		case d.MetadataURI == "":
			kinds["empty"]++
		case strings.HasPrefix(d.MetadataURI, "ipfs://"):
			kinds["ipfs"]++
		default:
			kinds["other"]++
		}
		if _, ok := tr.keys[d.Organizer]; !ok {
			viaWallet++
		}
	}
	if kinds["ipfs"] == 0 || kinds["empty"]+kinds["other"] == 0 {
		t.Errorf("metadata URI kinds %v", kinds)
	}
	if viaWallet == 0 {
		t.Error("no event organised by a smart wallet")
	}
}

// After many injected reorgs the generator's incrementally rewound model equals a model built
// from scratch from the final canonical chain.
func TestTrafficReorgsKeepModelExact(t *testing.T) {
	ctx := context.Background()
	c := startChain(t, Config{MaxReorgDepth: 6})
	tr := NewTraffic(c, TrafficConfig{TxsPerBlock: 8, ReorgEvery: 4, ReorgMaxDepth: 4}, testLogger(t))
	hc := dial(t, c.HTTPURL)
	depths := map[int]int{}
	for i := 0; i < 90; i++ {
		r, err := tr.Step(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if r.Reorg != nil {
			depths[r.Reorg.Depth]++
			at := must[*types.Header](t)(hc.HeaderByNumber(ctx, new(big.Int).SetUint64(r.Reorg.OldHead)))
			if at.Hash() == r.Reorg.OldHeadHash {
				t.Fatalf("block %d unchanged by a reorg", r.Reorg.OldHead)
			}
			if r.Reorg.Depth > 4 {
				t.Fatalf("reorg depth %d > 4", r.Reorg.Depth)
			}
		}
	}
	s := tr.Stats()
	if s.Reorgs < 10 || len(depths) < 3 {
		t.Errorf("reorgs %d, depths %v", s.Reorgs, depths)
	}
	if s.Reverted != 0 {
		t.Errorf("%d reverted outside reorg branches", s.Reverted)
	}
	fresh := NewTraffic(c, TrafficConfig{}, testLogger(t))
	c.mu.Lock()
	err := fresh.syncLocked()
	c.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	got, want := modelSummary(tr.m), modelSummary(fresh.m)
	if got != want {
		t.Errorf("rewound model differs from a fresh one:\n%s", firstDiff(got, want))
	}
	if !strings.Contains(want, "tickets ") || len(tr.m.tickets) == 0 {
		t.Error("empty model")
	}
}

func modelSummary(m *model) string {
	var b strings.Builder
	fmt.Fprintf(&b, "head %d %s\n", m.head, m.hashes[m.head])
	lines := func(prefix string, keys []string) {
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "%s %s\n", prefix, k)
		}
	}
	var ks []string
	for a, v := range m.verified {
		ks = append(ks, fmt.Sprint(a, v))
	}
	lines("verified", ks)
	for _, e := range m.events {
		fmt.Fprintf(&b, "event %d %s %s %s %d/%d %v\n", e.id, e.organizer, e.clone, e.price, e.minted, e.max, e.active)
	}
	fmt.Fprintf(&b, "tickets %d\n", len(m.tickets))
	for _, tk := range m.tickets {
		fmt.Fprintf(&b, "ticket %d-%d %s %v %v\n", tk.ev.id, tk.id, tk.owner, tk.used, tk.restricted)
	}
	for _, l := range m.listings {
		fmt.Fprintf(&b, "listing %s %d-%d %s %s %v\n", l.id, l.tk.ev.id, l.tk.id, l.seller, l.price, l.active)
	}
	ks = ks[:0]
	for k := range m.attended {
		ks = append(ks, fmt.Sprint(k.event, k.user))
	}
	lines("attended", ks)
	ks = ks[:0]
	for a, n := range m.poaps {
		ks = append(ks, fmt.Sprint(a, n))
	}
	lines("poaps", ks)
	ks = ks[:0]
	for a, n := range m.loyalty {
		ks = append(ks, fmt.Sprint(a, n))
	}
	lines("loyalty", ks)
	ks = ks[:0]
	for k := range m.early {
		ks = append(ks, fmt.Sprint(k.event, k.user))
	}
	lines("early", ks)
	for _, cd := range m.codes {
		fmt.Fprintf(&b, "code %s %s\n", cd.code, cd.inviter)
	}
	ks = ks[:0]
	for a := range m.referred {
		ks = append(ks, a.Hex())
	}
	lines("referred", ks)
	for _, w := range m.wallets {
		fmt.Fprintf(&b, "wallet %s %s %v\n", w.addr, w.owner, w.verified)
	}
	ks = ks[:0]
	for tp, n := range m.logs {
		ks = append(ks, fmt.Sprint(tp, n))
	}
	lines("logs", ks)
	return b.String()
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < max(len(al), len(bl)); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return fmt.Sprintf("line %d:\n rewound %q\n fresh   %q", i, x, y)
		}
	}
	return ""
}

// A pre-built history is saved and imported again block for block; traffic continues on it.
func TestPrebuiltHistoryCache(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	h := HistoryConfig{Blocks: 20, TxsPerBlock: 8, CacheDir: dir}
	c1, err := StartWithHistory(ctx, Config{}, h, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	head1 := c1.Head()
	files := must[[]string](t)(filepath.Glob(filepath.Join(dir, "devchain-history-*.rlp.gz")))
	if head1.Number.Uint64() != 21 || len(files) != 1 {
		t.Fatalf("head %d, cache files %v", head1.Number, files)
	}
	logs1 := must[[]types.Log](t)(c1.Client().FilterLogs(ctx, ethereum.FilterQuery{FromBlock: big.NewInt(0), ToBlock: head1.Number}))
	c1.Close()
	if len(logs1) < 20*8 {
		t.Errorf("only %d logs in 20 dense blocks", len(logs1))
	}

	c2, err := StartWithHistory(ctx, Config{}, h, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	hc := dial(t, c2.HTTPURL)
	atHead := must[*types.Header](t)(hc.HeaderByNumber(ctx, big.NewInt(21)))
	if atHead.Hash() != head1.Hash() {
		t.Fatalf("imported block 21 is %s, built %s", atHead.Hash(), head1.Hash())
	}
	logs2 := must[[]types.Log](t)(hc.FilterLogs(ctx, ethereum.FilterQuery{FromBlock: big.NewInt(0), ToBlock: big.NewInt(21)}))
	if len(logs2) != len(logs1) {
		t.Errorf("imported history has %d logs, built %d", len(logs2), len(logs1))
	}
	if _, err := hc.TransactionReceipt(ctx, logs1[len(logs1)-1].TxHash); err != nil {
		t.Errorf("receipt lookup after import: %v", err)
	}
	tr := NewTraffic(c2, TrafficConfig{}, testLogger(t))
	for i := 0; i < 5; i++ {
		if _, err := tr.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if s := tr.Stats(); s.Reverted != 0 || s.Events == 0 || s.Tickets < 50 {
		t.Errorf("traffic on the imported chain: %+v", s)
	}
	if c2.Head().Time <= head1.Time {
		t.Error("time did not move on after the import")
	}

	// A damaged cache is rebuilt, not trusted.
	if err := os.WriteFile(files[0], []byte("not a chain"), 0o644); err != nil {
		t.Fatal(err)
	}
	c3, err := StartWithHistory(ctx, Config{}, h, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if c3.Head().Number.Uint64() != 21 {
		t.Errorf("rebuilt head %d", c3.Head().Number)
	}
	if fi, err := os.Stat(files[0]); err != nil || fi.Size() < 1000 {
		t.Errorf("cache not rewritten: %v", err)
	}
}

// A history built for a node with a log index is built without one and imported into a node
// that has it: the chain handed back indexes the whole history, on disk in the configured
// datadir, and the build's own datadir is gone.
func TestPrebuiltHistoryIndexedAfterBuild(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	h := HistoryConfig{Blocks: 20, TxsPerBlock: 8, CacheDir: t.TempDir()}
	c, err := StartWithHistory(ctx, Config{DataDir: data, LogIndex: true}, h, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if n := c.Head().Number.Uint64(); n != 22 { // the import seals one block on top
		t.Fatalf("head %d after build and import, want 22", n)
	}
	if err := c.WaitLogIndex(ctx); err != nil {
		t.Fatal(err)
	}
	logs := must[[]types.Log](t)(c.Client().FilterLogs(ctx, ethereum.FilterQuery{FromBlock: big.NewInt(0), ToBlock: big.NewInt(21)}))
	if len(logs) < 20*8 {
		t.Errorf("only %d logs through the log index in 20 dense blocks", len(logs))
	}
	if left := must[[]string](t)(filepath.Glob(filepath.Join(data, "build-*"))); len(left) != 0 {
		t.Errorf("the build's datadir is left: %v", left)
	}
}

func TestRunPrintsAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, RunConfig{Traffic: TrafficConfig{BlockInterval: 20 * time.Millisecond}, ShowKeys: true}, testLogger(t), &out)
	}()
	wants := []string{"HTTP RPC", "http://127.0.0.1:", "ws://127.0.0.1:", "EventFactory", "Marketplace", "POAPAttendance",
		"IncentiveManager", "/ipfs/", "user 0", "chain id 1337"}
	testwait.For(t, "Run to print where to reach the chain", func() (bool, string) {
		select {
		case err := <-done:
			t.Fatalf("Run returned before it was stopped: %v", err)
		default:
		}
		text := out.String()
		for _, want := range wants {
			if !strings.Contains(text, want) {
				return false, fmt.Sprintf("no %q in:\n%s", want, text)
			}
		}
		return true, ""
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after ctx ended: %v", err)
		}
	case <-testwait.After(t):
		t.Fatal("Run did not return after its context ended")
	}
	text := out.String()
	keys, _ := deriveKeys(1, 4)
	if !strings.Contains(text, keys[0].Address.Hex()) || !slices.ContainsFunc(strings.Split(text, "\n"), func(l string) bool {
		return strings.HasPrefix(l, "EventFactory") && strings.Contains(l, "0x")
	}) {
		t.Errorf("addresses missing:\n%s", text)
	}
}

// lockedBuffer is a bytes.Buffer that Run writes to while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
