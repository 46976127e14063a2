package devchain

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"maps"
	"math/big"
	"math/rand"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
)

// TrafficConfig configures the traffic generator.
type TrafficConfig struct {
	Seed          int64         // default: the chain's seed
	TxsPerBlock   int           // default 8
	BlockInterval time.Duration // Run's pause between blocks; default 1s
	// ReorgEvery injects a reorganisation with probability 1/ReorgEvery per step (0: never).
	ReorgEvery int
	// ReorgMaxDepth bounds injected reorgs: depth is 1..ReorgMaxDepth (default 3, at most the
	// chain's MaxReorgDepth).
	ReorgMaxDepth int
}

func (c *TrafficConfig) withDefaults(chain *Chain) {
	if c.Seed == 0 {
		c.Seed = chain.cfg.Seed
	}
	if c.TxsPerBlock <= 0 {
		c.TxsPerBlock = 8
	}
	if c.BlockInterval <= 0 {
		c.BlockInterval = time.Second
	}
	if c.ReorgMaxDepth <= 0 {
		c.ReorgMaxDepth = 3
	}
	c.ReorgMaxDepth = min(c.ReorgMaxDepth, chain.cfg.MaxReorgDepth)
}

// Stats counts what the generator did and what the canonical chain holds.
type Stats struct {
	Blocks          int                 // blocks sealed by the generator
	Txs             int                 // transactions it sent
	Reverted        int                 // of them, reverted outside reorg branches (a model bug if > 0)
	RevertedInReorg int                 // reverted in a reorg's new branch (re-included txs can clash)
	Reorgs          int                 // reorganisations injected
	Ops             map[string]int      // transactions sent per operation
	Logs            map[common.Hash]int // Echain logs per topic0 on the canonical chain
	Events          int                 // events on the canonical chain
	Tickets         int                 // tickets minted on the canonical chain
}

// StepResult describes one Step.
type StepResult struct {
	Head     uint64
	HeadHash common.Hash
	Txs      int          // transactions the generator sent
	Reorg    *ReorgResult // set when the step injected a reorganisation
}

// Traffic drives every Echain operation of SPEC.md on a Chain with a fixed seed: organiser
// verification, events created (directly and through a smart wallet), updated, (de)activated,
// tickets bought (1-3 per purchase), minted by organisers, transferred, checked in, restricted,
// burned, listed, sold and delisted, attendance tokens, rewards and referrals, several
// transactions per block, and reorganisations of configurable depth and frequency.
// Step and Run must not be called concurrently with each other; Stats may be.
type Traffic struct {
	c    *Chain
	cfg  TrafficConfig
	log  *slog.Logger
	rng  *rand.Rand
	m    *model
	keys map[common.Address]Account
	orgs []Account // the users that organise events
	ops  []opDef
	bulk bool // the pre-build profile

	uriN, codeN, nameN uint64
	stats              Stats
}

// NewTraffic makes a generator for the chain. Its model of the Echain state is built from the
// chain's logs (on the first Step), so it can start on any chain, pre-built or not.
func NewTraffic(c *Chain, cfg TrafficConfig, log *slog.Logger) *Traffic {
	cfg.withDefaults(c)
	keep := uint64(max(64, c.cfg.MaxReorgDepth+8))
	t := &Traffic{
		c: c, cfg: cfg, log: log,
		rng:  rand.New(rand.NewSource(cfg.Seed)),
		m:    newModel(c.contract, c.Addresses, keep),
		keys: map[common.Address]Account{c.deployer.Address: c.deployer},
		ops:  opTable(),
		stats: Stats{
			Ops: map[string]int{},
		},
	}
	for _, u := range c.users {
		t.keys[u.Address] = u
	}
	t.orgs = c.users[:max(2, len(c.users)/4)]
	return t
}

// Stats returns a snapshot of the counters.
func (t *Traffic) Stats() Stats {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	s := t.stats
	s.Ops = maps.Clone(t.stats.Ops)
	s.Logs = maps.Clone(t.m.logs)
	s.Events = len(t.m.events)
	s.Tickets = len(t.m.tickets)
	return s
}

// Run seals a block of traffic every BlockInterval until ctx is done.
func (t *Traffic) Run(ctx context.Context) error {
	return every(ctx, t.cfg.BlockInterval, func(ctx context.Context) error {
		_, err := t.Step(ctx)
		return err
	})
}

