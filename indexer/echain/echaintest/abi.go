package echaintest

import (
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// The oracle decodes logs by hand from the canonical signatures in SPEC.md rather than through
// the ABI package the mappings use, so that a mistake in one is not silently shared by the other.

func topic(sig string) common.Hash { return crypto.Keccak256Hash([]byte(sig)) }

var (
	tEventCreated        = topic("EventCreated(uint256,address,address,string,uint256,uint256)")
	tEventUpdated        = topic("EventUpdated(uint256,string,string)")
	tEventStatusChanged  = topic("EventStatusChanged(uint256,bool)")
	tOrganizerVerified   = topic("OrganizerVerified(address)")
	tOrganizerUnverified = topic("OrganizerUnverified(address)")
	tTransfer            = topic("Transfer(address,address,uint256)")
	tTicketMinted        = topic("TicketMinted(uint256,address,uint256,uint256,uint256)")
	tTicketUsed          = topic("TicketUsed(uint256,address,uint256)")
	tTicketRestricted    = topic("TicketTransferRestricted(uint256,bool)")
	tTicketListed        = topic("TicketListed(bytes32,address,uint256,address,uint256)")
	tTicketSold          = topic("TicketSold(bytes32,address,address,uint256,uint256)")
	tListingCancelled    = topic("ListingCancelled(bytes32,address)")
	tAttendanceMinted    = topic("AttendanceMinted(uint256,address,uint256)")
	tRewardMinted        = topic("RewardMinted(uint256,address,string,uint256)")
	tReferralUsed        = topic("ReferralUsed(address,address)")

	selGetEventDetails = crypto.Keccak256([]byte("getEventDetails(uint256)"))[:4]
)

// words reads ABI-encoded data: 32-byte words and dynamic strings at offsets.
type words struct {
	data []byte
	base int // offsets of dynamic values are relative to this
	err  error
}

func (w *words) word(i int) []byte {
	at := w.base + 32*i
	if w.err != nil || at < 0 || at+32 > len(w.data) {
		if w.err == nil {
			w.err = fmt.Errorf("word %d beyond %d bytes of data", i, len(w.data))
		}
		return make([]byte, 32)
	}
	return w.data[at : at+32]
}

func (w *words) big(i int) *big.Int { return new(big.Int).SetBytes(w.word(i)) }

func (w *words) addr(i int) common.Address { return common.BytesToAddress(w.word(i)[12:]) }

func (w *words) boolean(i int) bool { return w.word(i)[31] == 1 }

func (w *words) str(i int) string {
	off := w.big(i)
	if w.err != nil {
		return ""
	}
	if !off.IsInt64() || off.Int64() > int64(len(w.data)) {
		w.err = fmt.Errorf("string offset %s beyond data", off)
		return ""
	}
	at := w.base + int(off.Int64())
	if at+32 > len(w.data) {
		w.err = fmt.Errorf("string length beyond data")
		return ""
	}
	n := new(big.Int).SetBytes(w.data[at : at+32])
	if !n.IsInt64() || at+32+int(n.Int64()) > len(w.data) {
		w.err = fmt.Errorf("string of %s bytes beyond data", n)
		return ""
	}
	return string(w.data[at+32 : at+32+int(n.Int64())])
}

func topicBig(h common.Hash) *big.Int { return new(big.Int).SetBytes(h[:]) }

func topicAddr(h common.Hash) common.Address { return common.BytesToAddress(h[12:]) }
