package echain

import (
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/echain/echain-indexer/schema/entity"
)

// marketplace handles Marketplace logs: TicketListed, TicketSold and ListingCancelled.
func (a *applier) marketplace(l *types.Log) (change, error) {
	abi := a.h.abi
	switch l.Topics[0] {
	case abi.ticketListed.ID:
		return a.ticketListed(l)
	case abi.ticketSold.ID:
		return a.ticketSold(l)
	case abi.listingCancelled.ID:
		return a.listingCancelled(l)
	}
	return change{}, nil
}

// ticketListed opens a Listing. The listed ticket's event comes from its clone, which moved the
// ticket into escrow in the same transaction and so is among the block's sources. A token of
// any other contract (the Marketplace accepts any ERC-721) is no Echain ticket: skipped.
func (a *applier) ticketListed(l *types.Log) (change, error) {
	a.h.m.logs.WithLabelValues("TicketListed").Inc()
	f := decode(a.h.abi.ticketListed, l)
	id, contract, token := f.bytes32("listingId"), f.addr("ticketContract"), f.big("tokenId")
	seller, price := f.addr("seller"), f.big("price")
	if f.err != nil {
		return change{}, f.err
	}
	src, ok := a.blk.Sources[contract]
	if !ok || src.Template != TicketTemplate {
		a.h.m.skipped.WithLabelValues("unknown_ticket_contract").Inc()
		a.h.log.Debug("listing of a token that is no Echain ticket", "contract", contract, "token", token, "tx", l.TxHash)
		return change{}, nil
	}
	tid := ticketID(src.Key, token)
	(&entity.Listing{
		ID:        listingID(id),
		Ticket:    tid,
		Event:     src.Key,
		Seller:    addrBytes(seller),
		Price:     price,
		Status:    "active",
		CreatedAt: a.ts,
		UpdatedAt: a.ts,
	}).Save(a.b)
	return change{kind: txListingCreated, event: src.Key, ticket: tid}, nil
}

// ticketSold closes the Listing as sold and reprices the ticket at the sale price.
func (a *applier) ticketSold(l *types.Log) (change, error) {
	a.h.m.logs.WithLabelValues("TicketSold").Inc()
	f := decode(a.h.abi.ticketSold, l)
	id, buyer, price, fee := f.bytes32("listingId"), f.addr("buyer"), f.big("price"), f.big("marketplaceFee")
	if f.err != nil {
		return change{}, f.err
	}
	ls, err := a.listing(id)
	if err != nil || ls == nil {
		return change{}, err
	}
	ls.Status = "sold"
	ls.Buyer = addrBytes(buyer)
	ls.MarketplaceFee = fee
	ls.UpdatedAt = a.ts
	ls.Save(a.b)
	t, err := entity.LoadTicket(a.ctx, a.b, ls.Ticket)
	if err != nil {
		return change{}, err
	}
	if t != nil {
		t.PurchasePrice, t.UpdatedAt = price, a.ts
		t.Save(a.b)
	}
	return change{kind: txTicketResale, event: ls.Event, ticket: ls.Ticket}, nil
}

func (a *applier) listingCancelled(l *types.Log) (change, error) {
	a.h.m.logs.WithLabelValues("ListingCancelled").Inc()
	f := decode(a.h.abi.listingCancelled, l)
	id := f.bytes32("listingId")
	if f.err != nil {
		return change{}, f.err
	}
	ls, err := a.listing(id)
	if err != nil || ls == nil {
		return change{}, err
	}
	ls.Status, ls.UpdatedAt = "cancelled", a.ts
	ls.Save(a.b)
	return change{kind: txListingCancelled, event: ls.Event, ticket: ls.Ticket}, nil
}

// listing loads a Listing; nil for a listing of no Echain ticket (skipped when it was opened).
func (a *applier) listing(id [32]byte) (*entity.Listing, error) {
	ls, err := entity.LoadListing(a.ctx, a.b, listingID(id))
	if err != nil {
		return nil, err
	}
	if ls == nil {
		a.h.m.skipped.WithLabelValues("unknown_listing").Inc()
	}
	return ls, nil
}

func listingID(id [32]byte) string { return "0x" + common.Bytes2Hex(id[:]) }
