package echain

import (
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/echain/echain-indexer/indexer"
	"github.com/echain/echain-indexer/store"
)

// TestApplySkipsBadLogs: logs that cannot be used are skipped and counted, never fatal (a
// retry could not change them), while a block that breaks the follower's contract is an error.
func TestApplySkipsBadLogs(t *testing.T) {
	x := newHarness(t, harnessOpts{archive: true, noGateway: true})
	a := x.h.abi
	clone := common.HexToAddress("0xc10e")
	txh := common.HexToHash("0xabc")
	word := func(n int64) common.Hash { return common.BigToHash(big.NewInt(n)) }
	ptr := store.BlockPtr{Number: 10, Hash: common.HexToHash("0x10"), ParentHash: common.HexToHash("0x0f"), Timestamp: 1_700_000_000}
	blk := &indexer.Block{
		Ptr: ptr,
		Logs: []types.Log{
			// EventCreated with a topic missing.
			{Address: x.cfg.EventFactory.Address, Topics: []common.Hash{a.eventCreated.ID, word(1)}, TxHash: txh, Index: 0, BlockNumber: 10},
			// A ticket Transfer shaped like an ERC-20 one (3 topics).
			{Address: clone, Topics: []common.Hash{a.transfer.ID, word(1), word(2)}, Data: word(3).Bytes(), TxHash: txh, Index: 1, BlockNumber: 10},
			// TicketUsed whose data is cut short.
			{Address: clone, Topics: []common.Hash{a.ticketUsed.ID, word(1), word(2)}, Data: []byte{1, 2}, TxHash: txh, Index: 2, BlockNumber: 10},
			// A log of an address the mappings do not follow.
			{Address: common.HexToAddress("0xdead"), Topics: []common.Hash{a.transfer.ID, word(0), word(1), word(2)}, TxHash: txh, Index: 3, BlockNumber: 10},
			// A removed log.
			{Address: x.cfg.Marketplace.Address, Topics: []common.Hash{a.listingCancelled.ID, word(9), word(8)}, TxHash: txh, Index: 4, BlockNumber: 10, Removed: true},
			// A listing the mappings never saw opened.
			{Address: x.cfg.Marketplace.Address, Topics: []common.Hash{a.listingCancelled.ID, word(9), word(8)}, TxHash: txh, Index: 5, BlockNumber: 10},
		},
		Txs:     map[common.Hash]*indexer.Tx{txh: {Hash: txh, Value: new(big.Int), GasPrice: new(big.Int)}},
		Sources: map[common.Address]store.DataSource{clone: {Template: TicketTemplate, Address: clone, Block: 5, Key: "1"}},
	}
	b := x.st.NewBatch()
	b.StartBlock(ptr)
	if err := x.h.Apply(x.ctx, blk, b); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if b.Len() != 0 {
		t.Errorf("%d entities set from unusable logs", b.Len())
	}
	for reason, want := range map[string]float64{"undecodable": 3, "unknown_address": 1, "unknown_listing": 1} {
		if got := counterValue(t, x.h.m.skipped.WithLabelValues(reason)); got != want {
			t.Errorf("skipped %s = %v, want %v", reason, got, want)
		}
	}

	// A changing log whose transaction the follower did not supply.
	blk2 := &indexer.Block{
		Ptr: ptr,
		Logs: []types.Log{{Address: x.cfg.EventFactory.Address, Topics: []common.Hash{a.organizerVerified.ID, common.BytesToHash(clone.Bytes())},
			TxHash: common.HexToHash("0xdef"), BlockNumber: 10}},
		Txs: map[common.Hash]*indexer.Tx{},
	}
	b = x.st.NewBatch()
	b.StartBlock(ptr)
	if err := x.h.Apply(x.ctx, blk2, b); err == nil || !strings.Contains(err.Error(), "not in the block's Txs") {
		t.Errorf("Apply without the transaction: %v", err)
	}
}

