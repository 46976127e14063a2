// Package echaintest is an oracle for the Echain mappings: it computes the entities SPEC.md
// prescribes from raw chain data (eth_getLogs over the whole range, transactions, receipts,
// getEventDetails, metadata documents) without running the mappings, and reads what the store
// holds, so tests can compare the two field by field.
package echaintest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// Chain is the node access the oracle needs; *ethclient.Client satisfies it.
type Chain interface {
	FilterLogs(ctx context.Context, q ethereum.FilterQuery) ([]types.Log, error)
	HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error)
	TransactionByHash(ctx context.Context, hash common.Hash) (*types.Transaction, bool, error)
	TransactionReceipt(ctx context.Context, hash common.Hash) (*types.Receipt, error)
	CallContract(ctx context.Context, msg ethereum.CallMsg, blockNumber *big.Int) ([]byte, error)
}

// MetadataFunc returns the metadata document of a URI as a JSON object, or false when it cannot
// be had. The oracle asks it once per EventCreated and EventUpdated, in chain order.
type MetadataFunc func(ctx context.Context, uri string) (map[string]any, bool)

// Config says what to compute.
type Config struct {
	EventFactory, Marketplace, POAPAttendance, IncentiveManager common.Address
	FromBlock                                                   uint64 // first block read (the earliest start block of the four contracts)
	ToBlock                                                     uint64 // last block read, inclusive; 0 = the node's head when Expected starts
	// Metadata fetches documents; nil means no gateway: description and category "", location
	// and imageUrl null. HTTPMetadata(gateway, timeout) fetches them the way SPEC.md describes.
	Metadata MetadataFunc
	Range    uint64 // blocks per eth_getLogs request; default 2000
}

// HTTPMetadata fetches ipfs://CID[/path] through the gateway (https://host → https://host/ipfs/CID)
// and http(s) URIs directly; anything but a 200 with a JSON object is unavailable.
func HTTPMetadata(gateway string, timeout time.Duration) MetadataFunc {
	g := strings.TrimRight(gateway, "/")
	if !strings.HasSuffix(g, "/ipfs") {
		g += "/ipfs"
	}
	return func(ctx context.Context, uri string) (map[string]any, bool) {
		var target string
		switch {
		case strings.HasPrefix(uri, "ipfs://"):
			target = g + "/" + strings.TrimPrefix(strings.TrimPrefix(uri, "ipfs://"), "ipfs/")
		case strings.HasPrefix(uri, "http://"), strings.HasPrefix(uri, "https://"):
			target = uri
		default:
			return nil, false
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		if err != nil {
			return nil, false
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, false
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<10+1))
		if err != nil || resp.StatusCode != http.StatusOK || len(body) > 256<<10 {
			return nil, false
		}
		var doc map[string]any
		if json.Unmarshal(body, &doc) != nil || doc == nil {
			return nil, false
		}
		return doc, true
	}
}

// Entity type names, as in schema.graphql.
const (
	TEvent       = "Event"
	TTicket      = "Ticket"
	TTransfer    = "Transfer"
	TTransaction = "Transaction"
	TOrganizer   = "Organizer"
	TListing     = "Listing"
	TAttendance  = "Attendance"
	TReward      = "Reward"
	TReferral    = "Referral"
)

// Expected computes the entities SPEC.md prescribes for the chain from cfg.FromBlock to
// cfg.ToBlock. It reads the node through many requests; on an in-process dev chain a few
// thousand logs take well under a second.
func Expected(ctx context.Context, chain Chain, cfg Config) (State, error) {
	if cfg.Range == 0 {
		cfg.Range = 2000
	}
	to := cfg.ToBlock
	if to == 0 {
		h, err := chain.HeaderByNumber(ctx, nil)
		if err != nil {
			return nil, fmt.Errorf("oracle: head: %w", err)
		}
		to = h.Number.Uint64()
	}
	o := &oracle{cfg: cfg, chain: chain, to: to, times: map[uint64]uint64{}}
	if err := o.collect(ctx); err != nil {
		return nil, err
	}
	if err := o.fold(ctx); err != nil {
		return nil, err
	}
	return o.state(ctx)
}

