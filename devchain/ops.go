package devchain

import (
	"context"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
)

// Explicit operations for tests. Each signs and submits one transaction (List submits two) and
// returns its hash without sealing a block: call Mine (or Commit) to include everything submitted.
// The account passed first is the sender; it must be one of the chain's accounts.

// VerificationFee returns EventFactory.ORGANIZER_VERIFICATION_FEE of our contracts (0.002 ether),
// which selfVerifyOrganizer requires.
func VerificationFee() *big.Int { return big.NewInt(2 * params.Ether / 1000) }

// EventParams are createEvent's arguments.
type EventParams struct {
	Name        string
	MetadataURI string
	TicketPrice *big.Int
	MaxTickets  uint64
	StartTime   uint64 // unix seconds
	EndTime     uint64 // > StartTime
}

// txReq is one transaction to sign and send.
type txReq struct {
	from  Account
	to    common.Address
	value *big.Int
	data  []byte
	gas   uint64
}

func (c *Chain) submit(ctx context.Context, r txReq) (common.Hash, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	to := r.to
	tx, err := c.sendLocked(ctx, r.from, &to, r.value, r.data, r.gas)
	if err != nil {
		return common.Hash{}, err
	}
	return tx.Hash(), nil
}

func u(v uint64) *big.Int { return new(big.Int).SetUint64(v) }

// Gas limits: generous fixed values (measured use is well below; see TestGasHeadroom), so
// sending needs no estimation round trip.
func gasCreateEvent(p EventParams) uint64 {
	return 900_000 + 60_000*uint64((len(p.Name)+len(p.MetadataURI))/32+2)
}

func gasPurchase(q int) uint64 { return 80_000 + 90_000*uint64(q) }

// gasMint covers organiser mints, which also store a seat and a tier per ticket.
func gasMint(n int) uint64 { return 100_000 + 150_000*uint64(n) }

const (
	gasSmall      = 120_000 // verify, status, restrict, use, approve, transfer, burn, referral
	gasUpdate     = 400_000 // updateEvent (two strings)
	gasList       = 300_000
	gasBuyListing = 200_000
	gasCancel     = 150_000
	gasAttendance = 300_000
	gasReward     = 350_000
	gasWallet     = 400_000
	gasViaExtra   = 60_000 // SmartWallet.execute overhead
)

func (c *Chain) reqVerify(org Account) txReq {
	return txReq{org, c.Addresses.EventFactory, VerificationFee(), mustPack(c.contract.factory, "selfVerifyOrganizer", org.Address), gasSmall}
}

func (c *Chain) reqCreateEvent(org Account, p EventParams) txReq {
	price := p.TicketPrice
	if price == nil {
		price = new(big.Int)
	}
	data := mustPack(c.contract.factory, "createEvent", p.Name, p.MetadataURI, price, u(p.MaxTickets), u(p.StartTime), u(p.EndTime))
	return txReq{org, c.Addresses.EventFactory, nil, data, gasCreateEvent(p)}
}

func (c *Chain) reqPurchase(buyer Account, ticket common.Address, price *big.Int, q int) txReq {
	value := new(big.Int).Mul(price, big.NewInt(int64(q)))
	return txReq{buyer, ticket, value, mustPack(c.contract.ticket, "purchaseTicket", big.NewInt(int64(q))), gasPurchase(q)}
}

// VerifyOrganizer calls selfVerifyOrganizer(org) from org, paying the fee.
func (c *Chain) VerifyOrganizer(ctx context.Context, org Account) (common.Hash, error) {
	return c.submit(ctx, c.reqVerify(org))
}

// UnverifyOrganizer calls unverifyOrganizer(org) from the factory owner.
func (c *Chain) UnverifyOrganizer(ctx context.Context, org common.Address) (common.Hash, error) {
	return c.submit(ctx, txReq{c.deployer, c.Addresses.EventFactory, nil, mustPack(c.contract.factory, "unverifyOrganizer", org), gasSmall})
}

// CreateEvent calls createEvent from a verified organiser.
func (c *Chain) CreateEvent(ctx context.Context, org Account, p EventParams) (common.Hash, error) {
	return c.submit(ctx, c.reqCreateEvent(org, p))
}