func TestDiscoverAndDataSources(t *testing.T) {
	x := newHarness(t, harnessOpts{archive: true, noGateway: true})
	if n := len(x.h.Contracts()); n != 4 {
		t.Fatalf("%d contracts", n)
	}
	for _, c := range x.h.Contracts() {
		for _, tp := range c.Topics {
			if c.Name == "IncentiveManager" && tp == x.h.abi.incentive.Events["ReferralCodeGenerated"].ID {
				t.Error("ReferralCodeGenerated is fetched but changes no entity")
			}
		}
	}
	tpl := x.h.Templates()
	if len(tpl) != 1 || tpl[0].Name != TicketTemplate || len(tpl[0].Topics) != 4 {
		t.Fatalf("templates: %+v", tpl)
	}
	org := x.dc.User(0)
	x.send(x.dc.VerifyOrganizer(x.ctx, org))
	x.mine()
	now := x.dc.Head().Time
	c := x.send(x.dc.CreateEvent(x.ctx, org, devchainParams("D", now)))
	r := x.mine(c)[0]
	created := x.created(r)
	var found int
	for _, l := range r.Logs {
		for _, ds := range x.h.Discover(l) {
			found++
			if ds.Template != TicketTemplate || ds.Address != created.TicketContract || ds.Key != "1" || ds.Block != int64(r.BlockNumber.Uint64()) {
				t.Errorf("discovered %+v for %+v", ds, created)
			}
		}
	}
	if found != 1 {
		t.Errorf("%d data sources from a createEvent receipt, want 1 (the clone's own logs create none)", found)
	}
	x.index()
	srcs, err := x.st.DataSources(x.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) != 1 || srcs[0].Address != created.TicketContract {
		t.Errorf("store data sources: %+v", srcs)
	}
}

// TestReferralSeenTwiceKeepsTheFirst: the dev contracts refuse a second referral of an invitee,
// another deployment might not; the Referral is immutable, so the first stays and the second
// log still makes its transaction a Transaction.
func TestReferralSeenTwiceKeepsTheFirst(t *testing.T) {
	x := newHarness(t, harnessOpts{archive: true, noGateway: true})
	a := x.h.abi
	invitee, first, second := common.HexToAddress("0x1111"), common.HexToAddress("0x2222"), common.HexToAddress("0x3333")
	for i, inviter := range []common.Address{first, second} {
		data, err := a.referralUsed.Inputs.NonIndexed().Pack(invitee, inviter)
		if err != nil {
			t.Fatal(err)
		}
		n := int64(20 + i)
		txh := common.BigToHash(big.NewInt(n))
		ptr := store.BlockPtr{Number: n, Hash: common.BigToHash(big.NewInt(1000 + n)), Timestamp: 1_700_000_000 + n}
		to := &x.cfg.IncentiveManager.Address
		if i == 0 {
			to = nil // as if a contract's constructor had called useReferralCode
		}
		blk := &indexer.Block{
			Ptr:  ptr,
			Logs: []types.Log{{Address: x.cfg.IncentiveManager.Address, Topics: []common.Hash{a.referralUsed.ID}, Data: data, TxHash: txh, BlockNumber: uint64(n)}},
			Txs:  map[common.Hash]*indexer.Tx{txh: {Hash: txh, From: invitee, To: to, Value: new(big.Int), GasUsed: 50000, GasPrice: big.NewInt(7)}},
		}
		b := x.st.NewBatch()
		b.StartBlock(ptr)
		if err := x.h.Apply(x.ctx, blk, b); err != nil {
			t.Fatal(err)
		}
		if err := x.st.Commit(x.ctx, b, store.Commit{Head: ptr, Window: []store.BlockPtr{ptr}, Finalized: n - 1}); err != nil {
			t.Fatal(err)
		}
	}
	st := x.state()
	r := st.Get("Referral", hexAddr(invitee))
	if r == nil || r["inviter"] != hexAddr(first) || r["timestamp"] != "1700000020" {
		t.Errorf("referral: %v, want the first (inviter %s)", r, hexAddr(first))
	}
	tx := st.Get("Transaction", hexHash(common.BigToHash(big.NewInt(21))))
	if tx == nil || tx["transactionType"] != "other" || tx["gasPrice"] != "7" || tx["to"] != hexAddr(x.cfg.IncentiveManager.Address) {
		t.Errorf("transaction of the second referral: %v", tx)
	}
	if tx := st.Get("Transaction", hexHash(common.BigToHash(big.NewInt(20)))); tx == nil || tx["to"] != "0x" {
		t.Errorf("transaction of a contract creation: %v, want to = 0x", tx)
	}
}
