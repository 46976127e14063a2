package abis

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common/hexutil"
)

// tsvPath is the reference table of topic0 hashes and selectors (where it came from:
// testdata/README.md).
const tsvPath = "testdata/topics_and_selectors.tsv"

// reference maps contract -> canonical signature -> topic0 / selector (lowercase hex).
type reference struct {
	events, functions map[string]map[string]string
}

func loadReference(t *testing.T) reference {
	t.Helper()
	f, err := os.Open(tsvPath)
	if err != nil {
		t.Fatalf("open reference table: %v", err)
	}
	defer f.Close()
	ref := reference{events: map[string]map[string]string{}, functions: map[string]map[string]string{}}
	sc := bufio.NewScanner(f)
	header := true
	for sc.Scan() {
		if header {
			header = false
			continue
		}
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) < 4 {
			t.Fatalf("bad reference line %q", sc.Text())
		}
		m := ref.functions
		if cols[1] == "event" {
			m = ref.events
		}
		if m[cols[0]] == nil {
			m[cols[0]] = map[string]string{}
		}
		m[cols[0]][cols[3]] = strings.ToLower(cols[2])
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return ref
}

var echainContracts = []string{EventFactory, EventTicket, Marketplace, POAPAttendance, IncentiveManager}

// The functions the dev chain sends or calls; each must have the reference selector in both sets.
var devchainCalls = map[string][]string{
	EventFactory: {"createEvent", "selfVerifyOrganizer", "unverifyOrganizer", "updateEvent", "setEventStatus",
		"emergencyDeactivateEvent", "setPOAPContract", "setIncentiveContract", "getEventDetails", "events",
		"eventCount", "isVerifiedOrganizer", "owner"},
	EventTicket: {"initialize", "purchaseTicket", "mintTicket", "batchMintTickets", "useTicket",
		"setTransferRestriction", "transferFrom", "burn", "approve", "setApprovalForAll", "ownerOf",
		"getTicketInfo", "totalSold", "organizer", "eventId", "ticketPrice"},
	Marketplace:      {"listTicket", "buyTicket", "cancelListing", "emergencyCancelListing", "getListing", "listings"},
	POAPAttendance:   {"mintAttendance", "nonces", "hasClaimed", "getAttendance"},
	IncentiveManager: {"claimEarlyBird", "claimLoyaltyReward", "updateLoyaltyPoints", "generateReferralCode", "useReferralCode", "loyaltyPoints"},
}

func TestNames(t *testing.T) {
	if got, want := strings.Join(EchainNames(), ","), "EventFactory,EventTicket,IncentiveManager,Marketplace,POAPAttendance"; got != want {
		t.Errorf("EchainNames = %s, want %s", got, want)
	}
	if got, want := strings.Join(BuildNames(), ","), "EventFactory,EventTicket,IncentiveManager,Marketplace,POAPAttendance,SmartWallet"; got != want {
		t.Errorf("BuildNames = %s, want %s", got, want)
	}
	if _, err := Echain("Nope"); err == nil || !strings.Contains(err.Error(), "EventFactory") {
		t.Errorf("Echain(Nope) error %v should list the known names", err)
	}
	if _, _, err := Build("Nope"); err == nil {
		t.Error("Build(Nope) should fail")
	}
}

// Every event and function of the real ABIs hashes to the reference table, and the table has
// nothing the ABIs lack.
func TestEchainMatchesReference(t *testing.T) {
	ref := loadReference(t)
	for _, name := range echainContracts {
		a, err := Echain(name)
		if err != nil {
			t.Fatal(err)
		}
		checkEvents(t, "echain", name, a, ref)
		seen := map[string]bool{}
		for _, m := range a.Methods {
			seen[m.Sig] = true
			want, ok := ref.functions[name][m.Sig]
			if !ok {
				t.Errorf("echain %s.%s: not in the reference table", name, m.Sig)
			} else if got := hexutil.Encode(m.ID); got != want {
				t.Errorf("echain %s.%s: selector %s, reference %s", name, m.Sig, got, want)
			}
		}
		for sig := range ref.functions[name] {
			if !seen[sig] {
				t.Errorf("reference function %s.%s missing from the echain ABI", name, sig)
			}
		}
		if len(a.Events) != len(ref.events[name]) {
			t.Errorf("echain %s: %d events, reference %d", name, len(a.Events), len(ref.events[name]))
		}
	}
}