// UpdateEvent calls updateEvent from the event's organiser.
func (c *Chain) UpdateEvent(ctx context.Context, org Account, eventID uint64, name, metadataURI string) (common.Hash, error) {
	return c.submit(ctx, txReq{org, c.Addresses.EventFactory, nil, mustPack(c.contract.factory, "updateEvent", u(eventID), name, metadataURI), gasUpdate})
}

// SetEventStatus calls setEventStatus from the organiser (or the owner).
func (c *Chain) SetEventStatus(ctx context.Context, from Account, eventID uint64, active bool) (common.Hash, error) {
	return c.submit(ctx, txReq{from, c.Addresses.EventFactory, nil, mustPack(c.contract.factory, "setEventStatus", u(eventID), active), gasSmall})
}

// EmergencyDeactivate calls emergencyDeactivateEvent from the factory owner.
func (c *Chain) EmergencyDeactivate(ctx context.Context, eventID uint64) (common.Hash, error) {
	return c.submit(ctx, txReq{c.deployer, c.Addresses.EventFactory, nil, mustPack(c.contract.factory, "emergencyDeactivateEvent", u(eventID)), gasSmall})
}

// SetPOAPContract calls setPOAPContract (emits no log).
func (c *Chain) SetPOAPContract(ctx context.Context, org Account, eventID uint64, poap common.Address) (common.Hash, error) {
	return c.submit(ctx, txReq{org, c.Addresses.EventFactory, nil, mustPack(c.contract.factory, "setPOAPContract", u(eventID), poap), gasSmall})
}

// SetIncentiveContract calls setIncentiveContract (emits no log).
func (c *Chain) SetIncentiveContract(ctx context.Context, org Account, eventID uint64, incentive common.Address) (common.Hash, error) {
	return c.submit(ctx, txReq{org, c.Addresses.EventFactory, nil, mustPack(c.contract.factory, "setIncentiveContract", u(eventID), incentive), gasSmall})
}

// BuyTickets calls purchaseTicket(quantity) on a ticket clone, paying its price (read from the chain).
func (c *Chain) BuyTickets(ctx context.Context, buyer Account, ticket common.Address, quantity int) (common.Hash, error) {
	res, err := c.call(ctx, c.contract.ticket, ticket, "ticketPrice")
	if err != nil {
		return common.Hash{}, err
	}
	return c.submit(ctx, c.reqPurchase(buyer, ticket, res[0].(*big.Int), quantity))
}

// MintTicket calls mintTicket(to, seat, tier) from the event's organiser.
func (c *Chain) MintTicket(ctx context.Context, org Account, ticket, to common.Address, seat, tier uint64) (common.Hash, error) {
	return c.submit(ctx, txReq{org, ticket, nil, mustPack(c.contract.ticket, "mintTicket", to, u(seat), u(tier)), gasMint(1)})
}

// BatchMintTickets calls batchMintTickets from the event's organiser.
func (c *Chain) BatchMintTickets(ctx context.Context, org Account, ticket common.Address, to []common.Address, seats, tiers []uint64) (common.Hash, error) {
	s, t := make([]*big.Int, len(seats)), make([]*big.Int, len(tiers))
	for i := range seats {
		s[i] = u(seats[i])
	}
	for i := range tiers {
		t[i] = u(tiers[i])
	}
	return c.submit(ctx, txReq{org, ticket, nil, mustPack(c.contract.ticket, "batchMintTickets", to, s, t), gasMint(len(to))})
}

// Transfer calls transferFrom(holder, to, tokenID) from the holder.
func (c *Chain) Transfer(ctx context.Context, holder Account, ticket, to common.Address, tokenID uint64) (common.Hash, error) {
	return c.submit(ctx, txReq{holder, ticket, nil, mustPack(c.contract.ticket, "transferFrom", holder.Address, to, u(tokenID)), gasSmall})
}

// UseTicket calls useTicket (check-in) from the event's organiser.
func (c *Chain) UseTicket(ctx context.Context, org Account, ticket common.Address, tokenID uint64) (common.Hash, error) {
	return c.submit(ctx, txReq{org, ticket, nil, mustPack(c.contract.ticket, "useTicket", u(tokenID)), gasSmall})
}

// Restrict calls setTransferRestriction from the event's organiser.
func (c *Chain) Restrict(ctx context.Context, org Account, ticket common.Address, tokenID uint64, restricted bool) (common.Hash, error) {
	return c.submit(ctx, txReq{org, ticket, nil, mustPack(c.contract.ticket, "setTransferRestriction", u(tokenID), restricted), gasSmall})
}

