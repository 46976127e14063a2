package indexer

import (
	"context"
	"io"
	"log/slog"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/echain/echain-indexer/devchain"
	"github.com/echain/echain-indexer/indexer/source"
	"github.com/echain/echain-indexer/schema"
	"github.com/echain/echain-indexer/store"
	"github.com/echain/echain-indexer/store/storetest"
)

// countingHandler follows one contract and writes nothing: enough to drive the follower's
// cursor, window and reverts.
type countingHandler struct{ addr common.Address }

func (h countingHandler) Contracts() []Contract {
	return []Contract{{Name: "any", Address: h.addr, Topics: []common.Hash{{1}}}}
}
func (countingHandler) Templates() []Template                      { return nil }
func (countingHandler) Discover(*types.Log) []store.DataSource     { return nil }
func (countingHandler) Prepare(context.Context, []*Block) error    { return nil }
func (countingHandler) Apply(context.Context, *Block, Batch) error { return nil }

// TestHeadsGoingBackwards feeds syncTo heads below the cursor: a late notification of a block
// on our chain changes nothing; a lower head on another branch reverts to the common ancestor
// and follows that branch.
func TestHeadsGoingBackwards(t *testing.T) {
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	c, err := devchain.Start(ctx, devchain.Config{MetadataAddr: "off"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tr := devchain.NewTraffic(c, devchain.TrafficConfig{TxsPerBlock: 2}, quiet)
	for i := 0; i < 20; i++ {
		if _, err := tr.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	sch, err := schema.Load()
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, storetest.NewDB(t), sch, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	src, err := source.New(ctx, source.Config{Endpoints: []source.Endpoint{{HTTPURL: c.HTTPURL}}}, quiet, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	fl, err := New(Config{StartBlock: int64(c.Addresses.StartBlock), FinalityDepth: 16}, src, st, countingHandler{c.Addresses.EventFactory}, quiet, reg)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := loadState(ctx, fl.store, fl.start)
	if err != nil {
		t.Fatal(err)
	}
	header := func(n int64) *types.Header {
		h, err := c.Client().HeaderByNumber(ctx, big.NewInt(n))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	head := c.Head()
	if _, err := fl.syncTo(ctx, cs, head, time.Now(), modeRealtime); err != nil {
		t.Fatal(err)
	}
	n := head.Number.Int64()
	if cs.head.Hash != head.Hash() {
		t.Fatalf("cursor %d, want the head %d", cs.head.Number, n)
	}

	// A late notification of a block we have: nothing happens.
	if moved, err := fl.syncTo(ctx, cs, header(n-4), time.Now(), modeRealtime); err != nil || moved {
		t.Fatalf("late head: moved %v err %v", moved, err)
	}
	if cs.head.Hash != head.Hash() || fl.Status().Reorgs != 0 {
		t.Fatalf("late head changed the cursor to %d or counted a reorg", cs.head.Number)
	}

	// The node reorganises 3 blocks; the follower first hears of a lower block of the new branch.
	res, err := tr.Reorg(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	lower := header(n - 1) // on the new branch, below our cursor
	if _, err := fl.syncTo(ctx, cs, lower, time.Now(), modeRealtime); err != nil {
		t.Fatal(err)
	}
	if cs.head.Number != n-1 || cs.head.Hash != lower.Hash() {
		t.Fatalf("after a lower head on a new branch the cursor is %d %s, want %d %s", cs.head.Number, cs.head.Hash, n-1, lower.Hash())
	}
	if r := fl.Status().LastReorg; r == nil || r.Depth != 3 || r.To.Number != int64(res.Reorg.Ancestor) {
		t.Fatalf("last reorg %+v, want depth 3 to %d", r, res.Reorg.Ancestor)
	}
	got, err := st.Head(ctx)
	if err != nil || got.Hash != lower.Hash() {
		t.Fatalf("store head %+v (%v), want %s", got, err, lower.Hash())
	}
	// Then the new head arrives and the follower moves on along the new branch.
	if _, err := fl.syncTo(ctx, cs, c.Head(), time.Now(), modeRealtime); err != nil {
		t.Fatal(err)
	}
	if cs.head.Hash != c.Head().Hash() {
		t.Fatalf("cursor %d, want the new head %d", cs.head.Number, c.Head().Number)
	}
}
