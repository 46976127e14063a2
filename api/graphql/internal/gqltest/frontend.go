package gqltest

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/echain/echain-indexer/schema"
	"github.com/echain/echain-indexer/store/storetest"
)

// FrontendSizes shapes a dataset for the frontend's pages: many tickets per holder and per
// event, many events per organizer and many listings per event, so a page that sorted every
// match instead of walking an index would show in its plan and its time.
type FrontendSizes struct {
	Owners        int // ticket holders; Tickets/Owners tickets each
	TicketEvents  int // events holding the tickets; Tickets/TicketEvents each
	PerPair       int // tickets per (holder, event): Tickets = Owners x TicketEvents x PerPair
	Events        int // events in all (the first TicketEvents hold tickets)
	Organizers    int // Events/Organizers events each
	Listings      int // listings, spread over the first ListingEvents events; half active
	ListingEvents int
	TransferEvery int // one mint Transfer for every n-th ticket
}

// Tickets is the number of tickets the sizes make.
func (sz FrontendSizes) Tickets() int { return sz.Owners * sz.TicketEvents * sz.PerPair }

// Frontend lists what a LoadFrontend dataset's pages are asked with.
type Frontend struct {
	Owners        [][]byte // ticket holders
	Organizers    []string // organizer ids
	TicketEvents  []string // event ids with tickets
	ListingEvents []string // event ids with listings
}