// every runs step at once and then interval after each step ends, until ctx is done; a step
// failing because ctx ended is the end, not an error.
func every(ctx context.Context, interval time.Duration, step func(context.Context) error) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		if err := step(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		timer.Reset(interval)
	}
}

// Step seals one block of traffic, or, when one is due, injects a reorganisation (which seals
// the new branch).
func (t *Traffic) Step(ctx context.Context) (StepResult, error) {
	if err := ctx.Err(); err != nil {
		return StepResult{}, err
	}
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if err := t.syncLocked(); err != nil {
		return StepResult{}, err
	}
	if !t.bulk && t.cfg.ReorgEvery > 0 && t.rng.Intn(t.cfg.ReorgEvery) == 0 {
		depth := 1 + t.rng.Intn(t.cfg.ReorgMaxDepth)
		if t.m.head >= t.c.Addresses.StartBlock+uint64(depth)+1 && depth <= t.c.unfrozenDepthLocked() {
			return t.reorgLocked(ctx, depth)
		}
	}
	return t.blockLocked(ctx, t.cfg.TxsPerBlock, false)
}

// Reorg injects a reorganisation of the given depth now, with fresh traffic on the new branch.
func (t *Traffic) Reorg(ctx context.Context, depth int) (StepResult, error) {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if err := t.syncLocked(); err != nil {
		return StepResult{}, err
	}
	return t.reorgLocked(ctx, depth)
}

func (t *Traffic) reorgLocked(ctx context.Context, depth int) (StepResult, error) {
	res, removed, err := t.c.forkLocked(depth)
	if err != nil {
		return StepResult{}, err
	}
	if err := t.syncLocked(); err != nil { // unwinds the model to the ancestor
		return StepResult{}, err
	}
	if err := t.c.resendPrefixesLocked(ctx, t.rng, removed, &res); err != nil {
		return StepResult{}, err
	}
	out := StepResult{Reorg: &res}
	for i := 0; i < depth+1; i++ {
		r, err := t.blockLocked(ctx, max(1, t.cfg.TxsPerBlock/2), true)
		if err != nil {
			return out, err
		}
		out.Txs += r.Txs
		out.Head, out.HeadHash = r.Head, r.HeadHash
	}
	t.c.finishReorg(&res)
	t.stats.Reorgs++
	return out, nil
}

// syncLocked brings the model to the canonical head: it unwinds blocks that are no longer
// canonical (whoever reorganised) and applies the new ones.
func (t *Traffic) syncLocked() error {
	bc := t.c.eth.BlockChain()
	for t.m.head > 0 && bc.GetCanonicalHash(t.m.head) != t.m.hashes[t.m.head] {
		if err := t.m.rewind(t.m.head - 1); err != nil {
			return err
		}
	}
	head := bc.CurrentBlock().Number.Uint64()
	for n := t.m.head + 1; n <= head; n++ {
		blk := bc.GetBlockByNumber(n)
		if blk == nil {
			return fmt.Errorf("devchain: block %d missing", n)
		}
		if err := t.m.apply(blk, bc.GetReceiptsByHash(blk.Hash())); err != nil {
			return err
		}
	}
	return nil
}

// plan is the block being filled: what its transactions already touch, so that no two of them
// conflict (each is chosen from the state before the block).
type plan struct {
	sent     map[common.Hash]string // tx -> operation
	tickets  map[*mTicket]bool
	listings map[*mListing]bool
	reserved map[*mEvent]uint64 // tickets being minted per event
	early    map[*mEvent]uint64 // early-bird claims per event
	flags    map[string]bool
}