type oracle struct {
	cfg   Config
	chain Chain
	to    uint64
	logs  []types.Log
	clone map[common.Address]*big.Int // ticket contract -> event id
	times map[uint64]uint64           // block -> timestamp

	events     map[string]*xEvent
	tickets    map[string]*xTicket
	transfers  []Entity
	organizers map[string]*xOrganizer
	listings   map[string]*xListing
	attendance map[string]Entity
	rewards    map[string]Entity
	referrals  map[string]Entity
	txs        []*xTx
	txByHash   map[common.Hash]*xTx
}

type xEvent struct {
	id                                 string
	creator                            common.Address
	title, uri, description, category  string
	location, imageURL                 *string
	ticketContract                     common.Address
	start, end, maxTickets, price      *big.Int
	sold, used                         int64
	status                             string
	createdAt, createdAtBlock, updated uint64
}

type xTicket struct {
	id, event                        string
	contract, owner, originalOwner   common.Address
	tokenID, seat, tier, price, paid *big.Int
	used, restricted, burned         bool
	usedAt                           *big.Int
	createdAt, updated               uint64
}

type xOrganizer struct {
	id       string
	verified bool
	events   int64
	updated  uint64
}

type xListing struct {
	id, ticket, event  string
	seller             common.Address
	price              *big.Int
	status             string
	buyer              *common.Address
	fee                *big.Int
	createdAt, updated uint64
}

// xTx gathers a transaction's changing logs: the best transactionType row and the first Event
// and Ticket they refer to.
type xTx struct {
	hash          common.Hash
	block         uint64
	rank          int
	event, ticket *string
}

// collect fetches the fixed contracts' logs, learns the clones from EventCreated, then fetches
// the clones' logs, and orders everything by block and log index.
func (o *oracle) collect(ctx context.Context) error {
	fixed := []common.Address{o.cfg.EventFactory, o.cfg.Marketplace, o.cfg.POAPAttendance, o.cfg.IncentiveManager}
	logs, err := o.getLogs(ctx, fixed, o.cfg.FromBlock)
	if err != nil {
		return err
	}
	o.clone = map[common.Address]*big.Int{}
	var clones []common.Address
	first := o.to + 1
	for _, l := range logs {
		if l.Address == o.cfg.EventFactory && len(l.Topics) == 4 && l.Topics[0] == tEventCreated {
			c := topicAddr(l.Topics[3])
			if _, ok := o.clone[c]; !ok {
				clones = append(clones, c)
			}
			o.clone[c] = topicBig(l.Topics[1])
			first = min(first, l.BlockNumber)
		}
	}
	for lo := 0; lo < len(clones); lo += 500 {
		cl, err := o.getLogs(ctx, clones[lo:min(lo+500, len(clones))], first)
		if err != nil {
			return err
		}
		logs = append(logs, cl...)
	}
	logs = slices.DeleteFunc(logs, func(l types.Log) bool { return l.Removed })
	slices.SortFunc(logs, func(a, b types.Log) int {
		if a.BlockNumber != b.BlockNumber {
			return int(a.BlockNumber) - int(b.BlockNumber)
		}
		return int(a.Index) - int(b.Index)
	})
	o.logs = logs
	return nil
}

func (o *oracle) getLogs(ctx context.Context, addrs []common.Address, from uint64) ([]types.Log, error) {
	var out []types.Log
	for lo := from; lo <= o.to; lo += o.cfg.Range {
		hi := min(lo+o.cfg.Range-1, o.to)
		ls, err := o.chain.FilterLogs(ctx, ethereum.FilterQuery{
			FromBlock: new(big.Int).SetUint64(lo), ToBlock: new(big.Int).SetUint64(hi), Addresses: addrs,
		})
		if err != nil {
			return nil, fmt.Errorf("oracle: logs %d-%d: %w", lo, hi, err)
		}
		out = append(out, ls...)
	}
	return out, nil
}

