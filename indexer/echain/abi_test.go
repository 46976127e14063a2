package echain

import (
	"errors"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// TestWordDecoderMatchesGoEthereum decodes random and malformed logs of every one-word event
// with the word decoder and with go-ethereum's, and wants the same values and the same
// refusals from both.
func TestWordDecoderMatchesGoEthereum(t *testing.T) {
	c, err := loadABIs()
	if err != nil {
		t.Fatal(err)
	}
	evs := []*eventABI{
		c.eventStatusChanged, c.organizerVerified, c.organizerUnverified, c.transfer, c.ticketMinted,
		c.ticketUsed, c.ticketTransferRestricted, c.ticketListed, c.ticketSold, c.listingCancelled,
		c.attendanceMinted, c.referralUsed,
	}
	rng := rand.New(rand.NewPCG(1, 2))
	word := func(kind wordKind) common.Hash {
		var h common.Hash
		switch rng.IntN(4) {
		case 0: // a well-formed value of the kind
			switch kind {
			case wordBool:
				h[31] = byte(rng.IntN(2))
			case wordAddress:
				for i := 12; i < 32; i++ {
					h[i] = byte(rng.Uint32())
				}
			default:
				for i := range h {
					h[i] = byte(rng.Uint32())
				}
			}
		case 1: // all ones: a bad bool, an address with high bytes set
			for i := range h {
				h[i] = 0xff
			}
		case 2: // a small number
			h[31] = byte(rng.IntN(3))
		default:
			for i := range h {
				h[i] = byte(rng.Uint32())
			}
		}
		return h
	}
	decoded, refused := 0, 0
	for _, ev := range evs {
		if ev.words == nil {
			t.Fatalf("%s: expected a one-word layout", ev.Name)
		}
		slow := *ev
		slow.words = nil
		for range 400 {
			l := &types.Log{Topics: []common.Hash{ev.ID}}
			for _, w := range ev.words {
				if w.topic {
					l.Topics = append(l.Topics, word(w.kind))
				}
			}
			for _, w := range ev.words {
				if !w.topic {
					h := word(w.kind)
					l.Data = append(l.Data, h[:]...)
				}
			}
			switch rng.IntN(8) {
			case 0: // short data
				if len(l.Data) > 0 {
					l.Data = slices.Clone(l.Data[:rng.IntN(len(l.Data))]) // no spare capacity to read past
				}
			case 1: // trailing bytes, which go-ethereum ignores
				l.Data = append(l.Data, 1, 2, 3)
			case 2: // a topic too many
				l.Topics = append(l.Topics, common.Hash{})
			}
			fast, want := decode(ev, l), decode(&slow, l)
			if (fast.err == nil) != (want.err == nil) || (fast.err != nil && !errors.Is(fast.err, errUndecodable)) {
				t.Fatalf("%s %x %x: word decoder err %v, go-ethereum %v", ev.Name, l.Topics, l.Data, fast.err, want.err)
			}
			if want.err != nil {
				refused++
				// Handlers read every argument before they check err: no panic on a refused log.
				for _, w := range ev.words {
					fast.big(w.name)
					fast.addr(w.name)
					fast.boolean(w.name)
					fast.bytes32(w.name)
				}
				continue
			}
			decoded++
			for _, w := range ev.words {
				var got, exp any
				switch w.kind {
				case wordUint256:
					got, exp = fast.big(w.name).String(), want.big(w.name).String()
				case wordAddress:
					got, exp = fast.addr(w.name), want.addr(w.name)
				case wordBool:
					got, exp = fast.boolean(w.name), want.boolean(w.name)
				case wordBytes32:
					got, exp = fast.bytes32(w.name), want.bytes32(w.name)
				}
				if got != exp {
					t.Fatalf("%s.%s: word decoder %v, go-ethereum %v", ev.Name, w.name, got, exp)
				}
			}
			// Asking for an argument that is not there, or as another type, is a mismatch in both.
			fast.big("noSuchArgument")
			want.big("noSuchArgument")
			if fast.err == nil || want.err == nil {
				t.Fatalf("%s: a missing argument went unnoticed (word %v, go-ethereum %v)", ev.Name, fast.err, want.err)
			}
		}
	}
	if decoded < 1000 || refused < 500 {
		t.Fatalf("cases: %d decoded, %d refused; want both paths exercised", decoded, refused)
	}
	// A value read twice is two values: a mapping that changes one does not change the other.
	l := &types.Log{Topics: []common.Hash{c.transfer.ID, {}, {}, common.BigToHash(big.NewInt(7))}}
	f := decode(c.transfer, l)
	a := f.big("tokenId")
	a.SetInt64(9)
	if f.big("tokenId").Int64() != 7 {
		t.Fatal("big returned a shared value")
	}
}