func (t *Traffic) blockLocked(ctx context.Context, n int, inReorg bool) (StepResult, error) {
	p := &plan{
		sent: map[common.Hash]string{}, tickets: map[*mTicket]bool{}, listings: map[*mListing]bool{},
		reserved: map[*mEvent]uint64{}, early: map[*mEvent]uint64{}, flags: map[string]bool{},
	}
	for attempts := 0; len(p.sent) < n && attempts < 4*n; attempts++ {
		if err := t.oneOp(ctx, p); err != nil {
			return StepResult{}, err
		}
	}
	sealed, err := t.c.commitLocked()
	if err != nil {
		return StepResult{}, err
	}
	if err := t.syncLocked(); err != nil {
		return StepResult{}, err
	}
	t.stats.Blocks += len(sealed)
	t.stats.Txs += len(p.sent)
	included := 0
	for _, b := range sealed {
		for _, r := range t.c.eth.BlockChain().GetReceiptsByHash(b) {
			op, ours := p.sent[r.TxHash]
			if !ours {
				continue
			}
			included++
			if r.Status == types.ReceiptStatusSuccessful {
				continue
			}
			if inReorg {
				t.stats.RevertedInReorg++
				continue
			}
			t.stats.Reverted++
			t.log.Warn("traffic transaction reverted", "op", op, "tx", r.TxHash,
				"reason", t.c.revertReason(ctx, r.TxHash, r.BlockNumber))
		}
	}
	if included != len(p.sent) {
		return StepResult{}, fmt.Errorf("devchain: %d of the %d traffic transactions were mined", included, len(p.sent))
	}
	return StepResult{Head: t.m.head, HeadHash: sealed[len(sealed)-1], Txs: len(p.sent)}, nil
}

// op weights: live traffic, and the pre-build profile (mostly events and purchases).
type opDef struct {
	name       string
	live, bulk int
	run        func(t *Traffic, ctx context.Context, p *plan) (bool, error)
}

func opTable() []opDef {
	return []opDef{
		{"verifyOrganizer", 4, 1, (*Traffic).opVerify},
		{"unverifyOrganizer", 1, 0, (*Traffic).opUnverify},
		{"createEvent", 8, 12, (*Traffic).opCreate},
		{"createEventViaWallet", 2, 1, (*Traffic).opCreateVia},
		{"updateEvent", 3, 1, (*Traffic).opUpdate},
		{"setEventStatus", 3, 0, (*Traffic).opStatus},
		{"emergencyDeactivateEvent", 1, 0, (*Traffic).opEmergency},
		{"setPOAPOrIncentiveContract", 1, 0, (*Traffic).opSetContracts},
		{"purchaseTicket", 36, 60, (*Traffic).opPurchase},
		{"mintTicket", 5, 3, (*Traffic).opMint},
		{"transfer", 14, 6, (*Traffic).opTransfer},
		{"useTicket", 8, 3, (*Traffic).opUse},
		{"setTransferRestriction", 4, 1, (*Traffic).opRestrict},
		{"burn", 3, 1, (*Traffic).opBurn},
		{"listTicket", 8, 3, (*Traffic).opList},
		{"buyListing", 7, 3, (*Traffic).opBuyListing},
		{"cancelListing", 3, 1, (*Traffic).opCancel},
		{"emergencyCancelListing", 1, 0, (*Traffic).opEmergencyCancel},
		{"mintAttendance", 7, 3, (*Traffic).opAttendance},
		{"claimEarlyBird", 4, 1, (*Traffic).opEarlyBird},
		{"claimLoyaltyReward", 3, 1, (*Traffic).opLoyalty},
		{"generateReferralCode", 3, 1, (*Traffic).opReferralCode},
		{"useReferralCode", 3, 1, (*Traffic).opReferralUse},
	}
}

func (t *Traffic) oneOp(ctx context.Context, p *plan) error {
	total := 0
	for _, o := range t.ops {
		total += t.weight(o)
	}
	pick := t.rng.Intn(total)
	for _, o := range t.ops {
		w := t.weight(o)
		if pick >= w {
			pick -= w
			continue
		}
		_, err := o.run(t, ctx, p)
		return err
	}
	return nil
}

func (t *Traffic) weight(o opDef) int {
	w := o.live
	if t.bulk {
		w = o.bulk
	}
	// Keep the chain lively from the first block: organisers first, then events to sell.
	switch o.name {
	case "verifyOrganizer":
		if t.countVerified() < 2 {
			w += 40
		}
	case "createEvent":
		if t.activeEvents() < 3 {
			w += 30
		}
	}
	return w
}

// send signs and submits a planned transaction and records it.
func (t *Traffic) send(ctx context.Context, p *plan, op string, r txReq) error {
	to := r.to
	tx, err := t.c.sendLocked(ctx, r.from, &to, r.value, r.data, r.gas)
	if err != nil {
		return fmt.Errorf("devchain: traffic %s: %w", op, err)
	}
	p.sent[tx.Hash()] = op
	t.stats.Ops[op]++
	return nil
}

