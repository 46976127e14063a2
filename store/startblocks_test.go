package store_test

import (
	"context"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/echain/echain-indexer/schema"
	"github.com/echain/echain-indexer/store"
)

// Start blocks found by `start_block: auto` are kept across reopening and a Reset (a fact of the
// chain, not indexed state); saving again replaces.
func TestStartBlocksKept(t *testing.T) {
	ctx := context.Background()
	sch, err := schema.Load()
	if err != nil {
		t.Fatal(err)
	}
	s, url := openStore(t, sch, store.Options{})
	a, b := common.HexToAddress("0xA97cB40548905B05A67fCD4765438aFBEA4030fc"), common.HexToAddress("0x08344CfBfB3afB2e114A0dbABbaF40e7eB62FD33")
	if got, err := s.StartBlocks(ctx); err != nil || len(got) != 0 {
		t.Fatalf("fresh database: %v %v", got, err)
	}
	if err := s.SaveStartBlock(ctx, "EventFactory", a, 12); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveStartBlock(ctx, "POAPAttendance", b, 7); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveStartBlock(ctx, "POAPAttendance", b, 9); err != nil {
		t.Fatal(err)
	}
	if err := s.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2 := openURL(t, url, sch, store.Options{})
	got, err := s2.StartBlocks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[a] != 12 || got[b] != 9 {
		t.Fatalf("kept start blocks %v, want %s: 12, %s: 9", got, a, b)
	}
}