func (o *oracle) time(ctx context.Context, block uint64) (uint64, error) {
	if t, ok := o.times[block]; ok {
		return t, nil
	}
	h, err := o.chain.HeaderByNumber(ctx, new(big.Int).SetUint64(block))
	if err != nil {
		return 0, fmt.Errorf("oracle: header %d: %w", block, err)
	}
	o.times[block] = h.Time
	return h.Time, nil
}

// transactionType rows in SPEC.md's order; the lower the rank the stronger.
var txTypes = []string{
	"ticket_resale", "listing_created", "listing_cancelled", "event_created", "event_updated",
	"event_status_changed", "ticket_purchase", "ticket_check_in", "attendance_minted",
	"reward_minted", "ticket_burn", "ticket_transfer", "other",
}

func rankOf(name string) int { return slices.Index(txTypes, name) }

// fold applies SPEC.md's rules to the logs in chain order.
func (o *oracle) fold(ctx context.Context) error {
	o.events = map[string]*xEvent{}
	o.tickets = map[string]*xTicket{}
	o.organizers = map[string]*xOrganizer{}
	o.listings = map[string]*xListing{}
	o.attendance = map[string]Entity{}
	o.rewards = map[string]Entity{}
	o.referrals = map[string]Entity{}
	o.txByHash = map[common.Hash]*xTx{}
	for i := range o.logs {
		l := &o.logs[i]
		ts, err := o.time(ctx, l.BlockNumber)
		if err != nil {
			return err
		}
		var row string          // the transactionType row this log matches; "" = changes nothing
		var evRef, tkRef string // what the log refers to
		switch {
		case l.Address == o.cfg.EventFactory:
			row, evRef, err = o.factory(ctx, l, ts)
		case l.Address == o.cfg.Marketplace:
			row, evRef, tkRef, err = o.market(l, ts)
		case l.Address == o.cfg.POAPAttendance:
			row, evRef, err = o.poap(l, ts)
		case l.Address == o.cfg.IncentiveManager:
			row, evRef, err = o.incentive(l, ts)
		default:
			if ev, ok := o.clone[l.Address]; ok {
				row, evRef, tkRef, err = o.ticketLog(l, ev.String(), ts)
			}
		}
		if err != nil {
			return fmt.Errorf("oracle: log %d of block %d: %w", l.Index, l.BlockNumber, err)
		}
		if row == "" {
			continue
		}
		tx := o.txByHash[l.TxHash]
		if tx == nil {
			tx = &xTx{hash: l.TxHash, block: l.BlockNumber, rank: len(txTypes)}
			o.txByHash[l.TxHash] = tx
			o.txs = append(o.txs, tx)
		}
		tx.rank = min(tx.rank, rankOf(row))
		if tx.event == nil && evRef != "" {
			tx.event = &evRef
		}
		if tx.ticket == nil && tkRef != "" {
			tx.ticket = &tkRef
		}
	}
	return nil
}

func (o *oracle) factory(ctx context.Context, l *types.Log, ts uint64) (row, ev string, err error) {
	w := &words{data: l.Data}
	switch {
	case l.Topics[0] == tEventCreated && len(l.Topics) == 4:
		id := topicBig(l.Topics[1])
		e := &xEvent{
			id: id.String(), creator: topicAddr(l.Topics[2]), ticketContract: topicAddr(l.Topics[3]),
			title: w.str(0), price: w.big(1), maxTickets: w.big(2), status: "active",
			createdAt: ts, createdAtBlock: l.BlockNumber, updated: ts,
		}
		if w.err != nil {
			return "", "", nil
		}
		start, end, uri, err := o.details(ctx, id, l.BlockNumber)
		if err != nil {
			return "", "", err
		}
		e.start, e.end, e.uri = start, end, uri
		o.applyMetadata(ctx, e, uri, false)
		o.events[e.id] = e
		org := o.organizers[strings.ToLower(e.creator.Hex())]
		if org == nil {
			org = &xOrganizer{id: strings.ToLower(e.creator.Hex()), verified: true}
			o.organizers[org.id] = org
		}
		org.events++
		org.updated = ts
		return "event_created", e.id, nil
	case l.Topics[0] == tEventUpdated && len(l.Topics) == 2:
		e := o.events[topicBig(l.Topics[1]).String()]
		name, uri := w.str(0), w.str(1)
		if e == nil || w.err != nil {
			return "", "", nil
		}
		old := e.uri
		e.title, e.uri, e.updated = name, uri, ts
		o.applyMetadata(ctx, e, old, true)
		return "event_updated", e.id, nil
	case l.Topics[0] == tEventStatusChanged && len(l.Topics) == 2:
		e := o.events[topicBig(l.Topics[1]).String()]
		active := w.boolean(0)
		if e == nil || w.err != nil {
			return "", "", nil
		}
		e.status = map[bool]string{true: "active", false: "inactive"}[active]
		e.updated = ts
		return "event_status_changed", e.id, nil
	case (l.Topics[0] == tOrganizerVerified || l.Topics[0] == tOrganizerUnverified) && len(l.Topics) == 2:
		id := strings.ToLower(topicAddr(l.Topics[1]).Hex())
		org := o.organizers[id]
		if org == nil {
			org = &xOrganizer{id: id}
			o.organizers[id] = org
		}
		org.verified = l.Topics[0] == tOrganizerVerified
		org.updated = ts
		return "other", "", nil
	}
	return "", "", nil
}