// Random choices.

func (t *Traffic) user() Account { return t.c.users[t.rng.Intn(len(t.c.users))] }

func (t *Traffic) otherUser(not common.Address) Account {
	for {
		if u := t.user(); u.Address != not {
			return u
		}
	}
}

// pick tries random indexes (mostly among the latest n items) until ok accepts one.
func pick[T any](t *Traffic, items []T, ok func(T) bool) (T, bool) {
	var zero T
	if len(items) == 0 {
		return zero, false
	}
	for i := 0; i < 24; i++ {
		j := t.rng.Intn(len(items))
		if recent := 400; i%3 != 2 && len(items) > recent {
			j = len(items) - 1 - t.rng.Intn(recent)
		}
		if ok(items[j]) {
			return items[j], true
		}
	}
	return zero, false
}

func (t *Traffic) countVerified() int {
	n := 0
	for _, o := range t.orgs {
		if t.m.verified[o.Address] {
			n++
		}
	}
	return n
}

func (t *Traffic) activeEvents() int {
	n := 0
	for i := len(t.m.events) - 1; i >= 0 && i >= len(t.m.events)-50; i-- {
		if e := t.m.events[i]; e.active && e.minted < e.max {
			n++
		}
	}
	return n
}

// holder returns the account that can move a ticket (its owner, when we hold the key).
func (t *Traffic) holder(tk *mTicket) (Account, bool) {
	a, ok := t.keys[tk.owner]
	return a, ok && tk.owner != t.c.deployer.Address
}

// asOrganizer turns an organiser-only call into a transaction: from the organiser, or through
// the organiser's smart wallet.
func (t *Traffic) asOrganizer(e *mEvent, r txReq) (txReq, bool) {
	if a, ok := t.keys[e.organizer]; ok {
		r.from = a
		return r, true
	}
	for _, w := range t.m.wallets {
		if w.addr == e.organizer {
			if owner, ok := t.keys[w.owner]; ok {
				return t.c.reqVia(owner, w.addr, r), true
			}
		}
	}
	return txReq{}, false
}

func (t *Traffic) eventParams() EventParams {
	t.nameN++
	adjectives := []string{"Lagos", "Midnight", "Summer", "Genesis", "Open", "Onchain", "Rooftop", "Founders"}
	nouns := []string{"Jazz Night", "DevCon", "Hackathon", "Art Walk", "Derby", "Summit", "Film Club", "Meetup"}
	name := fmt.Sprintf("%s %s #%d", adjectives[t.rng.Intn(len(adjectives))], nouns[t.rng.Intn(len(nouns))], t.nameN)
	prices := []int64{0, 1e15, 5e15, 1e16, 2e16, 5e16}
	maxT := uint64(20 + t.rng.Intn(280))
	if t.bulk {
		maxT = uint64(30 + t.rng.Intn(40))
	}
	start := t.c.Head().Time + 86400*uint64(1+t.rng.Intn(60))
	return EventParams{
		Name: name, MetadataURI: t.nextURI(), TicketPrice: big.NewInt(prices[t.rng.Intn(len(prices))]),
		MaxTickets: maxT, StartTime: start, EndTime: start + 3600*uint64(2+t.rng.Intn(70)),
	}
}

// nextURI is mostly an ipfs:// URI the metadata server answers, sometimes none or one it cannot.
func (t *Traffic) nextURI() string {
	t.uriN++
	switch r := t.rng.Intn(20); {
	case r == 0:
		return ""
	case r == 1:
		return fmt.Sprintf("ar://echain-dev-%d", t.uriN)
	default:
		return MetadataURI(t.cfg.Seed, t.uriN)
	}
}

// earlyBirdLimit is IncentiveManager.earlyBirdLimit as deployed.
const earlyBirdLimit = 100

func ether(milli int64) *big.Int {
	return new(big.Int).Mul(big.NewInt(milli), big.NewInt(params.Ether/1000))
}

// Operations. Each returns whether it sent something; a false return with nil error means the
// state offered nothing suitable this time.

func (t *Traffic) opVerify(ctx context.Context, p *plan) (bool, error) {
	org := t.orgs[t.rng.Intn(len(t.orgs))]
	if p.flags["org:"+org.Address.Hex()] || (t.m.verified[org.Address] && t.rng.Intn(5) != 0) {
		return false, nil
	}
	p.flags["org:"+org.Address.Hex()] = true
	return true, t.send(ctx, p, "verifyOrganizer", t.c.reqVerify(org))
}