// Burn calls burn from the holder.
func (c *Chain) Burn(ctx context.Context, holder Account, ticket common.Address, tokenID uint64) (common.Hash, error) {
	return c.submit(ctx, txReq{holder, ticket, nil, mustPack(c.contract.ticket, "burn", u(tokenID)), gasSmall})
}

// List approves the marketplace for the ticket and lists it; it returns the listTicket hash.
func (c *Chain) List(ctx context.Context, seller Account, ticket common.Address, tokenID uint64, price *big.Int) (common.Hash, error) {
	if _, err := c.submit(ctx, txReq{seller, ticket, nil, mustPack(c.contract.ticket, "approve", c.Addresses.Marketplace, u(tokenID)), gasSmall}); err != nil {
		return common.Hash{}, err
	}
	return c.submit(ctx, txReq{seller, c.Addresses.Marketplace, nil, mustPack(c.contract.market, "listTicket", ticket, u(tokenID), price), gasList})
}

// BuyListing calls buyTicket(listingID), paying the listed price (read from the chain).
func (c *Chain) BuyListing(ctx context.Context, buyer Account, listingID common.Hash) (common.Hash, error) {
	res, err := c.call(ctx, c.contract.market, c.Addresses.Marketplace, "listings", listingID)
	if err != nil {
		return common.Hash{}, err
	}
	price := res[3].(*big.Int)
	return c.submit(ctx, txReq{buyer, c.Addresses.Marketplace, price, mustPack(c.contract.market, "buyTicket", listingID), gasBuyListing})
}

// CancelListing calls cancelListing from the seller.
func (c *Chain) CancelListing(ctx context.Context, seller Account, listingID common.Hash) (common.Hash, error) {
	return c.submit(ctx, txReq{seller, c.Addresses.Marketplace, nil, mustPack(c.contract.market, "cancelListing", listingID), gasCancel})
}

// EmergencyCancelListing calls emergencyCancelListing from the marketplace owner.
func (c *Chain) EmergencyCancelListing(ctx context.Context, listingID common.Hash) (common.Hash, error) {
	return c.submit(ctx, txReq{c.deployer, c.Addresses.Marketplace, nil, mustPack(c.contract.market, "emergencyCancelListing", listingID), gasCancel})
}

// MintAttendance mints an attendance token for attendee, signed by the POAP owner (the deployer)
// and sent by sender. The attendee's nonce is read from the chain, so two mints for the same
// attendee need a Mine in between.
func (c *Chain) MintAttendance(ctx context.Context, sender Account, eventID uint64, attendee common.Address) (common.Hash, error) {
	res, err := c.call(ctx, c.contract.poap, c.Addresses.POAPAttendance, "nonces", attendee)
	if err != nil {
		return common.Hash{}, err
	}
	r, err := c.reqAttendance(sender, eventID, attendee, res[0].(*big.Int).Uint64(), c.Head().Time+3600)
	if err != nil {
		return common.Hash{}, err
	}
	return c.submit(ctx, r)
}

func (c *Chain) reqAttendance(sender Account, eventID uint64, attendee common.Address, nonce, deadline uint64) (txReq, error) {
	word := func(b []byte) []byte { return common.LeftPadBytes(b, 32) }
	digest := crypto.Keccak256(
		word(c.chainID.Bytes()), word(c.Addresses.POAPAttendance.Bytes()), word(u(eventID).Bytes()),
		word(attendee.Bytes()), word(u(nonce).Bytes()), word(u(deadline).Bytes()))
	sig, err := crypto.Sign(accounts.TextHash(digest), c.deployer.Key)
	if err != nil {
		return txReq{}, fmt.Errorf("devchain: sign attendance: %w", err)
	}
	data := mustPack(c.contract.poap, "mintAttendance", u(eventID), attendee, u(nonce), u(deadline), sig)
	return txReq{sender, c.Addresses.POAPAttendance, nil, data, gasAttendance}, nil
}

// ClaimEarlyBird calls claimEarlyBird from a ticket holder of the event.
func (c *Chain) ClaimEarlyBird(ctx context.Context, holder Account, eventID uint64, ticket common.Address) (common.Hash, error) {
	return c.submit(ctx, txReq{holder, c.Addresses.IncentiveManager, nil, mustPack(c.contract.incentive, "claimEarlyBird", u(eventID), ticket), gasReward})
}

