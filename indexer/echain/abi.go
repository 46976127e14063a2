package echain

import (
	"errors"
	"fmt"
	"math/big"
	"strings"

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
	// execute is a smart account's execute(address target, uint256 value, bytes data), as
	// Coinbase Smart Wallet (and the dev chain's SmartWallet) declare it: events created through
	// one carry the createEvent arguments inside its data.
	execute *abi.Method
}

// executeABI is execute of a smart account; not an Echain contract, so not among abis.Echain.
const executeABI = `[{"type":"function","name":"execute","stateMutability":"payable","inputs":[` +
	`{"name":"target","type":"address"},{"name":"value","type":"uint256"},{"name":"data","type":"bytes"}],` +
	`"outputs":[]}]`

// eventABI is a handled event with its arguments split once into the topics' and the data's:
// decode runs for every log.
type eventABI struct {
	abi.Event
	indexed, data abi.Arguments
	// words is set when every argument is a one-word type (uint256, address, bool, bytes32):
	// where each argument sits. Such logs, most of those handled (Transfer, TicketMinted), are
	// read straight from their topics and data instead of through go-ethereum's reflection and
	// a map of boxed values per log.
	words []wordArg
}

// wordKind is the ABI type of a one-word argument.
type wordKind uint8

const (
	wordUint256 wordKind = iota + 1
	wordAddress
	wordBool
	wordBytes32
)

func wordKindOf(t abi.Type) wordKind {
	switch {
	case t.T == abi.UintTy && t.Size == 256:
		return wordUint256
	case t.T == abi.AddressTy:
		return wordAddress
	case t.T == abi.BoolTy:
		return wordBool
	case t.T == abi.FixedBytesTy && t.Size == 32:
		return wordBytes32
	}
	return 0
}

// wordArg is one argument of a one-word event: topic at (from 1) or data word at.
type wordArg struct {
	name  string
	kind  wordKind
	topic bool
	at    int
}

// wordArgs lays out the arguments of e when all are one word, else returns nil.
func wordArgs(e abi.Event) []wordArg {
	out := make([]wordArg, 0, len(e.Inputs))
	topic, word := 1, 0
	for _, in := range e.Inputs {
		k := wordKindOf(in.Type)
		if k == 0 {
			return nil
		}
		a := wordArg{name: in.Name, kind: k, topic: in.Indexed}
		if in.Indexed {
			a.at, topic = topic, topic+1
		} else {
			a.at, word = word, word+1
		}
		out = append(out, a)
	}
	return out
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
		out := &eventABI{Event: e, data: e.Inputs.NonIndexed(), words: wordArgs(e)}
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
	wallet, err := abi.JSON(strings.NewReader(executeABI))
	if err != nil {
		return nil, fmt.Errorf("smart account execute ABI: %w", err)
	}
	m := wallet.Methods["execute"]
	c.execute = &m
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
	m     map[string]any // decoded by go-ethereum: events with a dynamic argument
	words []wordArg      // else where each argument sits in log
	log   *types.Log
	err   error
}

// decode reads a log's indexed and non-indexed arguments. It refuses what go-ethereum's
// decoder refuses: a topic count that differs from the event's, data shorter than its words,
// a bool word other than 0 or 1.
func decode(ev *eventABI, l *types.Log) *fields {
	f := &fields{}
	if len(l.Topics) != len(ev.indexed)+1 || l.Topics[0] != ev.ID {
		f.err = fmt.Errorf("%w: %s with %d topics", errUndecodable, ev.Name, len(l.Topics))
		return f
	}
	if ev.words != nil {
		f.words, f.log = ev.words, l
		if n := len(ev.data); len(l.Data) < 32*n {
			f.err = fmt.Errorf("%w: %s data: %d bytes for %d words", errUndecodable, ev.Name, len(l.Data), n)
			return f
		}
		for i := range ev.words {
			if ev.words[i].kind == wordBool {
				if w := f.word(&ev.words[i]); !isBoolWord(w) {
					f.err = fmt.Errorf("%w: %s: argument %s is not an encoded bool", errUndecodable, ev.Name, ev.words[i].name)
					return f
				}
			}
		}
		return f
	}
	f.m = make(map[string]any, len(ev.Inputs))
	if err := ev.data.UnpackIntoMap(f.m, l.Data); err != nil {
		f.err = fmt.Errorf("%w: %s data: %v", errUndecodable, ev.Name, err)
		return f
	}
	if err := abi.ParseTopicsIntoMap(f.m, ev.indexed, l.Topics[1:]); err != nil {
		f.err = fmt.Errorf("%w: %s topics: %v", errUndecodable, ev.Name, err)
	}
	return f
}

func isBoolWord(w []byte) bool {
	for _, b := range w[:31] {
		if b != 0 {
			return false
		}
	}
	return w[31] <= 1
}

// word is the 32 bytes of a one-word argument.
func (f *fields) word(a *wordArg) []byte {
	if a.topic {
		return f.log.Topics[a.at][:]
	}
	return f.log.Data[32*a.at : 32*a.at+32]
}

// wordOf finds argument name of kind k; nil (and a recorded mismatch) when there is none, and
// nil once the log is refused.
func (f *fields) wordOf(name string, k wordKind, want string) []byte {
	if f.err != nil {
		return nil // the log is refused already; its words may not be there
	}
	for i := range f.words {
		if f.words[i].name == name {
			if f.words[i].kind != k {
				break
			}
			return f.word(&f.words[i])
		}
	}
	f.miss(name, want)
	return nil
}

func (f *fields) miss(name string, want string) {
	if f.err == nil {
		f.err = fmt.Errorf("%w: argument %s is not %s", errUndecodable, name, want)
	}
}

func (f *fields) big(name string) *big.Int {
	if f.words != nil {
		w := f.wordOf(name, wordUint256, "an integer")
		if w == nil {
			return new(big.Int)
		}
		return new(big.Int).SetBytes(w)
	}
	v, ok := f.m[name].(*big.Int)
	if !ok {
		f.miss(name, "an integer")
		return new(big.Int)
	}
	return v
}

func (f *fields) addr(name string) common.Address {
	if f.words != nil {
		return common.BytesToAddress(f.wordOf(name, wordAddress, "an address"))
	}
	v, ok := f.m[name].(common.Address)
	if !ok {
		f.miss(name, "an address")
	}
	return v
}

func (f *fields) str(name string) string {
	if f.words != nil {
		f.miss(name, "a string")
		return ""
	}
	v, ok := f.m[name].(string)
	if !ok {
		f.miss(name, "a string")
	}
	return v
}

func (f *fields) boolean(name string) bool {
	if f.words != nil {
		w := f.wordOf(name, wordBool, "a bool")
		return w != nil && w[31] == 1
	}
	v, ok := f.m[name].(bool)
	if !ok {
		f.miss(name, "a bool")
	}
	return v
}

func (f *fields) bytes32(name string) [32]byte {
	if f.words != nil {
		var v [32]byte
		copy(v[:], f.wordOf(name, wordBytes32, "bytes32"))
		return v
	}
	v, ok := f.m[name].([32]byte)
	if !ok {
		f.miss(name, "bytes32")
	}
	return v
}
