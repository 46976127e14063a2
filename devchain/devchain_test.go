package devchain

import (
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/rawdb"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/echain/echain-indexer/abis"
	"github.com/echain/echain-indexer/internal/testwait"
)

// testLogger sends warnings and errors to the test log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func startChain(t testing.TB, cfg Config) *Chain {
	t.Helper()
	c, err := Start(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return c
}

func dial(t testing.TB, url string) *ethclient.Client {
	t.Helper()
	cl, err := ethclient.DialContext(context.Background(), url)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// describer renders logs with the REAL Echain ABIs (what the indexer decodes with), so every
// assertion on our contracts' logs is also a compatibility check.
type describer struct {
	c    *Chain
	abis map[string]abi.ABI
}

func newDescriber(t testing.TB, c *Chain) describer {
	d := describer{c: c, abis: map[string]abi.ABI{}}
	for _, n := range abis.EchainNames() {
		d.abis[n] = must[abi.ABI](t)(abis.Echain(n))
	}
	return d
}

func (d describer) contractOf(a common.Address) string {
	switch a {
	case d.c.Addresses.EventFactory:
		return abis.EventFactory
	case d.c.Addresses.Marketplace:
		return abis.Marketplace
	case d.c.Addresses.POAPAttendance:
		return abis.POAPAttendance
	case d.c.Addresses.IncentiveManager:
		return abis.IncentiveManager
	}
	return abis.EventTicket // the clones
}

// describe renders one log as `Contract.Event(name=value, ...)` in the event's argument order.
func (d describer) describe(t testing.TB, l *types.Log) string {
	t.Helper()
	name := d.contractOf(l.Address)
	a := d.abis[name]
	ev, err := a.EventByID(l.Topics[0])
	if err != nil {
		t.Fatalf("log %d of %s: %v", l.Index, l.TxHash, err)
	}
	vals := map[string]any{}
	var indexed abi.Arguments
	for _, in := range ev.Inputs {
		if in.Indexed {
			indexed = append(indexed, in)
		}
	}
	if err := abi.ParseTopicsIntoMap(vals, indexed, l.Topics[1:]); err != nil {
		t.Fatalf("topics of %s: %v", ev.Name, err)
	}
	if err := a.UnpackIntoMap(vals, ev.Name, l.Data); err != nil {
		t.Fatalf("data of %s: %v", ev.Name, err)
	}
	parts := make([]string, len(ev.Inputs))
	for i, in := range ev.Inputs {
		parts[i] = in.Name + "=" + fmtVal(vals[in.Name])
	}
	return fmt.Sprintf("%s.%s(%s)", name, ev.Name, strings.Join(parts, ","))
}

func (d describer) all(t testing.TB, r *types.Receipt) []string {
	out := make([]string, len(r.Logs))
	for i, l := range r.Logs {
		out[i] = d.describe(t, l)
	}
	return out
}

func fmtVal(v any) string {
	switch x := v.(type) {
	case common.Address:
		return strings.ToLower(x.Hex())
	case [32]byte:
		return common.Hash(x).Hex()
	case *big.Int:
		return x.String()
	default:
		return fmt.Sprint(x)
	}
}

func addr(a common.Address) string { return strings.ToLower(a.Hex()) }

const zero = "0x0000000000000000000000000000000000000000"

func checkLogs(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s logs:\n got  %s\n want %s", what, strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}
}

func TestStartServesHTTPAndWebSocket(t *testing.T) {
	ctx := context.Background()
	c := startChain(t, Config{})
	for _, url := range []string{c.HTTPURL, c.WSURL} {
		cl := dial(t, url)
		id, err := cl.ChainID(ctx)
		if err != nil || id.Int64() != ChainID {
			t.Fatalf("%s: chain id %v, %v", url, id, err)
		}
		for name, a := range map[string]common.Address{"factory": c.Addresses.EventFactory, "template": c.Addresses.EventTicketTemplate,
			"marketplace": c.Addresses.Marketplace, "poap": c.Addresses.POAPAttendance, "incentive": c.Addresses.IncentiveManager} {
			code, err := cl.CodeAt(ctx, a, new(big.Int).SetUint64(c.Addresses.StartBlock))
			if err != nil || len(code) == 0 {
				t.Errorf("%s: no %s code at %s in the start block: %v", url, name, a, err)
			}
		}
		bal, err := cl.BalanceAt(ctx, c.User(len(c.Users())-1).Address, nil)
		if err != nil || bal.Cmp(big.NewInt(1e18)) < 0 {
			t.Errorf("%s: last user balance %v, %v", url, bal, err)
		}
	}
	if !strings.HasPrefix(c.HTTPURL, "http://127.0.0.1:") || !strings.HasPrefix(c.WSURL, "ws://127.0.0.1:") {
		t.Errorf("urls %s %s", c.HTTPURL, c.WSURL)
	}

	// Separate ports work too, and the same seed gives the same accounts.
	c2 := startChain(t, Config{HTTPPort: 0, WSPort: freePort(t)})
	if c2.HTTPURL[len("http"):] == c2.WSURL[len("ws"):] {
		t.Errorf("expected separate HTTP and WS ports: %s %s", c2.HTTPURL, c2.WSURL)
	}
	if c2.User(3).Address != c.User(3).Address || c2.Addresses != c.Addresses {
		t.Error("same seed, different accounts or addresses")
	}
	c3 := startChain(t, Config{Seed: 7, MetadataAddr: "off"})
	if c3.User(3).Address == c.User(3).Address || c3.MetadataGateway != "" {
		t.Error("seed 7 gave seed 1's accounts, or the metadata server ran though off")
	}
	if _, err := Start(ctx, Config{HTTPPort: portOf(t, c.HTTPURL)}, testLogger(t)); err == nil {
		t.Error("a busy port should fail Start")
	}
}

func TestNewHeadsOverWebSocket(t *testing.T) {
	ctx := testwait.Context(t)
	c := startChain(t, Config{})
	ws := dial(t, c.WSURL)
	heads := make(chan *types.Header, 16)
	sub, err := ws.SubscribeNewHead(ctx, heads)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	var want []common.Hash
	for i := 0; i < 3; i++ {
		want = append(want, must[common.Hash](t)(c.Commit()))
	}
	for i, w := range want {
		select {
		case h := <-heads:
			if h.Hash() != w {
				t.Errorf("head %d: %s, want %s", i, h.Hash(), w)
			}
		case err := <-sub.Err():
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatal("no head")
		}
	}
}

// Every operation emits the logs of SPEC.md, in its order, with the arguments it was given.
func TestOperationsEmitSpecLogs(t *testing.T) {
	ctx := context.Background()
	c := startChain(t, Config{})
	d := newDescriber(t, c)
	hc := dial(t, c.HTTPURL)
	org, alice, bob, carol := c.User(0), c.User(1), c.User(2), c.User(3)
	mine := func(hashes ...common.Hash) []*types.Receipt {
		t.Helper()
		rs, err := c.Mine(ctx, hashes...)
		if err != nil {
			t.Fatal(err)
		}
		// The receipts over JSON-RPC are the same.
		for _, r := range rs {
			hr, err := hc.TransactionReceipt(ctx, r.TxHash)
			if err != nil || len(hr.Logs) != len(r.Logs) || hr.BlockHash != r.BlockHash {
				t.Fatalf("receipt over HTTP: %v", err)
			}
		}
		return rs
	}
	send := must[common.Hash](t)
	mustFail := func(what, reason string, h common.Hash, err error) {
		t.Helper()
		if err == nil {
			_, err = c.Mine(ctx, h)
		}
		if err == nil || !strings.Contains(err.Error(), reason) {
			t.Errorf("%s: error %v, want %s", what, err, reason)
		}
	}

	// Organisers: unverified organisers cannot create events.
	p := EventParams{Name: "Lagos Jazz Night", MetadataURI: MetadataURI(1, 1), TicketPrice: big.NewInt(1e15), MaxTickets: 50, StartTime: 2_000_000_000, EndTime: 2_000_007_200}
	h, err := c.CreateEvent(ctx, org, p)
	mustFail("create unverified", "NotVerifiedOrganizer", h, err)
	r := mine(send(c.VerifyOrganizer(ctx, org)))[0]
	checkLogs(t, "verify", d.all(t, r), []string{"EventFactory.OrganizerVerified(organizer=" + addr(org.Address) + ")"})

	// createEvent: the clone's OwnershipTransferred first, then EventCreated.
	r = mine(send(c.CreateEvent(ctx, org, p)))[0]
	created := must[Created](t)(c.CreatedEvent(r))
	clone := created.TicketContract
	checkLogs(t, "createEvent", d.all(t, r), []string{
		"EventTicket.OwnershipTransferred(previousOwner=" + zero + ",newOwner=" + addr(org.Address) + ")",
		fmt.Sprintf("EventFactory.EventCreated(eventId=1,organizer=%s,ticketContract=%s,name=Lagos Jazz Night,ticketPrice=1000000000000000,maxTickets=50)", addr(org.Address), addr(clone)),
	})
	if r.Logs[0].Address != clone || created.EventID != 1 {
		t.Errorf("first log from %s, clone %s, event %d", r.Logs[0].Address, clone, created.EventID)
	}
	// The clone is an EIP-1167 proxy of the template.
	code := must[[]byte](t)(hc.CodeAt(ctx, clone, nil))
	if len(code) != 45 || !strings.Contains(common.Bytes2Hex(code), strings.ToLower(c.Addresses.EventTicketTemplate.Hex()[2:])) {
		t.Errorf("clone code %x", code)
	}
	det := must[EventDetails](t)(c.EventDetails(ctx, 1))
	if det.Name != p.Name || det.MetadataURI != p.MetadataURI || det.TicketPrice.Cmp(p.TicketPrice) != 0 || det.MaxTickets != p.MaxTickets ||
		det.StartTime != p.StartTime || det.EndTime != p.EndTime || det.Organizer != org.Address || det.TicketContract != clone || !det.IsActive ||
		det.CreatedAt != must[*types.Header](t)(hc.HeaderByHash(ctx, r.BlockHash)).Time {
		t.Errorf("getEventDetails %+v, created with %+v", det, p)
	}

	// purchaseTicket(3): per ticket Transfer(0, buyer) then TicketMinted(seat 0, tier 0).
	h, err = c.BuyTickets(ctx, alice, clone, 11)
	mustFail("buy 11", "InvalidQuantity", h, err)
	r = mine(send(c.BuyTickets(ctx, alice, clone, 3)))[0]
	var want []string
	for id := 1; id <= 3; id++ {
		want = append(want,
			fmt.Sprintf("EventTicket.Transfer(from=%s,to=%s,tokenId=%d)", zero, addr(alice.Address), id),
			fmt.Sprintf("EventTicket.TicketMinted(tokenId=%d,to=%s,eventId=1,seatNumber=0,tier=0)", id, addr(alice.Address)))
	}
	checkLogs(t, "purchaseTicket", d.all(t, r), want)
	if fmt.Sprint(c.MintedTokenIDs(r)) != "[1 2 3]" {
		t.Errorf("minted ids %v", c.MintedTokenIDs(r))
	}

	// Organiser mints carry seat and tier; only the organiser may mint.
	h, err = c.MintTicket(ctx, alice, clone, bob.Address, 1, 1)
	mustFail("mint by non-organiser", "NotOrganizer", h, err)
	rs := mine(send(c.MintTicket(ctx, org, clone, bob.Address, 12, 2)),
		send(c.BatchMintTickets(ctx, org, clone, []common.Address{bob.Address, carol.Address}, []uint64{13, 14}, []uint64{1, 3})))
	checkLogs(t, "mintTicket", d.all(t, rs[0]), []string{
		fmt.Sprintf("EventTicket.Transfer(from=%s,to=%s,tokenId=4)", zero, addr(bob.Address)),
		fmt.Sprintf("EventTicket.TicketMinted(tokenId=4,to=%s,eventId=1,seatNumber=12,tier=2)", addr(bob.Address)),
	})
	checkLogs(t, "batchMintTickets", d.all(t, rs[1]), []string{
		fmt.Sprintf("EventTicket.Transfer(from=%s,to=%s,tokenId=5)", zero, addr(bob.Address)),
		fmt.Sprintf("EventTicket.TicketMinted(tokenId=5,to=%s,eventId=1,seatNumber=13,tier=1)", addr(bob.Address)),
		fmt.Sprintf("EventTicket.Transfer(from=%s,to=%s,tokenId=6)", zero, addr(carol.Address)),
		fmt.Sprintf("EventTicket.TicketMinted(tokenId=6,to=%s,eventId=1,seatNumber=14,tier=3)", addr(carol.Address)),
	})

	// Transfer, check-in, restriction (which blocks transfers), burn.
	r = mine(send(c.Transfer(ctx, alice, clone, bob.Address, 1)))[0]
	checkLogs(t, "transfer", d.all(t, r), []string{fmt.Sprintf("EventTicket.Transfer(from=%s,to=%s,tokenId=1)", addr(alice.Address), addr(bob.Address))})
	r = mine(send(c.UseTicket(ctx, org, clone, 1)))[0]
	ts := must[*types.Header](t)(hc.HeaderByHash(ctx, r.BlockHash)).Time
	checkLogs(t, "useTicket", d.all(t, r), []string{fmt.Sprintf("EventTicket.TicketUsed(tokenId=1,holder=%s,timestamp=%d)", addr(bob.Address), ts)})
	h, err = c.UseTicket(ctx, org, clone, 1)
	mustFail("use twice", "TicketAlreadyUsed", h, err)
	r = mine(send(c.Restrict(ctx, org, clone, 2, true)))[0]
	checkLogs(t, "restrict", d.all(t, r), []string{"EventTicket.TicketTransferRestricted(tokenId=2,restricted=true)"})
	h, err = c.Transfer(ctx, alice, clone, bob.Address, 2)
	mustFail("restricted transfer", "TransferRestricted", h, err)
	h, err = c.List(ctx, alice, clone, 2, big.NewInt(1e15))
	mustFail("restricted listing", "TransferRestricted", h, err)
	r = mine(send(c.Restrict(ctx, org, clone, 2, false)))[0]
	checkLogs(t, "unrestrict", d.all(t, r), []string{"EventTicket.TicketTransferRestricted(tokenId=2,restricted=false)"})
	r = mine(send(c.Burn(ctx, carol, clone, 6)))[0]
	checkLogs(t, "burn", d.all(t, r), []string{fmt.Sprintf("EventTicket.Transfer(from=%s,to=%s,tokenId=6)", addr(carol.Address), zero)})

	// Marketplace: escrow Transfer then TicketListed; sale: Transfer to the buyer then TicketSold
	// with the fee; cancellations return the ticket then ListingCancelled.
	price := big.NewInt(40_000_000_000_000_000)
	r = mine(send(c.List(ctx, alice, clone, 2, price)))[0]
	lid := must[common.Hash](t)(c.ListingID(r))
	checkLogs(t, "listTicket", d.all(t, r), []string{
		fmt.Sprintf("EventTicket.Transfer(from=%s,to=%s,tokenId=2)", addr(alice.Address), addr(c.Addresses.Marketplace)),
		fmt.Sprintf("Marketplace.TicketListed(listingId=%s,ticketContract=%s,tokenId=2,seller=%s,price=%s)", lid.Hex(), addr(clone), addr(alice.Address), price),
	})
	sellerBefore := must[*big.Int](t)(hc.BalanceAt(ctx, alice.Address, nil))
	r = mine(send(c.BuyListing(ctx, carol, lid)))[0]
	fee := new(big.Int).Div(new(big.Int).Mul(price, big.NewInt(250)), big.NewInt(10_000))
	checkLogs(t, "buyTicket", d.all(t, r), []string{
		fmt.Sprintf("EventTicket.Transfer(from=%s,to=%s,tokenId=2)", addr(c.Addresses.Marketplace), addr(carol.Address)),
		fmt.Sprintf("Marketplace.TicketSold(listingId=%s,buyer=%s,seller=%s,price=%s,marketplaceFee=%s)", lid.Hex(), addr(carol.Address), addr(alice.Address), price, fee),
	})
	if got := new(big.Int).Sub(must[*big.Int](t)(hc.BalanceAt(ctx, alice.Address, nil)), sellerBefore); got.Cmp(new(big.Int).Sub(price, fee)) != 0 {
		t.Errorf("seller got %s, want price-fee", got)
	}
	h, err = c.BuyListing(ctx, bob, lid)
	mustFail("buy sold listing", "ListingNotActive", h, err)
	r = mine(send(c.List(ctx, alice, clone, 3, price)))[0]
	lid2 := must[common.Hash](t)(c.ListingID(r))
	r = mine(send(c.CancelListing(ctx, alice, lid2)))[0]
	checkLogs(t, "cancelListing", d.all(t, r), []string{
		fmt.Sprintf("EventTicket.Transfer(from=%s,to=%s,tokenId=3)", addr(c.Addresses.Marketplace), addr(alice.Address)),
		fmt.Sprintf("Marketplace.ListingCancelled(listingId=%s,seller=%s)", lid2.Hex(), addr(alice.Address)),
	})
	r = mine(send(c.List(ctx, bob, clone, 4, price)))[0]
	lid3 := must[common.Hash](t)(c.ListingID(r))
	h, err = c.CancelListing(ctx, alice, lid3)
	mustFail("cancel by non-seller", "NotSeller", h, err)
	r = mine(send(c.EmergencyCancelListing(ctx, lid3)))[0]
	checkLogs(t, "emergencyCancelListing", d.all(t, r), []string{
		fmt.Sprintf("EventTicket.Transfer(from=%s,to=%s,tokenId=4)", addr(c.Addresses.Marketplace), addr(bob.Address)),
		fmt.Sprintf("Marketplace.ListingCancelled(listingId=%s,seller=%s)", lid3.Hex(), addr(bob.Address)),
	})

	// Event updates and status changes; setPOAPContract/setIncentiveContract log nothing.
	r = mine(send(c.UpdateEvent(ctx, org, 1, "Lagos Jazz Night II", "ipfs://new")))[0]
	checkLogs(t, "updateEvent", d.all(t, r), []string{"EventFactory.EventUpdated(eventId=1,name=Lagos Jazz Night II,metadataURI=ipfs://new)"})
	rs = mine(send(c.SetEventStatus(ctx, org, 1, false)), send(c.SetPOAPContract(ctx, org, 1, c.Addresses.POAPAttendance)),
		send(c.SetIncentiveContract(ctx, org, 1, c.Addresses.IncentiveManager)))
	checkLogs(t, "setEventStatus", d.all(t, rs[0]), []string{"EventFactory.EventStatusChanged(eventId=1,isActive=false)"})
	if len(rs[1].Logs)+len(rs[2].Logs) != 0 {
		t.Errorf("setPOAPContract/setIncentiveContract logged %d", len(rs[1].Logs)+len(rs[2].Logs))
	}
	det = must[EventDetails](t)(c.EventDetails(ctx, 1))
	if det.Name != "Lagos Jazz Night II" || det.MetadataURI != "ipfs://new" || det.IsActive || det.POAPContract != c.Addresses.POAPAttendance ||
		det.IncentiveContract != c.Addresses.IncentiveManager || det.StartTime != p.StartTime {
		t.Errorf("after updates: %+v", det)
	}
	r = mine(send(c.SetEventStatus(ctx, org, 1, true)))[0]
	checkLogs(t, "reactivate", d.all(t, r), []string{"EventFactory.EventStatusChanged(eventId=1,isActive=true)"})
	h, err = c.EmergencyDeactivate(ctx, 1)
	r = mine(send(h, err))[0]
	checkLogs(t, "emergencyDeactivateEvent", d.all(t, r), []string{"EventFactory.EventStatusChanged(eventId=1,isActive=false)"})

	// Attendance (soulbound, owner-signed), rewards and referrals.
	r = mine(send(c.MintAttendance(ctx, bob, 1, bob.Address)))[0]
	checkLogs(t, "mintAttendance", d.all(t, r), []string{
		fmt.Sprintf("POAPAttendance.Transfer(from=%s,to=%s,tokenId=1)", zero, addr(bob.Address)),
		fmt.Sprintf("POAPAttendance.AttendanceMinted(eventId=1,attendee=%s,tokenId=1)", addr(bob.Address)),
	})
	h, err = c.MintAttendance(ctx, bob, 1, bob.Address)
	mustFail("attend twice", "AlreadyClaimed", h, err)
	forged, err := c.reqAttendance(carol, 1, carol.Address, 0, c.Head().Time+60)
	if err != nil {
		t.Fatal(err)
	}
	forged.data[len(forged.data)-40] ^= 0xff // corrupt the signature's s
	h, err = c.submit(ctx, forged)
	mustFail("forged attendance", "InvalidSignature", h, err)
	h, err = c.submit(ctx, txReq{bob, c.Addresses.POAPAttendance, nil, mustPack(c.contract.poap, "transferFrom", bob.Address, carol.Address, u(1)), gasSmall})
	mustFail("POAP transfer", "SoulboundTransfer", h, err)
	r = mine(send(c.ClaimEarlyBird(ctx, bob, 1, clone)))[0]
	checkLogs(t, "claimEarlyBird", d.all(t, r), []string{
		fmt.Sprintf("IncentiveManager.Transfer(from=%s,to=%s,tokenId=1)", zero, addr(bob.Address)),
		fmt.Sprintf("IncentiveManager.RewardMinted(rewardId=1,user=%s,rewardType=early_bird,eventId=1)", addr(bob.Address)),
	})
	h, err = c.ClaimEarlyBird(ctx, org, 1, clone)
	mustFail("early bird without ticket", "NoTicket", h, err)
	r = mine(send(c.ClaimLoyaltyReward(ctx, bob, 100)))[0]
	checkLogs(t, "claimLoyaltyReward", d.all(t, r), []string{
		fmt.Sprintf("IncentiveManager.Transfer(from=%s,to=%s,tokenId=2)", zero, addr(bob.Address)),
		fmt.Sprintf("IncentiveManager.RewardMinted(rewardId=2,user=%s,rewardType=loyalty,eventId=0)", addr(bob.Address)),
	})
	h, err = c.ClaimLoyaltyReward(ctx, bob, 100)
	mustFail("loyalty without points", "NotEnoughPoints", h, err)
	code32 := common.HexToHash("0xc0de")
	r = mine(send(c.GenerateReferralCode(ctx, alice, code32)))[0]
	checkLogs(t, "generateReferralCode", d.all(t, r), []string{fmt.Sprintf("IncentiveManager.ReferralCodeGenerated(code=%s,inviter=%s)", code32.Hex(), addr(alice.Address))})
	r = mine(send(c.UseReferralCode(ctx, carol, code32)))[0]
	checkLogs(t, "useReferralCode", d.all(t, r), []string{fmt.Sprintf("IncentiveManager.ReferralUsed(invitee=%s,inviter=%s)", addr(carol.Address), addr(alice.Address))})
	h, err = c.UseReferralCode(ctx, carol, code32)
	mustFail("second referral", "InvalidReferral", h, err)

	// Unverification.
	r = mine(send(c.UnverifyOrganizer(ctx, org.Address)))[0]
	checkLogs(t, "unverify", d.all(t, r), []string{"EventFactory.OrganizerUnverified(organizer=" + addr(org.Address) + ")"})
	h, err = c.CreateEvent(ctx, org, p)
	mustFail("create after unverify", "NotVerifiedOrganizer", h, err)
}

// An event created through a smart wallet: the transaction's input is the wallet's execute, not
// createEvent, and the factory's state and logs carry the values.
func TestCreateEventThroughSmartWallet(t *testing.T) {
	ctx := context.Background()
	c := startChain(t, Config{})
	d := newDescriber(t, c)
	hc := dial(t, c.HTTPURL)
	owner := c.User(5)
	hDeploy, wallet, err := c.DeployWallet(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := c.Mine(ctx, hDeploy)
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].ContractAddress != wallet {
		t.Fatalf("wallet at %s, predicted %s", rs[0].ContractAddress, wallet)
	}
	r := must[[]*types.Receipt](t)(c.Mine(ctx, must[common.Hash](t)(c.VerifyOrganizerVia(ctx, owner, wallet))))[0]
	checkLogs(t, "verify via wallet", d.all(t, r), []string{"EventFactory.OrganizerVerified(organizer=" + addr(wallet) + ")"})
	p := EventParams{Name: "Wallet Fest", MetadataURI: "ipfs://wallet", TicketPrice: big.NewInt(7), MaxTickets: 9, StartTime: 1_900_000_000, EndTime: 1_900_000_001}
	h := must[common.Hash](t)(c.CreateEventVia(ctx, owner, wallet, p))
	r = must[[]*types.Receipt](t)(c.Mine(ctx, h))[0]
	created := must[Created](t)(c.CreatedEvent(r))
	checkLogs(t, "create via wallet", d.all(t, r), []string{
		"EventTicket.OwnershipTransferred(previousOwner=" + zero + ",newOwner=" + addr(wallet) + ")",
		fmt.Sprintf("EventFactory.EventCreated(eventId=1,organizer=%s,ticketContract=%s,name=Wallet Fest,ticketPrice=7,maxTickets=9)", addr(wallet), addr(created.TicketContract)),
	})
	tx, _, err := hc.TransactionByHash(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	walletABI := must[abi.ABI](t)(func() (abi.ABI, error) { a, _, err := abis.Build(abis.SmartWallet); return a, err }())
	factoryABI := must[abi.ABI](t)(abis.Echain(abis.EventFactory))
	if *tx.To() != wallet || !strings.HasPrefix(common.Bytes2Hex(tx.Data()), common.Bytes2Hex(walletABI.Methods["execute"].ID)) ||
		strings.HasPrefix(common.Bytes2Hex(tx.Data()), common.Bytes2Hex(factoryABI.Methods["createEvent"].ID)) {
		t.Errorf("transaction to %s input %x...: want execute on the wallet", tx.To(), tx.Data()[:4])
	}
	det := must[EventDetails](t)(c.EventDetails(ctx, 1))
	if det.Organizer != wallet || det.MetadataURI != p.MetadataURI || det.StartTime != p.StartTime || det.EndTime != p.EndTime {
		t.Errorf("details %+v", det)
	}
	// Only the owner may use the wallet.
	if h, err := c.CreateEventVia(ctx, c.User(6), wallet, p); err == nil {
		if _, err := c.Mine(ctx, h); err == nil || !strings.Contains(err.Error(), "NotOwner") {
			t.Errorf("a stranger used the wallet: %v", err)
		}
	}
}

func TestReorgReplacesBlocks(t *testing.T) {
	ctx := testwait.Context(t)
	c := startChain(t, Config{MaxReorgDepth: 5})
	hc := dial(t, c.HTTPURL)
	ws := dial(t, c.WSURL)
	org := c.User(0)
	rs := must[[]*types.Receipt](t)(c.Mine(ctx, must[common.Hash](t)(c.VerifyOrganizer(ctx, org)),
		must[common.Hash](t)(c.CreateEvent(ctx, org, EventParams{Name: "R", TicketPrice: big.NewInt(1), MaxTickets: 1000, StartTime: 1, EndTime: 2}))))
	clone := must[Created](t)(c.CreatedEvent(rs[1])).TicketContract

	logs := make(chan types.Log, 256)
	sub, err := ws.SubscribeFilterLogs(ctx, ethFilter(clone), logs)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	var mined []common.Hash
	for i := 0; i < 4; i++ {
		var hs []common.Hash
		for j := 0; j < 3; j++ {
			hs = append(hs, must[common.Hash](t)(c.BuyTickets(ctx, c.User(1+j), clone, 1+j)))
		}
		must[[]*types.Receipt](t)(c.Mine(ctx, hs...))
		mined = append(mined, hs...)
	}
	old := c.Head()
	oldAt := must[*types.Header](t)(hc.HeaderByNumber(ctx, new(big.Int).Sub(old.Number, big.NewInt(1))))

	if _, err := c.Reorg(ctx, 6); err == nil {
		t.Error("reorg deeper than MaxReorgDepth accepted")
	}
	res, err := c.Reorg(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if res.OldHead != old.Number.Uint64() || res.Ancestor != res.OldHead-3 || res.NewHead != res.OldHead+1 {
		t.Errorf("reorg %+v", res)
	}
	newAt := must[*types.Header](t)(hc.HeaderByNumber(ctx, oldAt.Number))
	if newAt.Hash() == oldAt.Hash() {
		t.Errorf("block %d still %s after the reorg", oldAt.Number, oldAt.Hash())
	}
	anc := must[*types.Header](t)(hc.HeaderByNumber(ctx, new(big.Int).SetUint64(res.Ancestor)))
	if anc.Hash() != res.AncestorHash {
		t.Errorf("ancestor changed")
	}
	if got := must[*types.Header](t)(hc.HeaderByNumber(ctx, nil)); got.Hash() != res.NewHeadHash {
		t.Errorf("head %s, reorg says %s", got.Hash(), res.NewHeadHash)
	}
	if len(res.Moved)+len(res.Dropped) != 9 { // 3 blocks x 3 purchases; the fillers of no reorg yet
		t.Errorf("moved %d + dropped %d, want the 9 removed transactions", len(res.Moved), len(res.Dropped))
	}
	for _, h := range res.Moved {
		r, err := hc.TransactionReceipt(ctx, h)
		if err != nil || r.BlockNumber.Uint64() <= res.Ancestor {
			t.Errorf("moved %s: %v", h, err)
		} else if canon := must[*types.Header](t)(hc.HeaderByNumber(ctx, r.BlockNumber)); canon.Hash() != r.BlockHash {
			t.Errorf("moved %s is in a non-canonical block", h)
		}
	}
	for _, h := range res.Dropped {
		if _, err := hc.TransactionReceipt(ctx, h); err == nil {
			t.Errorf("dropped %s still has a receipt", h)
		}
	}
	// Subscribers are told which logs were removed.
	removed := 0
	deadline := testwait.After(t)
	for removed == 0 {
		select {
		case l := <-logs:
			if l.Removed {
				removed++
			}
		case err := <-sub.Err():
			t.Fatal(err)
		case <-deadline:
			t.Fatal("no removed log delivered over WebSocket")
		}
	}
	// The chain goes on after the reorg.
	must[[]*types.Receipt](t)(c.Mine(ctx, must[common.Hash](t)(c.BuyTickets(ctx, c.User(4), clone, 2))))
}

// TestFinalityStaysBelowReorgs: the simulated beacon finalizes every 32nd block as it seals it,
// and geth's freezer moves finalized blocks where a reorg cannot replace them. The dev chain keeps
// its finalized block MaxReorgDepth+1 below the head, so a reorg of the full depth right after
// an epoch boundary works, and eth_getBlockByNumber("finalized") agrees.
func TestFinalityStaysBelowReorgs(t *testing.T) {
	ctx := testwait.Context(t)
	const depth = 5
	c := startChain(t, Config{MaxReorgDepth: depth})
	hc := dial(t, c.HTTPURL)
	check := func(when string) {
		t.Helper()
		head := c.Head().Number.Uint64()
		fin, err := hc.HeaderByNumber(ctx, big.NewInt(int64(rpc.FinalizedBlockNumber)))
		if err != nil {
			t.Fatalf("%s: finalized: %v", when, err)
		}
		if want := max(head, depth+1) - depth - 1; fin.Number.Uint64() != want {
			t.Errorf("%s: finalized block %d at head %d, want %d", when, fin.Number, head, want)
		}
		// What the freezer reads.
		if got := rawdb.ReadFinalizedBlockHash(c.eth.ChainDb()); got != fin.Hash() {
			t.Errorf("%s: the database's finalized hash %s, the node says %s", when, got, fin.Hash())
		}
	}
	must[common.Hash](t)(c.Commit())
	check("young chain")                // genesis
	for c.Head().Number.Uint64() < 64 { // an epoch boundary: the beacon finalized block 64
		must[common.Hash](t)(c.Commit())
	}
	check("at block 64")
	res, err := c.Reorg(ctx, depth)
	if err != nil {
		t.Fatal(err)
	}
	if res.Ancestor != 64-depth {
		t.Errorf("reorg %+v", res)
	}
	check("after the reorg")
}

func TestMetadataServer(t *testing.T) {
	ctx := context.Background()
	cfg := MetadataConfig{SlowDelay: 150 * time.Millisecond, HangDelay: 3 * time.Second}
	c := startChain(t, Config{Metadata: cfg})
	if !strings.HasSuffix(c.MetadataGateway, "/ipfs/") {
		t.Fatalf("gateway %q", c.MetadataGateway)
	}
	for k := MetadataKind(0); k < metaKinds; k++ {
		uri, _ := MetadataURIOfKind(1, 0, k)
		doc, ok := Metadata(uri, cfg)
		if !ok || doc.Kind != k {
			t.Fatalf("%s: %v %v", uri, ok, doc.Kind)
		}
		// Only the hang has a limit: 300 ms against its 3 s; the others answer when they do.
		rctx, cancel := context.WithCancel(ctx)
		if k == MetaHang {
			rctx, cancel = context.WithTimeout(ctx, 300*time.Millisecond)
		}
		start := time.Now()
		status, body, err := get(rctx, c.MetadataGateway+strings.TrimPrefix(uri, "ipfs://"))
		cancel()
		if k == MetaHang {
			if err == nil {
				t.Errorf("hang answered within 300ms")
			}
			continue
		}
		if err != nil || status != doc.Status || string(body) != string(doc.Body) {
			t.Errorf("%s: %d %q %v, want %d %q", k, status, body, err, doc.Status, doc.Body)
		}
		if k == MetaSlow && time.Since(start) < cfg.SlowDelay {
			t.Errorf("slow answered in %v", time.Since(start))
		}
		if doc.Usable() != (k == MetaFull || k == MetaImageOnly || k == MetaPartial || k == MetaBothImages || k == MetaSlow) {
			t.Errorf("%s usable %v", k, doc.Usable())
		}
	}
	full, _ := Metadata(must[string](t)(func() (string, error) { u, _ := MetadataURIOfKind(1, 0, MetaFull); return u, nil }()), cfg)
	img, _ := Metadata(must[string](t)(func() (string, error) { u, _ := MetadataURIOfKind(1, 0, MetaImageOnly); return u, nil }()), cfg)
	part, _ := Metadata(must[string](t)(func() (string, error) { u, _ := MetadataURIOfKind(1, 0, MetaPartial); return u, nil }()), cfg)
	if full.Category == "" || full.Location == nil || full.ImageURL == nil || !strings.Contains(string(full.Body), `"imageUrl"`) {
		t.Errorf("full %+v", full)
	}
	if img.ImageURL == nil || strings.Contains(string(img.Body), `"imageUrl"`) || !strings.Contains(string(img.Body), `"image"`) {
		t.Errorf("image-only %+v", img)
	}
	if part.Description == "" || part.Category != "" || part.Location != nil || part.ImageURL != nil {
		t.Errorf("partial %+v", part)
	}
	if _, ok := Metadata("ar://x", cfg); ok {
		t.Error("ar:// served")
	}
	// The kinds are spread over the sequence the traffic uses.
	seen := map[MetadataKind]int{}
	for n := uint64(0); n < 400; n++ {
		d, _ := Metadata(MetadataURI(1, n), cfg)
		seen[d.Kind]++
	}
	if len(seen) != int(metaKinds) || seen[MetaFull] < 150 {
		t.Errorf("kinds over 400 URIs: %v", seen)
	}
}

func TestArchiveKeepsOldState(t *testing.T) {
	ctx := context.Background()
	for _, archive := range []bool{false, true} {
		c := startChain(t, Config{Archive: archive})
		org := c.User(0)
		rs := must[[]*types.Receipt](t)(c.Mine(ctx, must[common.Hash](t)(c.VerifyOrganizer(ctx, org)),
			must[common.Hash](t)(c.CreateEvent(ctx, org, EventParams{Name: "Old", TicketPrice: big.NewInt(1), MaxTickets: 5, StartTime: 1, EndTime: 2}))))
		for i := 0; i < 140; i++ {
			must[common.Hash](t)(c.Commit())
		}
		cl := dial(t, c.HTTPURL)
		factory := must[abi.ABI](t)(abis.Echain(abis.EventFactory))
		data, _ := factory.Pack("getEventDetails", big.NewInt(1))
		_, err := cl.CallContract(ctx, ethCall(c.Addresses.EventFactory, data), rs[1].BlockNumber)
		if archive && err != nil {
			t.Errorf("archive: call at block %d: %v", rs[1].BlockNumber, err)
		}
		if !archive && (err == nil || !strings.Contains(err.Error(), "historical state")) {
			t.Errorf("pruned: call at block %d gave %v, want historical state not available", rs[1].BlockNumber, err)
		}
	}
}