// ClaimLoyaltyReward calls claimLoyaltyReward(threshold); each attendance token is worth 100 points.
func (c *Chain) ClaimLoyaltyReward(ctx context.Context, user Account, threshold uint64) (common.Hash, error) {
	return c.submit(ctx, txReq{user, c.Addresses.IncentiveManager, nil, mustPack(c.contract.incentive, "claimLoyaltyReward", u(threshold)), gasReward})
}

// GenerateReferralCode calls generateReferralCode(code) from the inviter.
func (c *Chain) GenerateReferralCode(ctx context.Context, inviter Account, code common.Hash) (common.Hash, error) {
	return c.submit(ctx, txReq{inviter, c.Addresses.IncentiveManager, nil, mustPack(c.contract.incentive, "generateReferralCode", code), gasSmall})
}

// UseReferralCode calls useReferralCode(code, invitee) from the invitee.
func (c *Chain) UseReferralCode(ctx context.Context, invitee Account, code common.Hash) (common.Hash, error) {
	return c.submit(ctx, txReq{invitee, c.Addresses.IncentiveManager, nil, mustPack(c.contract.incentive, "useReferralCode", code, invitee.Address), gasSmall})
}

// DeployWallet deploys a SmartWallet owned by owner (sent by owner) and returns the transaction
// hash and the wallet's address.
func (c *Chain) DeployWallet(ctx context.Context, owner Account) (common.Hash, common.Address, error) {
	return c.DeployWalletFor(ctx, owner, owner.Address)
}

