package echain

import (
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/echain/echain-indexer/schema/entity"
)

// txType is a transactionType row of SPEC.md; a lower value wins when a transaction's changing
// logs match several rows. noChange marks a log that changed no entity.
type txType int

const (
	noChange txType = iota
	txTicketResale
	txListingCreated
	txListingCancelled
	txEventCreated
	txEventUpdated
	txEventStatusChanged
	txTicketPurchase
	txTicketCheckIn
	txAttendanceMinted
	txRewardMinted
	txTicketBurn
	txTicketTransfer
	txOther
)

var txTypeNames = [...]string{
	txTicketResale:       "ticket_resale",
	txListingCreated:     "listing_created",
	txListingCancelled:   "listing_cancelled",
	txEventCreated:       "event_created",
	txEventUpdated:       "event_updated",
	txEventStatusChanged: "event_status_changed",
	txTicketPurchase:     "ticket_purchase",
	txTicketCheckIn:      "ticket_check_in",
	txAttendanceMinted:   "attendance_minted",
	txRewardMinted:       "reward_minted",
	txTicketBurn:         "ticket_burn",
	txTicketTransfer:     "ticket_transfer",
	txOther:              "other",
}

func (t txType) String() string { return txTypeNames[t] }

// change is what one log did: its transactionType row (noChange when it changed no entity)
// and the Event and Ticket it refers to ("" when none).
type change struct {
	kind   txType
	event  string
	ticket string
}

// txState gathers the changing logs of one transaction within the block.
type txState struct {
	hash          common.Hash
	kind          txType
	event, ticket string
}

func (a *applier) record(l *types.Log, c change) {
	s := a.byTx[l.TxHash]
	if s == nil {
		s = &txState{hash: l.TxHash, kind: c.kind}
		a.byTx[l.TxHash] = s
		a.txs = append(a.txs, s)
	}
	s.kind = min(s.kind, c.kind)
	if s.event == "" {
		s.event = c.event
	}
	if s.ticket == "" {
		s.ticket = c.ticket
	}
}

// saveTransactions writes the Transaction of every transaction that changed an entity. All of
// a transaction's logs are in one block, so each is written once, complete.
func (a *applier) saveTransactions() error {
	for _, s := range a.txs {
		tx := a.blk.Txs[s.hash]
		if tx == nil {
			return fmt.Errorf("transaction %s is not in the block's Txs", s.hash)
		}
		t := &entity.Transaction{
			ID:              lowerHash(s.hash),
			From:            addrBytes(tx.From),
			To:              []byte{}, // a contract creation has no recipient: empty bytes ("0x")
			Value:           orZero(tx.Value),
			TransactionType: s.kind.String(),
			GasUsed:         new(big.Int).SetUint64(tx.GasUsed),
			GasPrice:        orZero(tx.GasPrice),
			Timestamp:       a.ts,
			BlockNumber:     big.NewInt(a.blk.Ptr.Number),
		}
		if tx.To != nil {
			t.To = addrBytes(*tx.To)
		}
		if s.event != "" {
			t.Event = &s.event
		}
		if s.ticket != "" {
			t.Ticket = &s.ticket
		}
		t.Save(a.b)
	}
	return nil
}

func orZero(x *big.Int) *big.Int {
	if x == nil {
		return new(big.Int)
	}
	return x
}

func lowerHash(h common.Hash) string { return "0x" + common.Bytes2Hex(h[:]) }