// applyMetadata fills the document's fields for the event's current URI. When an EventUpdated's
// document cannot be had, fields read from the same URI before are kept; a new URI without a
// document gets the defaults.
func (o *oracle) applyMetadata(ctx context.Context, e *xEvent, oldURI string, update bool) {
	var doc map[string]any
	ok := false
	if o.cfg.Metadata != nil && e.uri != "" {
		doc, ok = o.cfg.Metadata(ctx, e.uri)
	}
	if !ok {
		if update && oldURI == e.uri {
			return
		}
		e.description, e.category, e.location, e.imageURL = "", "", nil, nil
		return
	}
	s := func(k string) (string, bool) { v, ok := doc[k].(string); return v, ok }
	e.description, _ = s("description")
	e.category, _ = s("category")
	e.location, e.imageURL = nil, nil
	if v, ok := s("location"); ok {
		e.location = &v
	}
	if v, ok := s("imageUrl"); ok && v != "" {
		e.imageURL = &v
	} else if v, ok := s("image"); ok && v != "" {
		e.imageURL = &v
	}
}

// details reads getEventDetails(id) at the creation block: startTime, endTime, metadataURI.
func (o *oracle) details(ctx context.Context, id *big.Int, block uint64) (start, end *big.Int, uri string, err error) {
	data := append(slices.Clone(selGetEventDetails), common.LeftPadBytes(id.Bytes(), 32)...)
	to := o.cfg.EventFactory
	out, err := o.chain.CallContract(ctx, ethereum.CallMsg{To: &to, Data: data}, new(big.Int).SetUint64(block))
	if err != nil && strings.Contains(strings.ToLower(err.Error()), "state") {
		// Not an archive node. startTime and endTime never change; metadataURI read now is the
		// creation's unless the event was updated since, and then the update replaces it.
		out, err = o.chain.CallContract(ctx, ethereum.CallMsg{To: &to, Data: data}, nil)
	}
	if err != nil {
		return nil, nil, "", fmt.Errorf("getEventDetails(%s) at %d: %w", id, block, err)
	}
	// The tuple is dynamic: word 0 is its offset; inside it, metadataURI is field 6, startTime 9,
	// endTime 10 (IEventFactory.Event).
	head := &words{data: out}
	off := head.big(0)
	if head.err != nil || !off.IsInt64() {
		return nil, nil, "", fmt.Errorf("getEventDetails(%s): short result", id)
	}
	w := &words{data: out, base: int(off.Int64())}
	start, end, uri = w.big(9), w.big(10), w.str(6)
	if w.err != nil {
		return nil, nil, "", fmt.Errorf("getEventDetails(%s): %w", id, w.err)
	}
	return start, end, uri, nil
}