// LoadFrontend fills the entity tables of a database made by BulkDB with INSERT ... SELECT over
// generate_series (a million tickets in seconds, where a COPY from Go takes a minute), current
// versions from block 1, and moves the cursor to the last block. Columns are matched by field
// name, so the dataset follows the schema's column order and fails loudly when a non-null field
// gets no value.
func LoadFrontend(ctx context.Context, pool *pgxpool.Pool, sch *schema.Schema, sz FrontendSizes) (*Frontend, error) {
	o, e, nt := strconv.Itoa(sz.Owners), strconv.Itoa(sz.TicketEvents), sz.Tickets()
	// ticket g: holder g % O, event (g / O) % E + 1, token numbered within its event
	holder := func(g string) string { return "(" + g + " % " + o + ")" }
	event := func(g string) string { return "((" + g + " / " + o + ") % " + e + " + 1)" }
	token := func(g string) string {
		return "((" + g + " / (" + o + " * " + e + ")) * " + o + " + " + g + " % " + o + " + 1)"
	}
	ticketID := func(g string) string { return event(g) + "::text || '-' || " + token(g) + "::text" }
	sqlAddr := func(prefix, n string) string {
		return "decode('" + prefix + "' || lpad(to_hex(" + n + "), 38, '0'), 'hex')"
	}
	hexID := func(prefix, n string) string { return "'0x" + prefix + "' || lpad(to_hex(" + n + "), 38, '0')" }
	hash := func(prefix, n string) string { return "'0x" + prefix + "' || lpad(to_hex(" + n + "), 62, '0')" }
	var vid int64
	insert := func(typ string, n int, exprs map[string]string) error {
		t := sch.Type(typ)
		if t == nil {
			return fmt.Errorf("no type %s", typ)
		}
		if err := storetest.InsertSeries(ctx, pool, t, n, vid, storetest.VisibleFrom(t, "1"), exprs); err != nil {
			return err
		}
		vid += int64(n)
		return nil
	}
	type step struct {
		typ   string
		n     int
		exprs map[string]string
	}
	steps := []step{
		{"Organizer", sz.Organizers, map[string]string{"id": hexID("0a", "g"), "verified": "true",
			"eventsCreated": strconv.Itoa(sz.Events / sz.Organizers), "updatedAt": "1690000000"}},
		{"Event", sz.Events, map[string]string{"id": "(g + 1)::text", "creator": sqlAddr("0a", "g % "+strconv.Itoa(sz.Organizers)),
			"organizer": hexID("0a", "g % "+strconv.Itoa(sz.Organizers)), "title": "'Event ' || g", "metadataUri": "'ipfs://bafy' || g",
			"description": "''", "category": "'music'", "ticketContract": sqlAddr("0c", "g"), "startTime": "1700000000 + g * 3600",
			"endTime": "1700007200 + g * 3600", "maxTickets": "100000", "ticketPrice": "1000000000000000", "ticketsSold": "0",
			"ticketsUsed": "0", "revenue": "0", "status": "CASE WHEN g % 10 = 0 THEN 'inactive' ELSE 'active' END",
			"createdAt": "1690000000 + g", "createdAtBlock": "1 + g", "updatedAt": "1690000000 + g"}},
		{"Ticket", nt, map[string]string{"id": ticketID("g"), "event": event("g") + "::text", "contract": sqlAddr("0c", event("g")+" - 1"),
			"tokenId": token("g"), "owner": sqlAddr("0b", holder("g")), "originalOwner": sqlAddr("0b", holder("g")), "seatNumber": "0", "tier": "0", "ticketType": "'standard'",
			"price": "1000000000000000", "purchasePrice": "1000000000000000", "isUsed": "g % 5 = 0",
			"usedAt": "CASE WHEN g % 5 = 0 THEN 1700000000 + g END", "transferRestricted": "false", "burned": "false",
			"createdAt": "1695000000 + g", "updatedAt": "1695000000 + g"}},
	}
	le := strconv.Itoa(sz.ListingEvents)
	lg := "(g / " + le + ")" // the listing's number within its event
	steps = append(steps, step{"Listing", sz.Listings, map[string]string{"id": hash("01", "g"), "event": "(g % " + le + " + 1)::text",
		"ticket": "(g % " + le + " + 1)::text || '-' || (" + lg + " % " + strconv.Itoa(sz.Owners*sz.PerPair) + " + 1)::text",
		"seller": sqlAddr("0b", lg+" % "+o), "price": "1000000000000000 + (g * 7919 % 100000) * 1000000000",
		"status": "CASE WHEN g % 2 = 0 THEN 'active' ELSE 'sold' END", "createdAt": "1696000000 + g", "updatedAt": "1696000000 + g"}})
	// transfer g mints ticket g x TransferEvery
	tg := "(g * " + strconv.Itoa(sz.TransferEvery) + ")"
	steps = append(steps, step{"Transfer", nt / sz.TransferEvery, map[string]string{"id": hash("02", tg) + " || '-0'",
		"ticket": ticketID(tg), "from": "'\\x0000000000000000000000000000000000000000'::bytea",
		"to": sqlAddr("0b", holder(tg)), "transactionHash": "decode(lpad(to_hex(" + tg + "), 64, '0'), 'hex')",
		"blockNumber": "1 + " + tg + " / 100", "timestamp": "1695000000 + " + tg}})
	for _, st := range steps {
		if err := insert(st.typ, st.n, st.exprs); err != nil {
			return nil, err
		}
	}
	if err := storetest.SetCursor(ctx, pool, storetest.Cursor{Number: bulkHead, Hash: hash32(9, bulkHead), ParentHash: hash32(9, bulkHead-1), Timestamp: 1_700_000_000}); err != nil {
		return nil, err
	}
	return FrontendInfo(sz), nil
}

// FrontendInfo describes the dataset LoadFrontend makes for sz (without loading it).
func FrontendInfo(sz FrontendSizes) *Frontend {
	f := &Frontend{}
	for k := range sz.Owners {
		f.Owners = append(f.Owners, addr(0x0b, k))
	}
	for k := range sz.Organizers {
		f.Organizers = append(f.Organizers, fmt.Sprintf("0x%x", addr(0x0a, k)))
	}
	for k := range sz.TicketEvents {
		f.TicketEvents = append(f.TicketEvents, strconv.Itoa(k+1))
	}
	for k := range sz.ListingEvents {
		f.ListingEvents = append(f.ListingEvents, strconv.Itoa(k+1))
	}
	return f
}
