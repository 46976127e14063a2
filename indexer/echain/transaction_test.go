package echain

import (
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// The dev contracts emit at most one kind of changing log per transaction (besides a clone's
// Transfer), so each priority row is checked here over mixed transactions the real chain could
// produce through a multicall.
func TestTransactionTypePriority(t *testing.T) {
	c := func(k txType, ev, tk string) change { return change{kind: k, event: ev, ticket: tk} }
	for _, tc := range []struct {
		name     string
		changes  []change
		want     string
		wantEv   string
		wantTick string
	}{
		{"resale beats everything", []change{c(txTicketTransfer, "1", "1-2"), c(txTicketResale, "1", "1-2"), c(txListingCreated, "1", "1-3")}, "ticket_resale", "1", "1-2"},
		{"listing created beats cancelled", []change{c(txListingCancelled, "1", "1-3"), c(txListingCreated, "2", "2-1")}, "listing_created", "1", "1-3"},
		{"listing cancelled beats event created", []change{c(txEventCreated, "3", ""), c(txListingCancelled, "1", "1-3")}, "listing_cancelled", "3", "1-3"},
		{"event created beats updated", []change{c(txEventUpdated, "1", ""), c(txEventCreated, "2", "")}, "event_created", "1", ""},
		{"event updated beats status", []change{c(txEventStatusChanged, "1", ""), c(txEventUpdated, "1", "")}, "event_updated", "1", ""},
		{"status beats purchase", []change{c(txTicketPurchase, "1", "1-1"), c(txEventStatusChanged, "2", "")}, "event_status_changed", "1", "1-1"},
		{"purchase beats its own Transfer", []change{c(txTicketTransfer, "1", "1-7"), c(txTicketPurchase, "1", "1-7")}, "ticket_purchase", "1", "1-7"},
		{"check-in beats attendance", []change{c(txAttendanceMinted, "", ""), c(txTicketCheckIn, "1", "1-1")}, "ticket_check_in", "1", "1-1"},
		{"attendance beats reward", []change{c(txRewardMinted, "1", ""), c(txAttendanceMinted, "2", "")}, "attendance_minted", "1", ""},
		{"reward beats burn", []change{c(txTicketBurn, "1", "1-1"), c(txRewardMinted, "", "")}, "reward_minted", "1", "1-1"},
		{"burn beats transfer", []change{c(txTicketTransfer, "1", "1-1"), c(txTicketBurn, "1", "1-2")}, "ticket_burn", "1", "1-1"},
		{"transfer beats other", []change{c(txOther, "", ""), c(txTicketTransfer, "1", "1-1")}, "ticket_transfer", "1", "1-1"},
		{"other alone", []change{c(txOther, "", ""), c(txOther, "", "")}, "other", "", ""},
		{"first references win, later fill gaps", []change{c(txOther, "", ""), c(txOther, "5", ""), c(txOther, "6", "6-1")}, "other", "5", "6-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &applier{byTx: map[common.Hash]*txState{}}
			l := &types.Log{TxHash: common.HexToHash("0x01")}
			for _, ch := range tc.changes {
				a.record(l, ch)
			}
			if len(a.txs) != 1 {
				t.Fatalf("%d transactions", len(a.txs))
			}
			s := a.txs[0]
			if s.kind.String() != tc.want || s.event != tc.wantEv || s.ticket != tc.wantTick {
				t.Errorf("got %s event %q ticket %q, want %s %q %q", s.kind, s.event, s.ticket, tc.want, tc.wantEv, tc.wantTick)
			}
		})
	}
}