func (o *oracle) ticketLog(l *types.Log, ev string, ts uint64) (row, evRef, tkRef string, err error) {
	e := o.events[ev]
	w := &words{data: l.Data}
	switch {
	case l.Topics[0] == tTransfer && len(l.Topics) == 4:
		from, to, token := topicAddr(l.Topics[1]), topicAddr(l.Topics[2]), topicBig(l.Topics[3])
		tid := ev + "-" + token.String()
		o.transfers = append(o.transfers, Entity{
			"id": fmt.Sprintf("%s-%d", hexLower(l.TxHash.Bytes()), l.Index), "ticket": tid,
			"from": hexLower(from.Bytes()), "to": hexLower(to.Bytes()),
			"transactionHash": hexLower(l.TxHash.Bytes()),
			"blockNumber":     fmt.Sprint(l.BlockNumber), "timestamp": fmt.Sprint(ts),
		})
		if t := o.tickets[tid]; t != nil && from != (common.Address{}) {
			t.owner = to
			if to == (common.Address{}) {
				t.burned = true
			}
			t.updated = ts
		}
		if to == (common.Address{}) {
			return "ticket_burn", ev, tid, nil
		}
		return "ticket_transfer", ev, tid, nil
	case l.Topics[0] == tTicketMinted && len(l.Topics) == 4:
		token, to := topicBig(l.Topics[1]), topicAddr(l.Topics[2])
		seat, tier := w.big(0), w.big(1)
		if w.err != nil || e == nil {
			return "", "", "", nil
		}
		tid := ev + "-" + token.String()
		o.tickets[tid] = &xTicket{
			id: tid, event: ev, contract: l.Address, tokenID: token, owner: to, originalOwner: to,
			seat: seat, tier: tier, price: e.price, paid: e.price, createdAt: ts, updated: ts,
		}
		e.sold++
		e.updated = ts
		return "ticket_purchase", ev, tid, nil
	case l.Topics[0] == tTicketUsed && len(l.Topics) == 3:
		token, when := topicBig(l.Topics[1]), w.big(0)
		if w.err != nil || e == nil {
			return "", "", "", nil
		}
		tid := ev + "-" + token.String()
		if t := o.tickets[tid]; t != nil {
			t.used, t.usedAt, t.updated = true, when, ts
		}
		e.used++
		e.updated = ts
		return "ticket_check_in", ev, tid, nil
	case l.Topics[0] == tTicketRestricted && len(l.Topics) == 2:
		token, restricted := topicBig(l.Topics[1]), w.boolean(0)
		if w.err != nil {
			return "", "", "", nil
		}
		tid := ev + "-" + token.String()
		if t := o.tickets[tid]; t != nil {
			t.restricted, t.updated = restricted, ts
		}
		return "other", ev, tid, nil
	}
	return "", "", "", nil
}

func (o *oracle) market(l *types.Log, ts uint64) (row, evRef, tkRef string, err error) {
	w := &words{data: l.Data}
	switch {
	case l.Topics[0] == tTicketListed && len(l.Topics) == 4:
		id := hexLower(l.Topics[1].Bytes())
		contract, token := topicAddr(l.Topics[2]), topicBig(l.Topics[3])
		seller, price := w.addr(0), w.big(1)
		ev, ok := o.clone[contract]
		if !ok || w.err != nil {
			return "", "", "", nil
		}
		tid := ev.String() + "-" + token.String()
		o.listings[id] = &xListing{
			id: id, ticket: tid, event: ev.String(), seller: seller, price: price, status: "active",
			createdAt: ts, updated: ts,
		}
		return "listing_created", ev.String(), tid, nil
	case l.Topics[0] == tTicketSold && len(l.Topics) == 4:
		ls := o.listings[hexLower(l.Topics[1].Bytes())]
		buyer, price, fee := topicAddr(l.Topics[2]), w.big(0), w.big(1)
		if ls == nil || w.err != nil {
			return "", "", "", nil
		}
		ls.status, ls.buyer, ls.fee, ls.updated = "sold", &buyer, fee, ts
		if t := o.tickets[ls.ticket]; t != nil {
			t.paid, t.updated = price, ts
		}
		return "ticket_resale", ls.event, ls.ticket, nil
	case l.Topics[0] == tListingCancelled && len(l.Topics) == 3:
		ls := o.listings[hexLower(l.Topics[1].Bytes())]
		if ls == nil {
			return "", "", "", nil
		}
		ls.status, ls.updated = "cancelled", ts
		return "listing_cancelled", ls.event, ls.ticket, nil
	}
	return "", "", "", nil
}

