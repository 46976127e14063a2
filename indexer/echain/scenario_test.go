package echain

import (
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/params"

	"github.com/echain/echain-indexer/devchain"
	"github.com/echain/echain-indexer/indexer/echain/echaintest"
	"github.com/echain/echain-indexer/store/ddl"
)

func gwei(n int64) *big.Int { return new(big.Int).Mul(big.NewInt(n), big.NewInt(params.GWei)) }

func hexAddr(a common.Address) string { return strings.ToLower(a.Hex()) }

func hexHash(h common.Hash) string { return "0x" + common.Bytes2Hex(h[:]) }

// scenario is every Echain operation on a dev chain, with what the tests check afterwards.
type scenario struct {
	e1, e2, e3            devchain.Created
	price1                *big.Int
	l1, l2, l3            common.Hash // listings
	resalePrice           *big.Int
	wallet                common.Address
	uriFull, uriPartial   string
	uriImageOnly, uriGone string
	uriHang               string
	txType                map[common.Hash]string // expected transactionType per transaction
	noTx                  []common.Hash          // transactions that change no entity
	mintTransfer          common.Hash            // a purchase: its first log is the mint's Transfer
	mintTransferIndex     uint
	eventParams           map[uint64]devchain.EventParams
}

// runScenario drives the dev chain through every operation the mappings handle, a few per block.
func runScenario(x *harness) *scenario {
	t := x.t
	ctx := x.ctx
	dc := x.dc
	org, b1, b2, b3, b4, b5, b6 := dc.User(0), dc.User(1), dc.User(2), dc.User(3), dc.User(4), dc.User(5), dc.User(6)
	walletOwner, stranger := dc.User(7), dc.User(8)
	s := &scenario{txType: map[common.Hash]string{}, eventParams: map[uint64]devchain.EventParams{}}
	seed := int64(1)
	s.uriFull, _ = devchain.MetadataURIOfKind(seed, 0, devchain.MetaFull)
	s.uriPartial, _ = devchain.MetadataURIOfKind(seed, 0, devchain.MetaPartial)
	s.uriImageOnly, _ = devchain.MetadataURIOfKind(seed, 0, devchain.MetaImageOnly)
	s.uriGone, _ = devchain.MetadataURIOfKind(seed, 0, devchain.MetaNotFound)
	s.uriHang, _ = devchain.MetadataURIOfKind(seed, 0, devchain.MetaHang)
	now := dc.Head().Time
	expect := func(kind string) func(common.Hash, error) common.Hash {
		return func(h common.Hash, err error) common.Hash {
			t.Helper()
			x.send(h, err)
			if kind == "" {
				s.noTx = append(s.noTx, h)
			} else {
				s.txType[h] = kind
			}
			return h
		}
	}

	expect("other")(dc.VerifyOrganizer(ctx, org))
	x.mine()

	s.price1 = gwei(10_000_000) // 0.01 ether
	p1 := devchain.EventParams{Name: "Lagos Live", MetadataURI: s.uriFull, TicketPrice: s.price1, MaxTickets: 100, StartTime: now + 86400, EndTime: now + 90000}
	p2 := devchain.EventParams{Name: "Free Meetup", MetadataURI: s.uriImageOnly, TicketPrice: new(big.Int), MaxTickets: 50, StartTime: now + 1000, EndTime: now + 5000}
	c1 := expect("event_created")(dc.CreateEvent(ctx, org, p1))
	c2 := expect("event_created")(dc.CreateEvent(ctx, org, p2))
	rs := x.mine(c1, c2)
	s.e1 = x.created(rs[0])
	s.e2 = x.created(rs[1])
	s.eventParams[s.e1.EventID], s.eventParams[s.e2.EventID] = p1, p2
	t1, t2 := s.e1.TicketContract, s.e2.TicketContract

	// Repeated verification, purchases and organiser mints in one block.
	expect("other")(dc.VerifyOrganizer(ctx, org))
	s.mintTransfer = expect("ticket_purchase")(dc.BuyTickets(ctx, b1, t1, 3))                                                              // e1 tokens 1-3
	expect("ticket_purchase")(dc.BuyTickets(ctx, b2, t2, 2))                                                                               // e2 tokens 1-2
	expect("ticket_purchase")(dc.MintTicket(ctx, org, t1, b3.Address, 12, 2))                                                              // e1 token 4
	expect("ticket_purchase")(dc.BatchMintTickets(ctx, org, t1, []common.Address{b4.Address, b5.Address}, []uint64{1, 2}, []uint64{0, 3})) // 5, 6
	s.mintTransferIndex = x.mine(s.mintTransfer)[0].Logs[0].Index

	expect("ticket_transfer")(dc.Transfer(ctx, b1, t1, b6.Address, 1))
	expect("ticket_check_in")(dc.UseTicket(ctx, org, t1, 2))
	expect("other")(dc.Restrict(ctx, org, t1, 3, true))
	x.mine()

	expect("ticket_burn")(dc.Burn(ctx, b6, t1, 1))
	expect("other")(dc.Restrict(ctx, org, t1, 3, false))
	list1 := expect("listing_created")(dc.List(ctx, b1, t1, 2, gwei(15_000_000)))
	rs = x.mine(list1)
	s.l1 = x.listingID(rs[0])

	s.resalePrice = gwei(15_000_000)
	expect("ticket_resale")(dc.BuyListing(ctx, b4, s.l1))
	x.mine()

	// Re-listing the resold ticket, then cancelling; another listing cancelled by the owner.
	list2 := expect("listing_created")(dc.List(ctx, b4, t1, 2, gwei(20_000_000)))
	list3 := expect("listing_created")(dc.List(ctx, b5, t1, 6, gwei(30_000_000)))
	rs = x.mine(list2, list3)
	s.l2 = x.listingID(rs[0])
	s.l3 = x.listingID(rs[1])
	expect("listing_cancelled")(dc.CancelListing(ctx, b4, s.l2))
	expect("listing_cancelled")(dc.EmergencyCancelListing(ctx, s.l3))
	x.mine()

	expect("event_updated")(dc.UpdateEvent(ctx, org, s.e1.EventID, "Lagos Live II", s.uriPartial))
	expect("event_status_changed")(dc.SetEventStatus(ctx, org, s.e1.EventID, false))
	x.mine()
	expect("event_status_changed")(dc.SetEventStatus(ctx, org, s.e1.EventID, false)) // same status again
	expect("event_status_changed")(dc.SetEventStatus(ctx, org, s.e2.EventID, true))
	expect("event_status_changed")(dc.EmergencyDeactivate(ctx, s.e2.EventID))
	expect("")(dc.SetPOAPContract(ctx, org, s.e2.EventID, x.dc.Addresses.POAPAttendance))
	x.mine()

	expect("attendance_minted")(dc.MintAttendance(ctx, b1, s.e1.EventID, b1.Address))
	expect("attendance_minted")(dc.MintAttendance(ctx, b2, 999, b2.Address)) // no such event
	expect("reward_minted")(dc.ClaimEarlyBird(ctx, b3, s.e1.EventID, t1))
	x.mine()
	code := common.HexToHash("0xc0de")
	expect("reward_minted")(dc.ClaimLoyaltyReward(ctx, b1, 100)) // event id 0
	expect("")(dc.GenerateReferralCode(ctx, b1, code))
	x.mine()
	expect("other")(dc.UseReferralCode(ctx, b2, code))
	x.mine()

	// An event created through a smart wallet: the transaction's input is execute(...).
	deploy, wallet, err := dc.DeployWallet(ctx, walletOwner)
	s.wallet = wallet
	expect("")(deploy, err)
	x.mine()
	expect("other")(dc.VerifyOrganizerVia(ctx, walletOwner, wallet))
	x.mine()
	p3 := devchain.EventParams{Name: "Wallet Fest", MetadataURI: s.uriGone, TicketPrice: gwei(1), MaxTickets: 10, StartTime: now + 7200, EndTime: now + 7300}
	c3 := expect("event_created")(dc.CreateEventVia(ctx, walletOwner, wallet, p3))
	rs = x.mine(c3)
	s.e3 = x.created(rs[0])
	s.eventParams[s.e3.EventID] = p3

	expect("other")(dc.UnverifyOrganizer(ctx, org.Address))
	expect("other")(dc.UnverifyOrganizer(ctx, stranger.Address)) // first seen unverified
	expect("event_updated")(dc.UpdateEvent(ctx, org, s.e2.EventID, "Free Meetup", s.uriHang))
	x.mine()
	return s
}

