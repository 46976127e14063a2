package echain

import (
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/echain/echain-indexer/abis"
)

// contractABIs are the real Echain interfaces the logs are decoded with, and the events the
// mappings handle.
type contractABIs struct {
	factory, ticket, marketplace, poap, incentive abi.ABI

	// Handled events. Their IDs are the topic0 values Contracts and Templates ask the node for.
	eventCreated, eventUpdated, eventStatusChanged, organizerVerified, organizerUnverified *eventABI
	transfer, ticketMinted, ticketUsed, ticketTransferRestricted                           *eventABI
	ticketListed, ticketSold, listingCancelled                                             *eventABI
	attendanceMinted                                                                       *eventABI
	rewardMinted, referralUsed                                                             *eventABI

	createEvent, getEventDetails *abi.Method
}

// eventABI is a handled event with its arguments split once into the topics' and the data's:
// decode runs for every log.
type eventABI struct {
	abi.Event
	indexed, data abi.Arguments
}

func loadABIs() (*contractABIs, error) {
	var c contractABIs
	var err error
	load := func(name string, dst *abi.ABI) {
		if err != nil {
			return
		}
		var a abi.ABI
		if a, err = abis.Echain(name); err != nil {
			err = fmt.Errorf("load ABI %s: %w", name, err)
			return
		}
		*dst = a
	}
	load("EventFactory", &c.factory)
	load("EventTicket", &c.ticket)
	load("Marketplace", &c.marketplace)
	load("POAPAttendance", &c.poap)
	load("IncentiveManager", &c.incentive)
	if err != nil {
		return nil, err
	}
	ev := func(a abi.ABI, contract, name string) *eventABI {
		e, ok := a.Events[name]
		if !ok && err == nil {
			err = fmt.Errorf("ABI %s has no event %s", contract, name)
		}
		out := &eventABI{Event: e, data: e.Inputs.NonIndexed()}
		for _, in := range e.Inputs {
			if in.Indexed {
				out.indexed = append(out.indexed, in)
			}
		}
		return out
	}
	c.eventCreated = ev(c.factory, "EventFactory", "EventCreated")
	c.eventUpdated = ev(c.factory, "EventFactory", "EventUpdated")
	c.eventStatusChanged = ev(c.factory, "EventFactory", "EventStatusChanged")
	c.organizerVerified = ev(c.factory, "EventFactory", "OrganizerVerified")
	c.organizerUnverified = ev(c.factory, "EventFactory", "OrganizerUnverified")
	c.transfer = ev(c.ticket, "EventTicket", "Transfer")
	c.ticketMinted = ev(c.ticket, "EventTicket", "TicketMinted")
	c.ticketUsed = ev(c.ticket, "EventTicket", "TicketUsed")
	c.ticketTransferRestricted = ev(c.ticket, "EventTicket", "TicketTransferRestricted")
	c.ticketListed = ev(c.marketplace, "Marketplace", "TicketListed")
	c.ticketSold = ev(c.marketplace, "Marketplace", "TicketSold")
	c.listingCancelled = ev(c.marketplace, "Marketplace", "ListingCancelled")
	c.attendanceMinted = ev(c.poap, "POAPAttendance", "AttendanceMinted")
	c.rewardMinted = ev(c.incentive, "IncentiveManager", "RewardMinted")
	c.referralUsed = ev(c.incentive, "IncentiveManager", "ReferralUsed")
	if err != nil {
		return nil, err
	}
	for _, name := range []string{"createEvent", "getEventDetails"} {
		m, ok := c.factory.Methods[name]
		if !ok {
			return nil, fmt.Errorf("ABI EventFactory has no method %s", name)
		}
		if name == "createEvent" {
			c.createEvent = &m
		} else {
			c.getEventDetails = &m
		}
	}
	return &c, nil
}

func ids(evs ...*eventABI) []common.Hash {
	out := make([]common.Hash, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

// errUndecodable marks a log whose shape does not match its event: skipped, never fatal.
var errUndecodable = errors.New("log does not match its event's ABI")

// fields are a decoded log's arguments by name. Accessors record the first mismatch in err,
// so a handler decodes everything it needs and checks once.
type fields struct {
	m   map[string]any
	err error
}

// decode reads a log's indexed and non-indexed arguments.
func decode(ev *eventABI, l *types.Log) *fields {
	f := &fields{m: make(map[string]any, len(ev.Inputs))}
	if len(l.Topics) != len(ev.indexed)+1 || l.Topics[0] != ev.ID {
		f.err = fmt.Errorf("%w: %s with %d topics", errUndecodable, ev.Name, len(l.Topics))
		return f
	}
	if err := ev.data.UnpackIntoMap(f.m, l.Data); err != nil {
		f.err = fmt.Errorf("%w: %s data: %v", errUndecodable, ev.Name, err)
		return f
	}
	if err := abi.ParseTopicsIntoMap(f.m, ev.indexed, l.Topics[1:]); err != nil {
		f.err = fmt.Errorf("%w: %s topics: %v", errUndecodable, ev.Name, err)
	}
	return f
}

func (f *fields) miss(name string, want string) {
	if f.err == nil {
		f.err = fmt.Errorf("%w: argument %s is not %s", errUndecodable, name, want)
	}
}

func (f *fields) big(name string) *big.Int {
	v, ok := f.m[name].(*big.Int)
	if !ok {
		f.miss(name, "an integer")
		return new(big.Int)
	}
	return v
}

func (f *fields) addr(name string) common.Address {
	v, ok := f.m[name].(common.Address)
	if !ok {
		f.miss(name, "an address")
	}
	return v
}

func (f *fields) str(name string) string {
	v, ok := f.m[name].(string)
	if !ok {
		f.miss(name, "a string")
	}
	return v
}

func (f *fields) boolean(name string) bool {
	v, ok := f.m[name].(bool)
	if !ok {
		f.miss(name, "a bool")
	}
	return v
}

func (f *fields) bytes32(name string) [32]byte {
	v, ok := f.m[name].([32]byte)
	if !ok {
		f.miss(name, "bytes32")
	}
	return v
}