func (t *Traffic) opUnverify(ctx context.Context, p *plan) (bool, error) {
	if t.countVerified() < 4 {
		return false, nil
	}
	org := t.orgs[t.rng.Intn(len(t.orgs))]
	if !t.m.verified[org.Address] || p.flags["org:"+org.Address.Hex()] {
		return false, nil
	}
	p.flags["org:"+org.Address.Hex()] = true
	return true, t.send(ctx, p, "unverifyOrganizer", txReq{t.c.deployer, t.c.Addresses.EventFactory, nil,
		mustPack(t.c.contract.factory, "unverifyOrganizer", org.Address), gasSmall})
}

func (t *Traffic) opCreate(ctx context.Context, p *plan) (bool, error) {
	org := t.orgs[t.rng.Intn(len(t.orgs))]
	if !t.m.verified[org.Address] || p.flags["org:"+org.Address.Hex()] {
		return false, nil
	}
	p.flags["org:"+org.Address.Hex()] = true
	return true, t.send(ctx, p, "createEvent", t.c.reqCreateEvent(org, t.eventParams()))
}

func (t *Traffic) opCreateVia(ctx context.Context, p *plan) (bool, error) {
	if len(t.m.wallets) == 0 {
		if p.flags["wallet"] {
			return false, nil
		}
		p.flags["wallet"] = true
		owner := t.orgs[t.rng.Intn(len(t.orgs))]
		code, err := t.c.contract.creation("SmartWallet", owner.Address)
		if err != nil {
			return false, err
		}
		tx, err := t.c.sendLocked(ctx, owner, nil, nil, code, gasWallet)
		if err != nil {
			return false, fmt.Errorf("devchain: traffic deployWallet: %w", err)
		}
		p.sent[tx.Hash()] = "deployWallet"
		t.stats.Ops["deployWallet"]++
		return true, nil
	}
	w := t.m.wallets[t.rng.Intn(len(t.m.wallets))]
	owner, ok := t.keys[w.owner]
	if !ok || p.flags["org:"+w.addr.Hex()] {
		return false, nil
	}
	p.flags["org:"+w.addr.Hex()] = true
	if !w.verified {
		return true, t.send(ctx, p, "verifyOrganizerViaWallet", t.c.reqVia(owner, w.addr, t.c.reqVerify(Account{Address: w.addr})))
	}
	return true, t.send(ctx, p, "createEventViaWallet", t.c.reqVia(owner, w.addr, t.c.reqCreateEvent(Account{Address: w.addr}, t.eventParams())))
}

func (t *Traffic) opUpdate(ctx context.Context, p *plan) (bool, error) {
	e, ok := pick(t, t.m.events, func(*mEvent) bool { return true })
	if !ok {
		return false, nil
	}
	t.nameN++
	r, ok := t.asOrganizer(e, txReq{to: t.c.Addresses.EventFactory, gas: gasUpdate,
		data: mustPack(t.c.contract.factory, "updateEvent", u(e.id), fmt.Sprintf("Event %d (rev %d)", e.id, t.nameN), t.nextURI())})
	if !ok {
		return false, nil
	}
	return true, t.send(ctx, p, "updateEvent", r)
}

func (t *Traffic) opStatus(ctx context.Context, p *plan) (bool, error) {
	e, ok := pick(t, t.m.events, func(e *mEvent) bool { return !p.flags[fmt.Sprint("ev:", e.id)] })
	if !ok {
		return false, nil
	}
	active := !e.active
	if t.rng.Intn(6) == 0 {
		active = e.active // the same status again still logs
	}
	r, ok := t.asOrganizer(e, txReq{to: t.c.Addresses.EventFactory, gas: gasSmall,
		data: mustPack(t.c.contract.factory, "setEventStatus", u(e.id), active)})
	if !ok {
		return false, nil
	}
	p.flags[fmt.Sprint("ev:", e.id)] = true
	return true, t.send(ctx, p, "setEventStatus", r)
}