// TestMappingsMatchOracle indexes every operation into a real store and compares every entity
// with the oracle, then checks the values the rules single out.
func TestMappingsMatchOracle(t *testing.T) {
	x := newHarness(t, harnessOpts{archive: true})
	s := runScenario(x)
	x.index()
	st := x.compare()

	// Every transaction's type, and no Transaction for those that changed nothing.
	for h, want := range s.txType {
		e := st.Get("Transaction", hexHash(h))
		if e == nil {
			t.Errorf("transaction %s (%s): no Transaction", h, want)
			continue
		}
		if e["transactionType"] != want {
			t.Errorf("transaction %s: transactionType %v, want %s", h, e["transactionType"], want)
		}
	}
	for _, h := range s.noTx {
		if e := st.Get("Transaction", hexHash(h)); e != nil {
			t.Errorf("transaction %s changed no entity but has %v", h, e)
		}
	}
	e1, e3 := fmt.Sprint(s.e1.EventID), fmt.Sprint(s.e3.EventID)
	checks := []struct {
		typ, id, field string
		want           any
	}{
		// Transfer before TicketMinted: the mint's Transfer names the ticket it precedes.
		{"Transfer", fmt.Sprintf("%s-%d", hexHash(s.mintTransfer), s.mintTransferIndex), "ticket", e1 + "-1"},
		{"Transaction", hexHash(s.mintTransfer), "ticket", e1 + "-1"},
		{"Transaction", hexHash(s.mintTransfer), "event", e1},
		// Burn.
		{"Ticket", e1 + "-1", "burned", true},
		{"Ticket", e1 + "-1", "owner", "0x" + strings.Repeat("0", 40)},
		// Resale and re-listing: the sale price sticks, the ticket came back from escrow.
		{"Ticket", e1 + "-2", "purchasePrice", s.resalePrice.String()},
		{"Ticket", e1 + "-2", "owner", hexAddr(x.dc.User(4).Address)},
		{"Ticket", e1 + "-2", "isUsed", true},
		{"Ticket", e1 + "-3", "purchasePrice", s.price1.String()},
		{"Ticket", e1 + "-4", "ticketType", "tier-2"},
		{"Ticket", e1 + "-4", "seatNumber", "12"},
		{"Ticket", e1 + "-5", "ticketType", "standard"},
		{"Listing", hexHash(s.l1), "status", "sold"},
		{"Listing", hexHash(s.l1), "buyer", hexAddr(x.dc.User(4).Address)},
		{"Listing", hexHash(s.l2), "status", "cancelled"},
		{"Listing", hexHash(s.l2), "buyer", nil},
		{"Listing", hexHash(s.l3), "status", "cancelled"},
		// Event counters, status, update and metadata.
		{"Event", e1, "ticketsSold", "6"},
		{"Event", e1, "ticketsUsed", "1"},
		{"Event", e1, "revenue", new(big.Int).Mul(s.price1, big.NewInt(6)).String()},
		{"Event", e1, "status", "inactive"},
		{"Event", e1, "title", "Lagos Live II"},
		{"Event", e1, "metadataUri", s.uriPartial},
		{"Event", e1, "category", ""},
		{"Event", e1, "location", nil},
		{"Event", fmt.Sprint(s.e2.EventID), "status", "inactive"},
		{"Event", fmt.Sprint(s.e2.EventID), "description", ""}, // hanging document: defaults
		{"Event", fmt.Sprint(s.e2.EventID), "imageUrl", nil},
		// Through the smart wallet: values from the factory's state.
		{"Event", e3, "creator", hexAddr(s.wallet)},
		{"Event", e3, "startTime", fmt.Sprint(s.eventParams[s.e3.EventID].StartTime)},
		{"Event", e3, "endTime", fmt.Sprint(s.eventParams[s.e3.EventID].EndTime)},
		{"Event", e3, "metadataUri", s.uriGone},
		{"Event", e3, "description", ""}, // 404
		// Organizers: verified first seen by EventCreated, unverified later, first seen unverified.
		{"Organizer", hexAddr(x.dc.User(0).Address), "verified", false},
		{"Organizer", hexAddr(x.dc.User(0).Address), "eventsCreated", "2"},
		{"Organizer", hexAddr(s.wallet), "verified", true},
		{"Organizer", hexAddr(s.wallet), "eventsCreated", "1"},
		{"Organizer", hexAddr(x.dc.User(8).Address), "verified", false},
		{"Organizer", hexAddr(x.dc.User(8).Address), "eventsCreated", "0"},
		// Referral.
		{"Referral", hexAddr(x.dc.User(2).Address), "inviter", hexAddr(x.dc.User(1).Address)},
	}
	for _, c := range checks {
		e := st.Get(c.typ, c.id)
		if e == nil {
			t.Errorf("%s %s: missing", c.typ, c.id)
			continue
		}
		if e[c.field] != c.want {
			t.Errorf("%s %s %s = %#v, want %#v", c.typ, c.id, c.field, e[c.field], c.want)
		}
	}
	// POAP and reward for no event: the event is null, the id kept.
	var unknownPOAP, loyalty bool
	for _, a := range st["Attendance"] {
		if a["eventId"] == "999" {
			unknownPOAP = a["event"] == nil
		}
	}
	for _, r := range st["Reward"] {
		if r["rewardType"] == "loyalty" {
			loyalty = r["eventId"] == "0" && r["event"] == nil
		}
	}
	if !unknownPOAP || !loyalty {
		t.Errorf("attendance of event 999 with null event: %v; loyalty reward with event 0 and null event: %v", unknownPOAP, loyalty)
	}
	// The comparator itself: a changed field and a missing entity are both reported.
	mintID := fmt.Sprintf("%s-%d", hexHash(s.mintTransfer), s.mintTransferIndex)
	for _, q := range []struct {
		sql string
		arg string
	}{
		{`UPDATE ` + ddl.TableName(x.sch.Type("Ticket")) + ` SET owner = '\x01' WHERE id = $1 AND ` + ddl.Current(""), e1 + "-3"},
		{`DELETE FROM ` + ddl.TableName(x.sch.Type("Transfer")) + ` WHERE id = $1`, mintID},
	} {
		if tag, err := x.st.Pool().Exec(x.ctx, q.sql, q.arg); err != nil || tag.RowsAffected() != 1 {
			t.Fatalf("%s: %v (%v)", q.sql, err, tag)
		}
	}
	want, err := echaintest.Expected(x.ctx, x.dc.Client(), x.oracleConfig())
	if err != nil {
		t.Fatal(err)
	}
	diff := echaintest.Diff(want, x.state())
	if len(diff) != 2 || !strings.HasPrefix(diff[0], "Ticket "+e1+"-3 owner: want") || !strings.HasPrefix(diff[1], "Transfer "+mintID+": missing") {
		t.Errorf("comparator after corrupting two rows:\n%s", strings.Join(diff, "\n"))
	}
	t.Logf("entities compared: %d events, %d tickets, %d transfers, %d transactions, %d organizers, %d listings, %d attendances, %d rewards, %d referrals",
		want.Count("Event"), want.Count("Ticket"), want.Count("Transfer"), want.Count("Transaction"), want.Count("Organizer"),
		want.Count("Listing"), want.Count("Attendance"), want.Count("Reward"), want.Count("Referral"))

	// The first event's document was replaced by a partial one: its description is the new one.
	partial, _ := devchain.Metadata(s.uriPartial, devchain.MetadataConfig{})
	if got := st.Get("Event", e1)["description"]; partial.Description == "" || got != partial.Description {
		t.Errorf("event %s description %v, want the partial document's %q", e1, got, partial.Description)
	}
}
