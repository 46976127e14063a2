package devchain

import (
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// model is the traffic generator's picture of the Echain state, built only from the canonical
// chain's logs (and wallet deployments), the way an indexer would. Because it follows the chain
// rather than what the generator meant to do, it stays right whoever sends transactions (tests
// included), whatever reverts, and across reorganisations: each change records its undo in a
// journal, and a reorg unwinds the journal to the common ancestor.
type model struct {
	ct    contracts
	addrs Addresses

	head   uint64
	hashes map[uint64]common.Hash // canonical hashes of the journaled blocks (and the head)

	verified  map[common.Address]bool
	events    []*mEvent
	byClone   map[common.Address]*mEvent
	tickets   []*mTicket
	byTicket  map[ticketKey]*mTicket
	listings  []*mListing
	byList    map[common.Hash]*mListing
	attended  map[eventUser]bool
	poaps     map[common.Address]uint64 // attendance tokens per attendee (= its POAP nonce)
	loyalty   map[common.Address]uint64 // loyalty rewards per user (each spends 100 points)
	early     map[eventUser]bool
	earlyN    map[uint64]uint64 // early-bird rewards per event (the contract caps them)
	codes     []mCode
	codeTaken map[common.Hash]bool
	referred  map[common.Address]bool
	wallets   []mWallet
	logs      map[common.Hash]int // handled Echain logs per topic0 (for coverage checks)

	journal []undo
	cur     uint64 // block being applied
	keep    uint64 // journal depth kept
}

type mEvent struct {
	id          uint64
	organizer   common.Address
	clone       common.Address
	price       *big.Int
	max, minted uint64
	active      bool
}

type ticketKey struct {
	clone common.Address
	id    uint64
}

type mTicket struct {
	ev         *mEvent
	id         uint64
	owner      common.Address
	used       bool
	restricted bool
}

type mListing struct {
	id     common.Hash
	tk     *mTicket
	seller common.Address
	price  *big.Int
	active bool
}

type eventUser struct {
	event uint64
	user  common.Address
}

type mCode struct {
	code    common.Hash
	inviter common.Address
}

type mWallet struct {
	addr, owner common.Address
	verified    bool
}

type undo struct {
	block uint64
	fn    func()
}

func newModel(ct contracts, addrs Addresses, keep uint64) *model {
	return &model{
		ct: ct, addrs: addrs, keep: keep,
		hashes:    map[uint64]common.Hash{},
		verified:  map[common.Address]bool{},
		byClone:   map[common.Address]*mEvent{},
		byTicket:  map[ticketKey]*mTicket{},
		byList:    map[common.Hash]*mListing{},
		attended:  map[eventUser]bool{},
		poaps:     map[common.Address]uint64{},
		loyalty:   map[common.Address]uint64{},
		early:     map[eventUser]bool{},
		earlyN:    map[uint64]uint64{},
		referred:  map[common.Address]bool{},
		codeTaken: map[common.Hash]bool{},
		logs:      map[common.Hash]int{},
	}
}

func (m *model) record(fn func()) { m.journal = append(m.journal, undo{m.cur, fn}) }

// setMap sets k to v in a map, journaling the previous state.
func setMap[K comparable, V any](m *model, mp map[K]V, k K, v V) {
	old, had := mp[k]
	mp[k] = v
	m.record(func() {
		if had {
			mp[k] = old
		} else {
			delete(mp, k)
		}
	})
}

// field sets *p to v, journaling the previous value.
func field[T any](m *model, p *T, v T) {
	old := *p
	*p = v
	m.record(func() { *p = old })
}

// rewind undoes every block above n.
func (m *model) rewind(n uint64) error {
	if n >= m.head {
		return nil
	}
	if _, ok := m.hashes[n]; !ok && n > 0 {
		return fmt.Errorf("devchain: traffic model cannot rewind to block %d (journal keeps %d blocks)", n, m.keep)
	}
	i := len(m.journal)
	for i > 0 && m.journal[i-1].block > n {
		i--
		m.journal[i].fn()
	}
	m.journal = m.journal[:i]
	for b := n + 1; b <= m.head; b++ {
		delete(m.hashes, b)
	}
	m.head = n
	return nil
}

// apply folds one canonical block (the successor of m.head) into the model.
func (m *model) apply(blk *types.Block, receipts types.Receipts) error {
	n := blk.NumberU64()
	if n != m.head+1 {
		return fmt.Errorf("devchain: traffic model at %d cannot apply block %d", m.head, n)
	}
	m.cur = n
	txs := blk.Transactions()
	if len(receipts) != len(txs) {
		return fmt.Errorf("devchain: block %d has %d receipts for %d transactions", n, len(receipts), len(txs))
	}
	for i, r := range receipts {
		if r.Status != types.ReceiptStatusSuccessful {
			continue
		}
		if txs[i].To() == nil {
			if owner, ok := m.ct.isWalletCreation(txs[i].Data()); ok {
				m.addWallet(mWallet{addr: r.ContractAddress, owner: owner})
			}
		}
		for _, l := range r.Logs {
			m.applyLog(l)
		}
	}
	m.head = n
	m.hashes[n] = blk.Hash()
	// Forget what no reorg can reach any more.
	if n > m.keep {
		cut := n - m.keep
		delete(m.hashes, cut-1)
		i := 0
		for i < len(m.journal) && m.journal[i].block < cut {
			i++
		}
		if i > 0 && i*2 >= len(m.journal) {
			m.journal = append(m.journal[:0:0], m.journal[i:]...)
		}
	}
	return nil
}

func (m *model) addWallet(w mWallet) {
	m.wallets = append(m.wallets, w)
	m.record(func() { m.wallets = m.wallets[:len(m.wallets)-1] })
}

func topicU64(h common.Hash) uint64          { return new(big.Int).SetBytes(h.Bytes()).Uint64() }
func topicAddr(h common.Hash) common.Address { return common.BytesToAddress(h.Bytes()) }
func word(data []byte, i int) []byte {
	if len(data) < 32*(i+1) {
		return make([]byte, 32)
	}
	return data[32*i : 32*(i+1)]
}

func (m *model) applyLog(l *types.Log) {
	if len(l.Topics) == 0 {
		return
	}
	t0 := l.Topics[0]
	tp := &m.ct.topics
	handled := true
	switch {
	case l.Address == m.addrs.EventFactory:
		switch {
		case t0 == tp.organizerVerified:
			m.setVerified(topicAddr(l.Topics[1]), true)
		case t0 == tp.organizerUnverified:
			m.setVerified(topicAddr(l.Topics[1]), false)
		case t0 == tp.eventCreated && len(l.Topics) == 4:
			e := &mEvent{
				id: topicU64(l.Topics[1]), organizer: topicAddr(l.Topics[2]), clone: topicAddr(l.Topics[3]),
				price: new(big.Int).SetBytes(word(l.Data, 1)), max: new(big.Int).SetBytes(word(l.Data, 2)).Uint64(),
				active: true,
			}
			m.events = append(m.events, e)
			m.byClone[e.clone] = e
			m.record(func() { m.events = m.events[:len(m.events)-1]; delete(m.byClone, e.clone) })
		case t0 == tp.eventStatusChanged:
			if e := m.event(topicU64(l.Topics[1])); e != nil {
				field(m, &e.active, word(l.Data, 0)[31] == 1)
			}
		case t0 == tp.eventUpdated:
		default:
			handled = false
		}
	case m.byClone[l.Address] != nil:
		e := m.byClone[l.Address]
		switch {
		case t0 == tp.transfer && len(l.Topics) == 4:
			from, to, id := topicAddr(l.Topics[1]), topicAddr(l.Topics[2]), topicU64(l.Topics[3])
			if from == (common.Address{}) {
				t := &mTicket{ev: e, id: id, owner: to}
				key := ticketKey{e.clone, id}
				m.tickets = append(m.tickets, t)
				m.byTicket[key] = t
				field(m, &e.minted, e.minted+1)
				m.record(func() { m.tickets = m.tickets[:len(m.tickets)-1]; delete(m.byTicket, key) })
			} else if t := m.byTicket[ticketKey{e.clone, id}]; t != nil {
				field(m, &t.owner, to)
			}
		case t0 == tp.ticketUsed:
			if t := m.byTicket[ticketKey{e.clone, topicU64(l.Topics[1])}]; t != nil {
				field(m, &t.used, true)
			}
		case t0 == tp.ticketRestricted:
			if t := m.byTicket[ticketKey{e.clone, topicU64(l.Topics[1])}]; t != nil {
				field(m, &t.restricted, word(l.Data, 0)[31] == 1)
			}
		case t0 == tp.ticketMinted, t0 == tp.ownershipTransferred:
		default:
			handled = false
		}
	case l.Address == m.addrs.Marketplace:
		switch {
		case t0 == tp.ticketListed && len(l.Topics) == 4:
			t := m.byTicket[ticketKey{topicAddr(l.Topics[2]), topicU64(l.Topics[3])}]
			if t == nil {
				return
			}
			li := &mListing{id: l.Topics[1], tk: t, seller: common.BytesToAddress(word(l.Data, 0)),
				price: new(big.Int).SetBytes(word(l.Data, 1)), active: true}
			m.listings = append(m.listings, li)
			setMap(m, m.byList, li.id, li)
			m.record(func() { m.listings = m.listings[:len(m.listings)-1] })
		case t0 == tp.ticketSold, t0 == tp.listingCancelled:
			if li := m.byList[l.Topics[1]]; li != nil {
				field(m, &li.active, false)
			}
		default:
			handled = false
		}
	case l.Address == m.addrs.POAPAttendance:
		if t0 == tp.attendanceMinted && len(l.Topics) == 3 {
			who := topicAddr(l.Topics[2])
			setMap(m, m.attended, eventUser{topicU64(l.Topics[1]), who}, true)
			setMap(m, m.poaps, who, m.poaps[who]+1)
		} else {
			handled = false
		}
	case l.Address == m.addrs.IncentiveManager:
		switch {
		case t0 == tp.rewardMinted:
			vals, err := m.ct.incentive.Events["RewardMinted"].Inputs.Unpack(l.Data)
			if err != nil {
				return
			}
			user, typ, eventID := vals[1].(common.Address), vals[2].(string), vals[3].(*big.Int).Uint64()
			switch typ {
			case "early_bird":
				setMap(m, m.early, eventUser{eventID, user}, true)
				setMap(m, m.earlyN, eventID, m.earlyN[eventID]+1)
			case "loyalty":
				setMap(m, m.loyalty, user, m.loyalty[user]+1)
			}
		case t0 == tp.referralCodeGenerated:
			code := common.BytesToHash(word(l.Data, 0))
			m.codes = append(m.codes, mCode{code, common.BytesToAddress(word(l.Data, 1))})
			setMap(m, m.codeTaken, code, true)
			m.record(func() { m.codes = m.codes[:len(m.codes)-1] })
		case t0 == tp.referralUsed:
			setMap(m, m.referred, common.BytesToAddress(word(l.Data, 0)), true)
		default:
			handled = false
		}
	default:
		handled = false
	}
	if handled {
		setMap(m, m.logs, t0, m.logs[t0]+1)
	}
}

func (m *model) setVerified(a common.Address, v bool) {
	setMap(m, m.verified, a, v)
	for i := range m.wallets {
		if m.wallets[i].addr == a {
			field(m, &m.wallets[i].verified, v)
		}
	}
}

func (m *model) event(id uint64) *mEvent {
	if id == 0 || id > uint64(len(m.events)) {
		return nil
	}
	return m.events[id-1] // event ids are 1, 2, ... in creation order
}