func (t *Traffic) opEmergency(ctx context.Context, p *plan) (bool, error) {
	if t.activeEvents() < 4 {
		return false, nil
	}
	e, ok := pick(t, t.m.events, func(e *mEvent) bool { return e.active && !p.flags[fmt.Sprint("ev:", e.id)] })
	if !ok {
		return false, nil
	}
	p.flags[fmt.Sprint("ev:", e.id)] = true
	return true, t.send(ctx, p, "emergencyDeactivateEvent", txReq{t.c.deployer, t.c.Addresses.EventFactory, nil,
		mustPack(t.c.contract.factory, "emergencyDeactivateEvent", u(e.id)), gasSmall})
}

func (t *Traffic) opSetContracts(ctx context.Context, p *plan) (bool, error) {
	e, ok := pick(t, t.m.events, func(*mEvent) bool { return true })
	if !ok {
		return false, nil
	}
	method, target := "setPOAPContract", t.c.Addresses.POAPAttendance
	if t.rng.Intn(2) == 0 {
		method, target = "setIncentiveContract", t.c.Addresses.IncentiveManager
	}
	r, ok := t.asOrganizer(e, txReq{to: t.c.Addresses.EventFactory, gas: gasSmall,
		data: mustPack(t.c.contract.factory, method, u(e.id), target)})
	if !ok {
		return false, nil
	}
	return true, t.send(ctx, p, "setPOAPOrIncentiveContract", r)
}

func (t *Traffic) opPurchase(ctx context.Context, p *plan) (bool, error) {
	q := 1 + t.rng.Intn(3)
	if t.bulk {
		q = 1 + t.rng.Intn(10)
	}
	e, ok := pick(t, t.m.events, func(e *mEvent) bool { return e.active && e.minted+p.reserved[e]+uint64(q) <= e.max })
	if !ok {
		return false, nil
	}
	p.reserved[e] += uint64(q)
	return true, t.send(ctx, p, "purchaseTicket", t.c.reqPurchase(t.user(), e.clone, e.price, q))
}

func (t *Traffic) opMint(ctx context.Context, p *plan) (bool, error) {
	n := 1
	if t.rng.Intn(3) == 0 {
		n = 2 + t.rng.Intn(3)
	}
	e, ok := pick(t, t.m.events, func(e *mEvent) bool { return e.minted+p.reserved[e]+uint64(n) <= e.max })
	if !ok {
		return false, nil
	}
	var r txReq
	if n == 1 {
		r = txReq{to: e.clone, gas: gasMint(1), data: mustPack(t.c.contract.ticket, "mintTicket",
			t.user().Address, u(uint64(1+t.rng.Intn(500))), u(uint64(t.rng.Intn(4))))}
	} else {
		to, seats, tiers := make([]common.Address, n), make([]*big.Int, n), make([]*big.Int, n)
		for i := range to {
			to[i], seats[i], tiers[i] = t.user().Address, u(uint64(t.rng.Intn(500))), u(uint64(1+t.rng.Intn(3)))
		}
		r = txReq{to: e.clone, gas: gasMint(n), data: mustPack(t.c.contract.ticket, "batchMintTickets", to, seats, tiers)}
	}
	r, ok = t.asOrganizer(e, r)
	if !ok {
		return false, nil
	}
	p.reserved[e] += uint64(n)
	return true, t.send(ctx, p, "mintTicket", r)
}

// movable: a ticket its holder (a key we have) may move now.
func (t *Traffic) movable(p *plan) func(*mTicket) bool {
	return func(tk *mTicket) bool {
		_, ok := t.holder(tk)
		return ok && !tk.restricted && !p.tickets[tk]
	}
}

func (t *Traffic) opTransfer(ctx context.Context, p *plan) (bool, error) {
	tk, ok := pick(t, t.m.tickets, t.movable(p))
	if !ok {
		return false, nil
	}
	from, _ := t.holder(tk)
	p.tickets[tk] = true
	to := t.otherUser(from.Address)
	return true, t.send(ctx, p, "transfer", txReq{from, tk.ev.clone, nil,
		mustPack(t.c.contract.ticket, "transferFrom", from.Address, to.Address, u(tk.id)), gasSmall})
}

func (t *Traffic) opUse(ctx context.Context, p *plan) (bool, error) {
	tk, ok := pick(t, t.m.tickets, func(tk *mTicket) bool {
		return !tk.used && tk.owner != (common.Address{}) && !p.tickets[tk]
	})
	if !ok {
		return false, nil
	}
	r, ok := t.asOrganizer(tk.ev, txReq{to: tk.ev.clone, gas: gasSmall, data: mustPack(t.c.contract.ticket, "useTicket", u(tk.id))})
	if !ok {
		return false, nil
	}
	p.tickets[tk] = true
	return true, t.send(ctx, p, "useTicket", r)
}