func (o *oracle) poap(l *types.Log, ts uint64) (row, evRef string, err error) {
	if l.Topics[0] != tAttendanceMinted || len(l.Topics) != 3 {
		return "", "", nil
	}
	w := &words{data: l.Data}
	ev, attendee, token := topicBig(l.Topics[1]).String(), topicAddr(l.Topics[2]), w.big(0)
	if w.err != nil {
		return "", "", nil
	}
	var ref any
	if o.events[ev] != nil {
		ref, evRef = ev, ev
	}
	if _, seen := o.attendance[token.String()]; !seen {
		o.attendance[token.String()] = Entity{
			"id": token.String(), "event": ref, "eventId": ev, "attendee": hexLower(attendee.Bytes()),
			"tokenId": token.String(), "timestamp": fmt.Sprint(ts), "transactionHash": hexLower(l.TxHash.Bytes()),
		}
	}
	return "attendance_minted", evRef, nil
}

func (o *oracle) incentive(l *types.Log, ts uint64) (row, evRef string, err error) {
	w := &words{data: l.Data}
	switch {
	case l.Topics[0] == tRewardMinted && len(l.Topics) == 1:
		id, user, kind, ev := w.big(0), w.addr(1), w.str(2), w.big(3)
		if w.err != nil {
			return "", "", nil
		}
		var ref any
		if o.events[ev.String()] != nil {
			ref, evRef = ev.String(), ev.String()
		}
		if _, seen := o.rewards[id.String()]; !seen {
			o.rewards[id.String()] = Entity{
				"id": id.String(), "user": hexLower(user.Bytes()), "rewardType": kind, "eventId": ev.String(),
				"event": ref, "timestamp": fmt.Sprint(ts), "transactionHash": hexLower(l.TxHash.Bytes()),
			}
		}
		return "reward_minted", evRef, nil
	case l.Topics[0] == tReferralUsed && len(l.Topics) == 1:
		invitee, inviter := w.addr(0), w.addr(1)
		if w.err != nil {
			return "", "", nil
		}
		id := hexLower(invitee.Bytes())
		if _, seen := o.referrals[id]; !seen {
			o.referrals[id] = Entity{
				"id": id, "inviter": hexLower(inviter.Bytes()), "timestamp": fmt.Sprint(ts),
				"transactionHash": hexLower(l.TxHash.Bytes()),
			}
		}
		return "other", "", nil
	}
	return "", "", nil
}

