package echain

import (
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/echain/echain-indexer/schema/entity"
)

// eventFactory handles EventFactory logs: EventCreated, EventUpdated, EventStatusChanged,
// OrganizerVerified and OrganizerUnverified.
func (a *applier) eventFactory(l *types.Log) (change, error) {
	abi := a.h.abi
	switch l.Topics[0] {
	case abi.eventCreated.ID:
		return a.eventCreated(l)
	case abi.eventUpdated.ID:
		return a.eventUpdated(l)
	case abi.eventStatusChanged.ID:
		return a.eventStatusChanged(l)
	case abi.organizerVerified.ID:
		return a.organizerVerification(l, true)
	case abi.organizerUnverified.ID:
		return a.organizerVerification(l, false)
	}
	return change{}, nil
}

// eventCreated creates the Event (startTime, endTime and metadataUri from Prepare's
// getEventDetails) and counts it for its Organizer, which it creates verified when first seen.
func (a *applier) eventCreated(l *types.Log) (change, error) {
	a.h.m.logs.WithLabelValues("EventCreated").Inc()
	f := decode(a.h.abi.eventCreated, l)
	id, organizer, ticket := f.big("eventId"), f.addr("organizer"), f.addr("ticketContract")
	name, price, maxTickets := f.str("name"), f.big("ticketPrice"), f.big("maxTickets")
	if f.err != nil {
		return change{}, f.err
	}
	d := a.prep.details[id.String()]
	if d == nil {
		return change{}, fmt.Errorf("no details prepared for event %s", id)
	}
	ev := &entity.Event{
		ID:             id.String(),
		Creator:        addrBytes(organizer),
		Organizer:      lowerHex(organizer),
		Title:          name,
		MetadataURI:    d.MetadataURI,
		TicketContract: addrBytes(ticket),
		StartTime:      d.StartTime,
		EndTime:        d.EndTime,
		MaxTickets:     maxTickets,
		TicketPrice:    price,
		TicketsSold:    new(big.Int),
		TicketsUsed:    new(big.Int),
		Revenue:        new(big.Int),
		Status:         "active",
		CreatedAt:      a.ts,
		CreatedAtBlock: new(big.Int).SetUint64(l.BlockNumber),
		UpdatedAt:      a.ts,
	}
	md, _ := a.h.metadataFor(ev.ID, d.MetadataURI)
	setMetadata(ev, md)
	a.saveEvent(ev)

	org, err := entity.LoadOrganizer(a.ctx, a.b, ev.Organizer)
	if err != nil {
		return change{}, err
	}
	if org == nil {
		// First seen creating an event: only verified organizers can, so it is verified.
		org = &entity.Organizer{ID: ev.Organizer, Verified: true, EventsCreated: new(big.Int)}
	}
	org.EventsCreated = bigAdd(org.EventsCreated, 1)
	org.UpdatedAt = a.ts
	org.Save(a.b)
	return change{kind: txEventCreated, event: ev.ID}, nil
}

// eventUpdated replaces the title and metadataUri and takes the document when it is in memory.
// When it is not (yet), fields read earlier from the same URI are kept (the document is the
// same), while a new URI resets them to the defaults, since they would otherwise describe a
// document the event no longer points at; the new document is written when it arrives.
func (a *applier) eventUpdated(l *types.Log) (change, error) {
	a.h.m.logs.WithLabelValues("EventUpdated").Inc()
	f := decode(a.h.abi.eventUpdated, l)
	id, name, uri := f.big("eventId"), f.str("name"), f.str("metadataURI")
	if f.err != nil {
		return change{}, f.err
	}
	ev, err := a.event(id.String())
	if err != nil || ev == nil {
		return change{}, err
	}
	old := ev.MetadataURI
	ev.Title, ev.MetadataURI, ev.UpdatedAt = name, uri, a.ts
	if doc, st := a.h.metadataFor(ev.ID, uri); st == docHave || uri != old {
		setMetadata(ev, doc)
	}
	a.saveEvent(ev)
	return change{kind: txEventUpdated, event: ev.ID}, nil
}

func (a *applier) eventStatusChanged(l *types.Log) (change, error) {
	a.h.m.logs.WithLabelValues("EventStatusChanged").Inc()
	f := decode(a.h.abi.eventStatusChanged, l)
	id, active := f.big("eventId"), f.boolean("isActive")
	if f.err != nil {
		return change{}, f.err
	}
	ev, err := a.event(id.String())
	if err != nil || ev == nil {
		return change{}, err
	}
	ev.Status = "inactive"
	if active {
		ev.Status = "active"
	}
	ev.UpdatedAt = a.ts
	a.saveEvent(ev)
	return change{kind: txEventStatusChanged, event: ev.ID}, nil
}

// organizerVerification records the latest OrganizerVerified/OrganizerUnverified.
func (a *applier) organizerVerification(l *types.Log, verified bool) (change, error) {
	ev := a.h.abi.organizerUnverified
	if verified {
		ev = a.h.abi.organizerVerified
	}
	a.h.m.logs.WithLabelValues(ev.Name).Inc()
	f := decode(ev, l)
	addr := f.addr("organizer")
	if f.err != nil {
		return change{}, f.err
	}
	id := lowerHex(addr)
	org, err := entity.LoadOrganizer(a.ctx, a.b, id)
	if err != nil {
		return change{}, err
	}
	if org == nil {
		org = &entity.Organizer{ID: id, EventsCreated: new(big.Int)}
	}
	org.Verified = verified
	org.UpdatedAt = a.ts
	org.Save(a.b)
	return change{kind: txOther}, nil
}

// event loads an Event; nil (and a skipped-log count) when there is no such event.
func (a *applier) event(id string) (*entity.Event, error) {
	ev, err := a.loadEvent(id)
	if err != nil {
		return nil, err
	}
	if ev == nil {
		a.h.m.skipped.WithLabelValues("unknown_event").Inc()
	}
	return ev, nil
}

// loadEvent is the Event as this block has left it so far; nil when there is none.
func (a *applier) loadEvent(id string) (*entity.Event, error) {
	if ev, ok := a.events[id]; ok {
		return ev, nil
	}
	ev, err := entity.LoadEvent(a.ctx, a.b, id)
	if err != nil || ev == nil {
		return nil, err
	}
	a.events[id] = ev
	return ev, nil
}

// saveEvent marks the Event changed; Apply saves it once the block's logs are applied.
func (a *applier) saveEvent(ev *entity.Event) {
	if !a.dirty[ev.ID] {
		a.dirty[ev.ID] = true
		a.dirtyOrder = append(a.dirtyOrder, ev.ID)
	}
	a.events[ev.ID] = ev
}

// setMetadata fills the fields an Event takes from its document; nil means the defaults.
func setMetadata(ev *entity.Event, md *Metadata) {
	if md == nil {
		md = &Metadata{}
	}
	ev.Description, ev.Category = md.Description, md.Category
	ev.Location, ev.ImageURL = md.Location, md.ImageURL
}