func (t *Traffic) opRestrict(ctx context.Context, p *plan) (bool, error) {
	tk, ok := pick(t, t.m.tickets, func(tk *mTicket) bool {
		return tk.owner != (common.Address{}) && tk.owner != t.c.Addresses.Marketplace && !p.tickets[tk]
	})
	if !ok {
		return false, nil
	}
	r, ok := t.asOrganizer(tk.ev, txReq{to: tk.ev.clone, gas: gasSmall,
		data: mustPack(t.c.contract.ticket, "setTransferRestriction", u(tk.id), !tk.restricted)})
	if !ok {
		return false, nil
	}
	p.tickets[tk] = true
	return true, t.send(ctx, p, "setTransferRestriction", r)
}

func (t *Traffic) opBurn(ctx context.Context, p *plan) (bool, error) {
	tk, ok := pick(t, t.m.tickets, func(tk *mTicket) bool {
		_, ok := t.holder(tk)
		return ok && !p.tickets[tk]
	})
	if !ok {
		return false, nil
	}
	from, _ := t.holder(tk)
	p.tickets[tk] = true
	return true, t.send(ctx, p, "burn", txReq{from, tk.ev.clone, nil, mustPack(t.c.contract.ticket, "burn", u(tk.id)), gasSmall})
}

func (t *Traffic) opList(ctx context.Context, p *plan) (bool, error) {
	tk, ok := pick(t, t.m.tickets, t.movable(p))
	if !ok {
		return false, nil
	}
	from, _ := t.holder(tk)
	p.tickets[tk] = true
	if err := t.send(ctx, p, "approve", txReq{from, tk.ev.clone, nil,
		mustPack(t.c.contract.ticket, "approve", t.c.Addresses.Marketplace, u(tk.id)), gasSmall}); err != nil {
		return false, err
	}
	price := ether(int64(1 + t.rng.Intn(100)))
	return true, t.send(ctx, p, "listTicket", txReq{from, t.c.Addresses.Marketplace, nil,
		mustPack(t.c.contract.market, "listTicket", tk.ev.clone, u(tk.id), price), gasList})
}

func (t *Traffic) activeListing(p *plan) (*mListing, bool) {
	return pick(t, t.m.listings, func(l *mListing) bool { return l.active && !p.listings[l] && !p.tickets[l.tk] })
}

func (t *Traffic) opBuyListing(ctx context.Context, p *plan) (bool, error) {
	l, ok := t.activeListing(p)
	if !ok {
		return false, nil
	}
	p.listings[l], p.tickets[l.tk] = true, true
	return true, t.send(ctx, p, "buyListing", txReq{t.otherUser(l.seller), t.c.Addresses.Marketplace, l.price,
		mustPack(t.c.contract.market, "buyTicket", l.id), gasBuyListing})
}

func (t *Traffic) opCancel(ctx context.Context, p *plan) (bool, error) {
	l, ok := t.activeListing(p)
	if !ok {
		return false, nil
	}
	seller, ok := t.keys[l.seller]
	if !ok {
		return false, nil
	}
	p.listings[l], p.tickets[l.tk] = true, true
	return true, t.send(ctx, p, "cancelListing", txReq{seller, t.c.Addresses.Marketplace, nil,
		mustPack(t.c.contract.market, "cancelListing", l.id), gasCancel})
}

func (t *Traffic) opEmergencyCancel(ctx context.Context, p *plan) (bool, error) {
	l, ok := t.activeListing(p)
	if !ok {
		return false, nil
	}
	p.listings[l], p.tickets[l.tk] = true, true
	return true, t.send(ctx, p, "emergencyCancelListing", txReq{t.c.deployer, t.c.Addresses.Marketplace, nil,
		mustPack(t.c.contract.market, "emergencyCancelListing", l.id), gasCancel})
}