// Our compiled contracts carry every event of the real ones with identical signatures and
// indexed flags, and only functions the real ones have, with identical inputs, outputs and
// payability: a log or call of the dev chain decodes with the real ABI and vice versa.
func TestBuildCompatibleWithEchain(t *testing.T) {
	ref := loadReference(t)
	for _, name := range echainContracts {
		real, err := Echain(name)
		if err != nil {
			t.Fatal(err)
		}
		ours, code, err := Build(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(code) < 100 {
			t.Errorf("%s: bytecode of %d bytes", name, len(code))
		}
		checkEvents(t, "build", name, ours, ref)
		for en, re := range real.Events {
			oe, ok := ours.Events[en]
			if !ok {
				t.Errorf("build %s lacks event %s", name, re.Sig)
				continue
			}
			if oe.Sig != re.Sig || indexedFlags(oe.Inputs) != indexedFlags(re.Inputs) || oe.Anonymous != re.Anonymous {
				t.Errorf("build %s event %s (indexed %s) differs from echain %s (indexed %s)",
					name, oe.Sig, indexedFlags(oe.Inputs), re.Sig, indexedFlags(re.Inputs))
			}
			if argNames(oe.Inputs) != argNames(re.Inputs) {
				t.Errorf("build %s event %s argument names %s, echain %s", name, en, argNames(oe.Inputs), argNames(re.Inputs))
			}
		}
		for _, om := range ours.Methods {
			rm, ok := real.Methods[om.Name]
			if !ok || rm.Sig != om.Sig {
				t.Errorf("build %s.%s is not a function of the real contract", name, om.Sig)
				continue
			}
			if types(om.Outputs) != types(rm.Outputs) {
				t.Errorf("build %s.%s returns %s, echain %s", name, om.Sig, types(om.Outputs), types(rm.Outputs))
			}
			if om.IsPayable() != rm.IsPayable() || om.IsConstant() != rm.IsConstant() {
				t.Errorf("build %s.%s mutability %s, echain %s", name, om.Sig, om.StateMutability, rm.StateMutability)
			}
		}
		if types(ours.Constructor.Inputs) != types(real.Constructor.Inputs) {
			t.Errorf("build %s constructor %s, echain %s", name, types(ours.Constructor.Inputs), types(real.Constructor.Inputs))
		}
		for _, fn := range devchainCalls[name] {
			for set, a := range map[string]abi.ABI{"echain": real, "build": ours} {
				m, ok := a.Methods[fn]
				if !ok {
					t.Errorf("%s %s lacks %s, which the dev chain calls", set, name, fn)
					continue
				}
				if got, want := hexutil.Encode(m.ID), ref.functions[name][m.Sig]; got != want {
					t.Errorf("%s %s.%s selector %s, reference %s", set, name, m.Sig, got, want)
				}
			}
		}
	}
	w, code, err := Build(SmartWallet)
	if err != nil || len(code) == 0 {
		t.Fatalf("SmartWallet: %v", err)
	}
	if _, ok := w.Methods["execute"]; !ok {
		t.Error("SmartWallet lacks execute")
	}
}

func checkEvents(t *testing.T, set, name string, a abi.ABI, ref reference) {
	t.Helper()
	for _, e := range a.Events {
		want, ok := ref.events[name][e.Sig]
		if !ok {
			t.Errorf("%s %s event %s: not in the reference table", set, name, e.Sig)
		} else if got := e.ID.Hex(); got != want {
			t.Errorf("%s %s event %s: topic0 %s, reference %s", set, name, e.Sig, got, want)
		}
	}
}

func indexedFlags(args abi.Arguments) string {
	var b strings.Builder
	for _, a := range args {
		if a.Indexed {
			b.WriteByte('I')
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}

func types(args abi.Arguments) string {
	s := make([]string, len(args))
	for i, a := range args {
		s[i] = a.Type.String()
	}
	return strings.Join(s, ",")
}

func argNames(args abi.Arguments) string {
	s := make([]string, len(args))
	for i, a := range args {
		s[i] = a.Name
	}
	return strings.Join(s, ",")
}
