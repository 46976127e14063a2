package devchain

import (
	"context"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/rpc"
)

// The Base Sepolia lookalike serves chain id 84532 with the contracts at the profile's addresses
// (working: the factory makes clones that mint), and its finalized block lags the head by time.
func TestLikeBaseSepolia(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startChain(t, Config{Like: "base-sepolia", FinalizedLag: 30 * time.Second})
	hc := dial(t, c.HTTPURL)
	id, err := hc.ChainID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id.Uint64() != 84532 {
		t.Fatalf("chain id %d, want 84532", id)
	}
	like := lookalikes["base-sepolia"]
	if c.Addresses.EventFactory != like.eventFactory || c.Addresses.IncentiveManager != like.incentiveManager {
		t.Fatalf("addresses %+v", c.Addresses)
	}
	for _, a := range []common.Address{like.eventFactory, like.marketplace, like.poapAttendance, like.incentiveManager} {
		code, err := hc.CodeAt(ctx, a, nil)
		if err != nil || len(code) == 0 {
			t.Fatalf("no code at %s: %v", a, err)
		}
	}

	tr := NewTraffic(c, TrafficConfig{TxsPerBlock: 10}, testLogger(t))
	for i := 0; i < 60; i++ {
		if _, err := tr.Step(ctx); err != nil {
			t.Fatalf("traffic step %d: %v", i, err)
		}
	}
	s := tr.Stats()
	if s.Events == 0 || s.Tickets == 0 || s.Reverted > s.Txs/4 {
		t.Fatalf("traffic on the lookalike: %+v", s)
	}
	logs, err := hc.FilterLogs(ctx, ethereum.FilterQuery{FromBlock: big.NewInt(0), Addresses: []common.Address{like.eventFactory},
		Topics: [][]common.Hash{{c.contract.topics.eventCreated}}})
	if err != nil || len(logs) == 0 {
		t.Fatalf("EventCreated logs of the real factory address: %d, %v", len(logs), err)
	}

	head := c.Head()
	fin, err := hc.HeaderByNumber(ctx, big.NewInt(int64(rpc.FinalizedBlockNumber)))
	if err != nil {
		t.Fatal(err)
	}
	if head.Time-fin.Time < 30 || fin.Number.Uint64() == 0 {
		t.Fatalf("finalized block %d (time %d) at head %d (time %d): want the newest block 30 s older", fin.Number, fin.Time, head.Number, head.Time)
	}
	next, err := hc.HeaderByNumber(ctx, new(big.Int).Add(fin.Number, big.NewInt(1)))
	if err != nil {
		t.Fatal(err)
	}
	if head.Time-next.Time >= 30 {
		t.Fatalf("block %d is 30 s older than the head but not final", next.Number)
	}
}
