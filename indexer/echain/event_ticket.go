package echain

import (
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/echain/echain-indexer/schema/entity"
)

// eventTicket handles the logs of an event's EventTicket clone: Transfer, TicketMinted,
// TicketUsed and TicketTransferRestricted. eventID is the clone's event (its data source key).
func (a *applier) eventTicket(l *types.Log, eventID string) (change, error) {
	abi := a.h.abi
	switch l.Topics[0] {
	case abi.transfer.ID:
		return a.ticketTransfer(l, eventID)
	case abi.ticketMinted.ID:
		return a.ticketMinted(l, eventID)
	case abi.ticketUsed.ID:
		return a.ticketUsed(l, eventID)
	case abi.ticketTransferRestricted.ID:
		return a.ticketTransferRestricted(l, eventID)
	}
	return change{}, nil
}

func ticketID(eventID string, tokenID *big.Int) string { return eventID + "-" + tokenID.String() }

// ticketTransfer records every Transfer, mints and burns included. A mint's Transfer comes
// before its TicketMinted, so it names the ticket by id before the Ticket exists and leaves the
// Ticket to TicketMinted; later Transfers move the owner, and one to the zero address burns.
func (a *applier) ticketTransfer(l *types.Log, eventID string) (change, error) {
	a.h.m.logs.WithLabelValues("Transfer").Inc()
	f := decode(a.h.abi.transfer, l)
	from, to, token := f.addr("from"), f.addr("to"), f.big("tokenId")
	if f.err != nil {
		return change{}, f.err
	}
	tid := ticketID(eventID, token)
	(&entity.Transfer{
		ID:              fmt.Sprintf("%s-%d", lowerHash(l.TxHash), l.Index),
		Ticket:          tid,
		From:            addrBytes(from),
		To:              addrBytes(to),
		TransactionHash: l.TxHash.Bytes(),
		BlockNumber:     new(big.Int).SetUint64(l.BlockNumber),
		Timestamp:       a.ts,
	}).Save(a.b)
	if from != (common.Address{}) {
		t, err := entity.LoadTicket(a.ctx, a.b, tid)
		if err != nil {
			return change{}, err
		}
		if t != nil {
			t.Owner = addrBytes(to)
			if to == (common.Address{}) {
				t.Burned = true
			}
			t.UpdatedAt = a.ts
			t.Save(a.b)
		} else {
			a.h.m.skipped.WithLabelValues("unknown_ticket").Inc()
		}
	}
	kind := txTicketTransfer
	if to == (common.Address{}) {
		kind = txTicketBurn
	}
	return change{kind: kind, event: eventID, ticket: tid}, nil
}

// ticketMinted creates the Ticket at the event's face value and counts the sale for the Event.
func (a *applier) ticketMinted(l *types.Log, eventID string) (change, error) {
	a.h.m.logs.WithLabelValues("TicketMinted").Inc()
	f := decode(a.h.abi.ticketMinted, l)
	token, to, seat, tier := f.big("tokenId"), f.addr("to"), f.big("seatNumber"), f.big("tier")
	if f.err != nil {
		return change{}, f.err
	}
	ev, err := a.event(eventID)
	if err != nil || ev == nil {
		return change{}, err
	}
	tid := ticketID(eventID, token)
	ticketType := "standard"
	if tier.Sign() != 0 {
		ticketType = "tier-" + tier.String()
	}
	(&entity.Ticket{
		ID:                 tid,
		Event:              eventID,
		Contract:           addrBytes(l.Address),
		TokenID:            token,
		Owner:              addrBytes(to),
		OriginalOwner:      addrBytes(to),
		SeatNumber:         seat,
		Tier:               tier,
		TicketType:         ticketType,
		Price:              ev.TicketPrice,
		PurchasePrice:      ev.TicketPrice,
		IsUsed:             false,
		TransferRestricted: false,
		Burned:             false,
		CreatedAt:          a.ts,
		UpdatedAt:          a.ts,
	}).Save(a.b)
	ev.TicketsSold = bigAdd(ev.TicketsSold, 1)
	ev.Revenue = new(big.Int).Mul(ev.TicketsSold, ev.TicketPrice)
	ev.UpdatedAt = a.ts
	a.saveEvent(ev)
	return change{kind: txTicketPurchase, event: eventID, ticket: tid}, nil
}

// ticketUsed checks the ticket in and counts it for the Event.
func (a *applier) ticketUsed(l *types.Log, eventID string) (change, error) {
	a.h.m.logs.WithLabelValues("TicketUsed").Inc()
	f := decode(a.h.abi.ticketUsed, l)
	token, when := f.big("tokenId"), f.big("timestamp")
	if f.err != nil {
		return change{}, f.err
	}
	tid := ticketID(eventID, token)
	t, err := entity.LoadTicket(a.ctx, a.b, tid)
	if err != nil {
		return change{}, err
	}
	if t != nil {
		t.IsUsed, t.UsedAt, t.UpdatedAt = true, when, a.ts
		t.Save(a.b)
	}
	ev, err := a.event(eventID)
	if err != nil {
		return change{}, err
	}
	if ev != nil {
		ev.TicketsUsed = bigAdd(ev.TicketsUsed, 1)
		ev.UpdatedAt = a.ts
		a.saveEvent(ev)
	}
	return change{kind: txTicketCheckIn, event: eventID, ticket: tid}, nil
}

func (a *applier) ticketTransferRestricted(l *types.Log, eventID string) (change, error) {
	a.h.m.logs.WithLabelValues("TicketTransferRestricted").Inc()
	f := decode(a.h.abi.ticketTransferRestricted, l)
	token, restricted := f.big("tokenId"), f.boolean("restricted")
	if f.err != nil {
		return change{}, f.err
	}
	tid := ticketID(eventID, token)
	t, err := entity.LoadTicket(a.ctx, a.b, tid)
	if err != nil {
		return change{}, err
	}
	if t != nil {
		t.TransferRestricted, t.UpdatedAt = restricted, a.ts
		t.Save(a.b)
	}
	return change{kind: txOther, event: eventID, ticket: tid}, nil
}