// DeployWalletFor deploys, sent by from, a SmartWallet owned by owner: another wallet, for
// nested accounts.
func (c *Chain) DeployWalletFor(ctx context.Context, from Account, owner common.Address) (common.Hash, common.Address, error) {
	code, err := c.contract.creation("SmartWallet", owner)
	if err != nil {
		return common.Hash{}, common.Address{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	tx, err := c.sendLocked(ctx, from, nil, nil, code, gasWallet)
	if err != nil {
		return common.Hash{}, common.Address{}, err
	}
	return tx.Hash(), crypto.CreateAddress(from.Address, tx.Nonce()), nil
}

// Execute makes wallet call target with value (sent along with the transaction) and data.
func (c *Chain) Execute(ctx context.Context, owner Account, wallet, target common.Address, value *big.Int, data []byte, gas uint64) (common.Hash, error) {
	return c.submit(ctx, c.reqVia(owner, wallet, txReq{to: target, value: value, data: data, gas: gas}))
}

func (c *Chain) reqVia(owner Account, wallet common.Address, inner txReq) txReq {
	value := inner.value
	if value == nil {
		value = new(big.Int)
	}
	data := mustPack(c.contract.wallet, "execute", inner.to, value, inner.data)
	return txReq{owner, wallet, value, data, inner.gas + gasViaExtra}
}

// VerifyOrganizerVia makes the wallet verify itself as an organiser.
func (c *Chain) VerifyOrganizerVia(ctx context.Context, owner Account, wallet common.Address) (common.Hash, error) {
	return c.submit(ctx, c.reqVia(owner, wallet, c.reqVerify(Account{Address: wallet})))
}

// CreateEventVia makes the wallet (a verified organiser) create an event: the transaction's
// input is execute(...), so the event's values are only in the factory's state and logs.
func (c *Chain) CreateEventVia(ctx context.Context, owner Account, wallet common.Address, p EventParams) (common.Hash, error) {
	return c.submit(ctx, c.reqVia(owner, wallet, c.reqCreateEvent(Account{Address: wallet}, p)))
}

// VerifyOrganizerNested makes wallet inner, owned by wallet outer (owned by owner), verify
// itself: owner calls outer's execute, which calls inner's.
func (c *Chain) VerifyOrganizerNested(ctx context.Context, owner Account, outer, inner common.Address) (common.Hash, error) {
	return c.submit(ctx, c.reqVia(owner, outer, c.reqVia(Account{Address: outer}, inner, c.reqVerify(Account{Address: inner}))))
}

// CreateEventNested makes wallet inner (a verified organiser), owned by wallet outer (owned by
// owner), create an event: the transaction's top-level call is outer's execute of inner's, so
// its calldata does not call the factory.
func (c *Chain) CreateEventNested(ctx context.Context, owner Account, outer, inner common.Address, p EventParams) (common.Hash, error) {
	return c.submit(ctx, c.reqVia(owner, outer, c.reqVia(Account{Address: outer}, inner, c.reqCreateEvent(Account{Address: inner}, p))))
}

// SendETH sends plain value (no logs): filler for blocks that must differ.
func (c *Chain) SendETH(ctx context.Context, from Account, to common.Address, value *big.Int) (common.Hash, error) {
	return c.submit(ctx, txReq{from, to, value, nil, 21_000})
}

// EventDetails is EventFactory.getEventDetails.
type EventDetails struct {
	ID                uint64
	Organizer         common.Address
	TicketContract    common.Address
	POAPContract      common.Address
	IncentiveContract common.Address
	Name              string
	MetadataURI       string
	TicketPrice       *big.Int
	MaxTickets        uint64
	StartTime         uint64
	EndTime           uint64
	IsActive          bool
	CreatedAt         uint64
}

// EventDetails reads getEventDetails(eventID) at the latest block.
func (c *Chain) EventDetails(ctx context.Context, eventID uint64) (EventDetails, error) {
	res, err := c.call(ctx, c.contract.factory, c.Addresses.EventFactory, "getEventDetails", u(eventID))
	if err != nil {
		return EventDetails{}, err
	}
	type details struct {
		Id                *big.Int
		Organizer         common.Address
		TicketContract    common.Address
		PoapContract      common.Address
		IncentiveContract common.Address
		Name              string
		MetadataURI       string
		TicketPrice       *big.Int
		MaxTickets        *big.Int
		StartTime         *big.Int
		EndTime           *big.Int
		IsActive          bool
		CreatedAt         *big.Int
	}
	out, ok := abi.ConvertType(res[0], new(details)).(*details)
	if !ok || out.Id == nil {
		return EventDetails{}, fmt.Errorf("devchain: decode getEventDetails: unexpected %T", res[0])
	}
	return EventDetails{
		ID: out.Id.Uint64(), Organizer: out.Organizer, TicketContract: out.TicketContract,
		POAPContract: out.PoapContract, IncentiveContract: out.IncentiveContract, Name: out.Name,
		MetadataURI: out.MetadataURI, TicketPrice: out.TicketPrice, MaxTickets: out.MaxTickets.Uint64(),
		StartTime: out.StartTime.Uint64(), EndTime: out.EndTime.Uint64(), IsActive: out.IsActive,
		CreatedAt: out.CreatedAt.Uint64(),
	}, nil
}

// Created is what an EventCreated log says.
type Created struct {
	EventID        uint64
	Organizer      common.Address
	TicketContract common.Address
}

// CreatedEvent finds the EventCreated log in a receipt.
func (c *Chain) CreatedEvent(r *types.Receipt) (Created, error) {
	id := c.contract.factory.Events["EventCreated"].ID
	for _, l := range r.Logs {
		if l.Address == c.Addresses.EventFactory && len(l.Topics) == 4 && l.Topics[0] == id {
			return Created{
				EventID:        new(big.Int).SetBytes(l.Topics[1].Bytes()).Uint64(),
				Organizer:      common.BytesToAddress(l.Topics[2].Bytes()),
				TicketContract: common.BytesToAddress(l.Topics[3].Bytes()),
			}, nil
		}
	}
	return Created{}, fmt.Errorf("devchain: no EventCreated in %s", r.TxHash)
}

// MintedTokenIDs lists the token ids of the TicketMinted logs in a receipt, in log order.
func (c *Chain) MintedTokenIDs(r *types.Receipt) []uint64 {
	id := c.contract.ticket.Events["TicketMinted"].ID
	var out []uint64
	for _, l := range r.Logs {
		if len(l.Topics) == 4 && l.Topics[0] == id {
			out = append(out, new(big.Int).SetBytes(l.Topics[1].Bytes()).Uint64())
		}
	}
	return out
}

// ListingID finds the listing id of the TicketListed log in a receipt.
func (c *Chain) ListingID(r *types.Receipt) (common.Hash, error) {
	id := c.contract.market.Events["TicketListed"].ID
	for _, l := range r.Logs {
		if l.Address == c.Addresses.Marketplace && len(l.Topics) == 4 && l.Topics[0] == id {
			return l.Topics[1], nil
		}
	}
	return common.Hash{}, fmt.Errorf("devchain: no TicketListed in %s", r.TxHash)
}