func (t *Traffic) opAttendance(ctx context.Context, p *plan) (bool, error) {
	var eventID uint64
	var attendee Account
	if t.rng.Intn(25) == 0 {
		// An attendance for an event the factory does not have (the entity's event is null).
		eventID, attendee = uint64(len(t.m.events))+1000+uint64(t.rng.Intn(1000)), t.user()
	} else {
		tk, ok := pick(t, t.m.tickets, func(tk *mTicket) bool {
			a, ok := t.holder(tk)
			return ok && !t.m.attended[eventUser{tk.ev.id, a.Address}]
		})
		if !ok {
			return false, nil
		}
		eventID, attendee = tk.ev.id, t.keys[tk.owner]
	}
	key := "att:" + attendee.Address.Hex()
	if p.flags[key] || t.m.attended[eventUser{eventID, attendee.Address}] {
		return false, nil
	}
	r, err := t.c.reqAttendance(attendee, eventID, attendee.Address, t.m.poaps[attendee.Address], t.c.Head().Time+3600)
	if err != nil {
		return false, err
	}
	p.flags[key] = true
	return true, t.send(ctx, p, "mintAttendance", r)
}

func (t *Traffic) opEarlyBird(ctx context.Context, p *plan) (bool, error) {
	tk, ok := pick(t, t.m.tickets, func(tk *mTicket) bool {
		a, ok := t.holder(tk)
		return ok && !p.tickets[tk] && !t.m.early[eventUser{tk.ev.id, a.Address}] &&
			t.m.earlyN[tk.ev.id]+p.early[tk.ev] < earlyBirdLimit &&
			!p.flags[fmt.Sprint("early:", tk.ev.id, a.Address.Hex())]
	})
	if !ok {
		return false, nil
	}
	from, _ := t.holder(tk)
	p.tickets[tk] = true
	p.flags[fmt.Sprint("early:", tk.ev.id, from.Address.Hex())] = true
	p.early[tk.ev]++
	return true, t.send(ctx, p, "claimEarlyBird", txReq{from, t.c.Addresses.IncentiveManager, nil,
		mustPack(t.c.contract.incentive, "claimEarlyBird", u(tk.ev.id), tk.ev.clone), gasReward})
}

func (t *Traffic) opLoyalty(ctx context.Context, p *plan) (bool, error) {
	for i := 0; i < 8; i++ {
		a := t.user()
		if t.m.poaps[a.Address] > t.m.loyalty[a.Address] && !p.flags["loyal:"+a.Address.Hex()] {
			p.flags["loyal:"+a.Address.Hex()] = true
			return true, t.send(ctx, p, "claimLoyaltyReward", txReq{a, t.c.Addresses.IncentiveManager, nil,
				mustPack(t.c.contract.incentive, "claimLoyaltyReward", u(100)), gasReward})
		}
	}
	return false, nil
}

func (t *Traffic) opReferralCode(ctx context.Context, p *plan) (bool, error) {
	var code common.Hash
	for {
		// The head in the preimage keeps codes fresh for a generator started on a chain that
		// another generator (same seed) filled before.
		t.codeN++
		var buf [24]byte
		binary.BigEndian.PutUint64(buf[:8], uint64(t.cfg.Seed))
		binary.BigEndian.PutUint64(buf[8:16], t.codeN)
		binary.BigEndian.PutUint64(buf[16:], t.m.head)
		code = crypto.Keccak256Hash([]byte("echain-referral"), buf[:])
		if !t.m.codeTaken[code] && !p.flags["code:"+code.Hex()] {
			break
		}
	}
	p.flags["code:"+code.Hex()] = true
	return true, t.send(ctx, p, "generateReferralCode", txReq{t.user(), t.c.Addresses.IncentiveManager, nil,
		mustPack(t.c.contract.incentive, "generateReferralCode", code), gasSmall})
}

func (t *Traffic) opReferralUse(ctx context.Context, p *plan) (bool, error) {
	if len(t.m.codes) == 0 {
		return false, nil
	}
	code := t.m.codes[t.rng.Intn(len(t.m.codes))]
	invitee := t.user()
	key := "ref:" + invitee.Address.Hex()
	if invitee.Address == code.inviter || t.m.referred[invitee.Address] || p.flags[key] {
		return false, nil
	}
	p.flags[key] = true
	return true, t.send(ctx, p, "useReferralCode", txReq{invitee, t.c.Addresses.IncentiveManager, nil,
		mustPack(t.c.contract.incentive, "useReferralCode", code.code, invitee.Address), gasSmall})
}