// state renders the folded entities, fetching the transactions and receipts it needs.
func (o *oracle) state(ctx context.Context) (State, error) {
	st := State{}
	for _, t := range []string{TEvent, TTicket, TTransfer, TTransaction, TOrganizer, TListing, TAttendance, TReward, TReferral} {
		st[t] = map[string]Entity{}
	}
	for _, e := range o.events {
		st.put(TEvent, Entity{
			"id": e.id, "creator": hexLower(e.creator.Bytes()), "organizer": strings.ToLower(e.creator.Hex()),
			"title": e.title, "metadataUri": e.uri, "description": e.description, "category": e.category,
			"location": strOrNil(e.location), "imageUrl": strOrNil(e.imageURL),
			"ticketContract": hexLower(e.ticketContract.Bytes()), "startTime": e.start.String(), "endTime": e.end.String(),
			"maxTickets": e.maxTickets.String(), "ticketPrice": e.price.String(),
			"ticketsSold": fmt.Sprint(e.sold), "ticketsUsed": fmt.Sprint(e.used),
			"revenue": new(big.Int).Mul(big.NewInt(e.sold), e.price).String(), "status": e.status,
			"createdAt": fmt.Sprint(e.createdAt), "createdAtBlock": fmt.Sprint(e.createdAtBlock), "updatedAt": fmt.Sprint(e.updated),
		})
	}
	for _, t := range o.tickets {
		var usedAt any
		if t.usedAt != nil {
			usedAt = t.usedAt.String()
		}
		ticketType := "standard"
		if t.tier.Sign() != 0 {
			ticketType = "tier-" + t.tier.String()
		}
		st.put(TTicket, Entity{
			"id": t.id, "event": t.event, "contract": hexLower(t.contract.Bytes()), "tokenId": t.tokenID.String(),
			"owner": hexLower(t.owner.Bytes()), "originalOwner": hexLower(t.originalOwner.Bytes()),
			"seatNumber": t.seat.String(), "tier": t.tier.String(), "ticketType": ticketType,
			"price": t.price.String(), "purchasePrice": t.paid.String(), "isUsed": t.used, "usedAt": usedAt,
			"transferRestricted": t.restricted, "burned": t.burned,
			"createdAt": fmt.Sprint(t.createdAt), "updatedAt": fmt.Sprint(t.updated),
		})
	}
	for _, e := range o.transfers {
		st.put(TTransfer, e)
	}
	for _, g := range o.organizers {
		st.put(TOrganizer, Entity{"id": g.id, "verified": g.verified, "eventsCreated": fmt.Sprint(g.events), "updatedAt": fmt.Sprint(g.updated)})
	}
	for _, ls := range o.listings {
		var buyer, fee any
		if ls.buyer != nil {
			buyer = hexLower(ls.buyer.Bytes())
		}
		if ls.fee != nil {
			fee = ls.fee.String()
		}
		st.put(TListing, Entity{
			"id": ls.id, "ticket": ls.ticket, "event": ls.event, "seller": hexLower(ls.seller.Bytes()),
			"price": ls.price.String(), "status": ls.status, "buyer": buyer, "marketplaceFee": fee,
			"createdAt": fmt.Sprint(ls.createdAt), "updatedAt": fmt.Sprint(ls.updated),
		})
	}
	for _, m := range []struct {
		typ string
		src map[string]Entity
	}{{TAttendance, o.attendance}, {TReward, o.rewards}, {TReferral, o.referrals}} {
		for _, e := range m.src {
			st.put(m.typ, e)
		}
	}
	txs, err := o.transactions(ctx)
	if err != nil {
		return nil, err
	}
	for _, e := range txs {
		st.put(TTransaction, e)
	}
	return st, nil
}

func (o *oracle) transactions(ctx context.Context) ([]Entity, error) {
	out := make([]Entity, len(o.txs))
	errs := make([]error, len(o.txs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, x := range o.txs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			tx, _, err := o.chain.TransactionByHash(ctx, x.hash)
			if err != nil {
				errs[i] = fmt.Errorf("oracle: transaction %s: %w", x.hash, err)
				return
			}
			rc, err := o.chain.TransactionReceipt(ctx, x.hash)
			if err != nil {
				errs[i] = fmt.Errorf("oracle: receipt %s: %w", x.hash, err)
				return
			}
			from, err := types.Sender(types.LatestSignerForChainID(tx.ChainId()), tx)
			if err != nil {
				errs[i] = fmt.Errorf("oracle: sender of %s: %w", x.hash, err)
				return
			}
			to := "0x" // a contract creation has no recipient
			if tx.To() != nil {
				to = hexLower(tx.To().Bytes())
			}
			price := rc.EffectiveGasPrice
			if price == nil {
				price = new(big.Int)
			}
			out[i] = Entity{
				"id": hexLower(x.hash.Bytes()), "event": strOrNil(x.event), "ticket": strOrNil(x.ticket),
				"from": hexLower(from.Bytes()), "to": to, "value": tx.Value().String(),
				"transactionType": txTypes[x.rank], "gasUsed": fmt.Sprint(rc.GasUsed), "gasPrice": price.String(),
				"timestamp": fmt.Sprint(o.times[x.block]), "blockNumber": fmt.Sprint(x.block),
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func hexLower(b []byte) string { return "0x" + fmt.Sprintf("%x", b) }

func strOrNil(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}
