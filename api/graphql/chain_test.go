package graphql

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/echain/echain-indexer/api/graphql/internal/gqltest"
	"github.com/echain/echain-indexer/devchain"
	"github.com/echain/echain-indexer/indexer"
	"github.com/echain/echain-indexer/indexer/echain"
	"github.com/echain/echain-indexer/indexer/echain/echaintest"
	"github.com/echain/echain-indexer/indexer/source"
	"github.com/echain/echain-indexer/schema"
	"github.com/echain/echain-indexer/store"
	"github.com/echain/echain-indexer/store/storetest"
)

// indexedChain is a dev chain with Echain traffic (a reorg included), indexed into a store by
// the real follower and mappings.
type indexedChain struct {
	chain *devchain.Chain
	st    *store.Store
	sch   *schema.Schema
	cfg   echaintest.Config
	src   *source.Source // the follower's RPC source, open until the test ends
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func indexChain(t *testing.T, blocks int) *indexedChain {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := devchain.Start(ctx, devchain.Config{Archive: true, MetadataAddr: "off"}, quiet())
	if err != nil {
		t.Fatalf("dev chain: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	tr := devchain.NewTraffic(c, devchain.TrafficConfig{TxsPerBlock: 10, Seed: 5}, quiet())
	for i := 0; i < blocks; i++ {
		if i == blocks-6 {
			if _, err := tr.Reorg(ctx, 3); err != nil {
				t.Fatalf("reorg: %v", err)
			}
		}
		if _, err := tr.Step(ctx); err != nil {
			t.Fatalf("traffic: %v", err)
		}
	}
	sch, err := schema.Load()
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, storetest.NewDB(t), sch, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.EnsureIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	src, err := source.New(ctx, source.Config{Endpoints: []source.Endpoint{{Name: "dev", HTTPURL: c.HTTPURL, WSURL: c.WSURL}}, PollInterval: 100 * time.Millisecond}, quiet(), reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Close)
	a := c.Addresses
	h, err := echain.New(echain.Config{
		EventFactory:     echain.ContractConfig{Address: a.EventFactory, StartBlock: a.StartBlock},
		Marketplace:      echain.ContractConfig{Address: a.Marketplace, StartBlock: a.StartBlock},
		POAPAttendance:   echain.ContractConfig{Address: a.POAPAttendance, StartBlock: a.StartBlock},
		IncentiveManager: echain.ContractConfig{Address: a.IncentiveManager, StartBlock: a.StartBlock},
	}, src, quiet(), reg)
	if err != nil {
		t.Fatal(err)
	}
	fl, err := indexer.New(indexer.Config{FinalityDepth: 32, ProgressInterval: time.Second}, src, st, h, quiet(), reg)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fl.Run(runCtx) }()
	defer func() {
		stop()
		<-done
	}()
	head := c.Head()
	for {
		got, err := st.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got != nil && got.Hash == head.Hash() {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("indexer stopped: %v", err)
		case <-ctx.Done():
			t.Fatalf("indexer did not reach the head %d", head.Number)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return &indexedChain{chain: c, st: st, sch: sch, cfg: echaintest.Config{EventFactory: a.EventFactory, Marketplace: a.Marketplace,
		POAPAttendance: a.POAPAttendance, IncentiveManager: a.IncentiveManager, FromBlock: a.StartBlock}, src: src}
}

// The expected answers are built from the oracle's entities (echaintest.State), following The
// Graph's rules: children by their back reference, ordered by the sort field and then id.

func pick(e echaintest.Entity, fields ...string) map[string]any {
	out := map[string]any{}
	for _, f := range fields {
		out[f] = e[f]
	}
	return out
}

// related lists entities of typ whose field `back` is id (id "" = all), sorted by `by` (a
// BigInt field, or "" for id) then id, in direction desc.
func related(st echaintest.State, typ, back, id, by string, desc bool, filter func(echaintest.Entity) bool) []echaintest.Entity {
	var out []echaintest.Entity
	for _, e := range st[typ] {
		if (back == "" || e[back] == id) && (filter == nil || filter(e)) {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		c := 0
		if by != "" {
			a, _ := new(big.Int).SetString(fmt.Sprint(out[i][by]), 10)
			b, _ := new(big.Int).SetString(fmt.Sprint(out[j][by]), 10)
			c = a.Cmp(b)
		}
		if c == 0 {
			c = strings.Compare(out[i]["id"].(string), out[j]["id"].(string))
		}
		if desc {
			return c > 0
		}
		return c < 0
	})
	return out
}

func firstN(l []echaintest.Entity, skip, n int) []echaintest.Entity {
	if skip > len(l) {
		return nil
	}
	l = l[skip:]
	if len(l) > n {
		l = l[:n]
	}
	return l
}

func each(l []echaintest.Entity, f func(echaintest.Entity) map[string]any) []any {
	out := []any{}
	for _, e := range l {
		out = append(out, f(e))
	}
	return out
}

func sameJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	g, w := normalize(got), normalize(want)
	if !reflect.DeepEqual(g, w) {
		gb, _ := json.Marshal(g)
		wb, _ := json.Marshal(w)
		t.Fatalf("%s:\n got  %.3000s\n want %.3000s", what, gb, wb)
	}
}

const (
	qEventWithTickets = `query EventPage($id: ID!, $b: Block_height) {
  event(id: $id, block: $b) {
    id title creator status ticketPrice ticketsSold revenue startTime endTime maxTickets location imageUrl category description metadataUri
    organizer { id verified eventsCreated }
    tickets(first: 100, orderBy: tokenId) { id tokenId owner isUsed ticketType purchasePrice usedAt }
  }
}`
	qEventsPage = `query Events($skip: Int!) {
  active: events(first: 4, skip: $skip, orderBy: createdAt, orderDirection: desc, where: {status: "active"}) { id title ticketPrice ticketsSold createdAt }
  popular: events(first: 3, orderBy: ticketsSold, orderDirection: desc, where: {ticketsSold_gt: "0"}) { id ticketsSold }
}`
	qOwnerTickets = `query MyTickets($owner: Bytes!) {
  tickets(where: {owner: $owner}, orderBy: createdAt, orderDirection: desc) {
    id tokenId isUsed purchasePrice
    event { id title startTime status }
    transfers(orderBy: timestamp) { id from to timestamp transactionHash }
  }
}`
	qEventTickets = `query EventTickets($id: String!) {
  tickets(where: {event: $id}, first: 1000, orderBy: tokenId) { id owner tokenId burned }
}`
	qEventAnalytics = `query Analytics($id: ID!) {
  event(id: $id) {
    ticketsSold ticketsUsed revenue maxTickets
    transactions(orderBy: timestamp, orderDirection: desc, first: 50) { id from to value transactionType gasUsed gasPrice timestamp blockNumber }
    listings(orderBy: createdAt) { id status price seller buyer }
    attendances { id attendee }
  }
}`
)

func expectEventPage(st echaintest.State, id string) map[string]any {
	ev := st.Get(echaintest.TEvent, id)
	if ev == nil {
		return map[string]any{"event": nil}
	}
	out := pick(ev, "id", "title", "creator", "status", "ticketPrice", "ticketsSold", "revenue", "startTime", "endTime", "maxTickets",
		"location", "imageUrl", "category", "description", "metadataUri")
	out["organizer"] = pick(st.Get(echaintest.TOrganizer, ev["organizer"].(string)), "id", "verified", "eventsCreated")
	out["tickets"] = each(firstN(related(st, echaintest.TTicket, "event", id, "tokenId", false, nil), 0, 100), func(e echaintest.Entity) map[string]any {
		return pick(e, "id", "tokenId", "owner", "isUsed", "ticketType", "purchasePrice", "usedAt")
	})
	return map[string]any{"event": out}
}

// TestFrontendShapesMatchChain runs the frontend's query shapes against a store the real
// indexer built from a dev chain, and compares each answer with what the oracle computes from
// the chain; then reads earlier blocks (across a reorganisation) with time travel.
func TestFrontendShapesMatchChain(t *testing.T) {
	ic := indexChain(t, 45)
	ctx := context.Background()
	h, err := NewHandler(ic.st.Pool(), ic.sch, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want, err := echaintest.Expected(ctx, ic.chain.Client(), ic.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if want.Count(echaintest.TEvent) < 3 || want.Count(echaintest.TTicket) < 10 || want.Count(echaintest.TTransaction) < 10 {
		t.Fatalf("the traffic made too little to test: %d events, %d tickets", want.Count(echaintest.TEvent), want.Count(echaintest.TTicket))
	}
	t.Logf("chain head %d: %d events, %d tickets, %d transfers, %d transactions, %d listings, %d attendances", ic.chain.Head().Number,
		want.Count(echaintest.TEvent), want.Count(echaintest.TTicket), want.Count(echaintest.TTransfer), want.Count(echaintest.TTransaction),
		want.Count(echaintest.TListing), want.Count(echaintest.TAttendance))
	post := func(q string, vars map[string]any) map[string]any {
		t.Helper()
		r := gqltest.Post(t, h, q, vars)
		if len(r.Errors) > 0 {
			t.Fatalf("%s: %s", q[:40], r.Raw)
		}
		return r.Data
	}

	// 1. event page: every event, with its tickets
	for id := range want[echaintest.TEvent] {
		sameJSON(t, "event page "+id, post(qEventWithTickets, map[string]any{"id": id}), expectEventPage(want, id))
	}
	sameJSON(t, "missing event", post(qEventWithTickets, map[string]any{"id": "999999"}), map[string]any{"event": nil})

	// 2. events list pages
	for _, skip := range []int{0, 4, 100} {
		active := related(want, echaintest.TEvent, "", "", "createdAt", true, func(e echaintest.Entity) bool { return e["status"] == "active" })
		popular := related(want, echaintest.TEvent, "", "", "ticketsSold", true, func(e echaintest.Entity) bool { return e["ticketsSold"] != "0" })
		sameJSON(t, fmt.Sprintf("events page skip %d", skip), post(qEventsPage, map[string]any{"skip": skip}), map[string]any{
			"active": each(firstN(active, skip, 4), func(e echaintest.Entity) map[string]any {
				return pick(e, "id", "title", "ticketPrice", "ticketsSold", "createdAt")
			}),
			"popular": each(firstN(popular, 0, 3), func(e echaintest.Entity) map[string]any { return pick(e, "id", "ticketsSold") }),
		})
	}

	// 3. an owner's tickets, with their events and transfers
	owners := map[string]bool{}
	for _, tk := range want[echaintest.TTicket] {
		owners[tk["owner"].(string)] = true
	}
	n := 0
	for owner := range owners {
		if n++; n > 12 {
			break
		}
		tickets := related(want, echaintest.TTicket, "owner", owner, "createdAt", true, nil)
		sameJSON(t, "owner tickets "+owner, post(qOwnerTickets, map[string]any{"owner": owner}), map[string]any{
			"tickets": each(firstN(tickets, 0, 100), func(e echaintest.Entity) map[string]any {
				out := pick(e, "id", "tokenId", "isUsed", "purchasePrice")
				out["event"] = pick(want.Get(echaintest.TEvent, e["event"].(string)), "id", "title", "startTime", "status")
				out["transfers"] = each(firstN(related(want, echaintest.TTransfer, "ticket", e["id"].(string), "timestamp", false, nil), 0, 100),
					func(tr echaintest.Entity) map[string]any {
						return pick(tr, "id", "from", "to", "timestamp", "transactionHash")
					})
				return out
			}),
		})
	}

	// 4. tickets of an event; 5. an event's analytics with its transactions
	for id := range want[echaintest.TEvent] {
		sameJSON(t, "event tickets "+id, post(qEventTickets, map[string]any{"id": id}), map[string]any{
			"tickets": each(firstN(related(want, echaintest.TTicket, "event", id, "tokenId", false, nil), 0, 1000),
				func(e echaintest.Entity) map[string]any { return pick(e, "id", "owner", "tokenId", "burned") }),
		})
		ev := want.Get(echaintest.TEvent, id)
		analytics := pick(ev, "ticketsSold", "ticketsUsed", "revenue", "maxTickets")
		analytics["transactions"] = each(firstN(related(want, echaintest.TTransaction, "event", id, "timestamp", true, nil), 0, 50),
			func(e echaintest.Entity) map[string]any {
				return pick(e, "id", "from", "to", "value", "transactionType", "gasUsed", "gasPrice", "timestamp", "blockNumber")
			})
		analytics["listings"] = each(firstN(related(want, echaintest.TListing, "event", id, "createdAt", false, nil), 0, 100),
			func(e echaintest.Entity) map[string]any { return pick(e, "id", "status", "price", "seller", "buyer") })
		analytics["attendances"] = each(firstN(related(want, echaintest.TAttendance, "event", id, "", false, nil), 0, 100),
			func(e echaintest.Entity) map[string]any { return pick(e, "id", "attendee") })
		sameJSON(t, "analytics "+id, post(qEventAnalytics, map[string]any{"id": id}), map[string]any{"event": analytics})
	}

	// _meta names the indexed head
	head := ic.chain.Head()
	meta := post(`{ _meta { block { number hash parentHash timestamp } hasIndexingErrors } }`, nil)["_meta"].(map[string]any)
	sameJSON(t, "_meta", meta, map[string]any{"block": map[string]any{"number": head.Number.Int64(), "hash": head.Hash().Hex(),
		"parentHash": head.ParentHash.Hex(), "timestamp": head.Time}, "hasIndexingErrors": false})

	// Time travel: event pages as of earlier blocks, the reorganised ones included.
	for _, back := range []uint64{1, 3, 5, 8, 12} {
		b := head.Number.Uint64() - back
		cfg := ic.cfg
		cfg.ToBlock = b
		at, err := echaintest.Expected(ctx, ic.chain.Client(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		for id := range want[echaintest.TEvent] {
			sameJSON(t, fmt.Sprintf("event page %s at block %d", id, b),
				post(qEventWithTickets, map[string]any{"id": id, "b": map[string]any{"number": b}}), expectEventPage(at, id))
		}
		hdr, err := ic.chain.Client().HeaderByNumber(ctx, new(big.Int).SetUint64(b))
		if err != nil {
			t.Fatal(err)
		}
		ids := post(`query($b: Block_height) { _meta(block: $b) { block { number hash } } tickets(block: $b, first: 1000) { id } }`,
			map[string]any{"b": map[string]any{"hash": hdr.Hash().Hex()}})
		if got := len(ids["tickets"].([]any)); got != at.Count(echaintest.TTicket) {
			t.Fatalf("block %d by hash: %d tickets, want %d", b, got, at.Count(echaintest.TTicket))
		}
		sameJSON(t, "_meta at a hash", ids["_meta"], map[string]any{"block": map[string]any{"number": b, "hash": hdr.Hash().Hex()}})
	}
}

// TestBlockHashBelowWindow reads finalized blocks, whose hashes the store no longer keeps, by
// hash and names their hash in _meta: the API asks the node (through the indexer's RPC source)
// and checks the block is canonical here. Without a node it says why it cannot.
func TestBlockHashBelowWindow(t *testing.T) {
	ic := indexChain(t, 45)
	ctx := context.Background()
	h, err := NewHandler(ic.st.Pool(), ic.sch, Options{Chain: ic.src})
	if err != nil {
		t.Fatal(err)
	}
	noNode, err := NewHandler(ic.st.Pool(), ic.sch, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := ic.st.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	win, err := ic.st.Window(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Finalized < int64(ic.cfg.FromBlock)+3 || len(win) == 0 || win[0].Number <= st.Finalized-3 {
		t.Fatalf("the chain should have finalized blocks outside the window: finalized %d, window from %v, contracts from %d", st.Finalized, win, ic.cfg.FromBlock)
	}
	const q = `query($b: Block_height) { _meta(block: $b) { block { number hash parentHash timestamp } } tickets(block: $b, first: 1000) { id } }`
	for _, b := range []int64{st.Finalized, st.Finalized - 3, int64(ic.cfg.FromBlock) + 1} {
		hdr, err := ic.chain.Client().HeaderByNumber(ctx, big.NewInt(b))
		if err != nil {
			t.Fatal(err)
		}
		cfg := ic.cfg
		cfg.ToBlock = uint64(b)
		at, err := echaintest.Expected(ctx, ic.chain.Client(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		wantMeta := map[string]any{"block": map[string]any{"number": b, "hash": hdr.Hash().Hex(),
			"parentHash": hdr.ParentHash.Hex(), "timestamp": hdr.Time}}
		for _, spec := range []map[string]any{{"hash": hdr.Hash().Hex()}, {"number": b}, {"hash": hdr.Hash().Hex(), "number": b}} {
			// twice: the second answer comes from the cache
			for range 2 {
				r := gqltest.Post(t, h, q, map[string]any{"b": spec})
				if len(r.Errors) > 0 {
					t.Fatalf("block %v: %s", spec, r.Raw)
				}
				if got := len(r.Data["tickets"].([]any)); got != at.Count(echaintest.TTicket) {
					t.Fatalf("block %v: %d tickets, want %d", spec, got, at.Count(echaintest.TTicket))
				}
				sameJSON(t, fmt.Sprintf("_meta at %v", spec), r.Data["_meta"], wantMeta)
			}
		}
		r := gqltest.Post(t, noNode, q, map[string]any{"b": map[string]any{"hash": hdr.Hash().Hex()}})
		if c := r.ErrorCodes(); len(c) == 0 || c[0] != "BLOCK_HASH_UNKNOWN" || !strings.Contains(string(r.Raw), "no RPC endpoint configured") {
			t.Fatalf("block %d by hash without a node: want BLOCK_HASH_UNKNOWN saying no RPC is configured, got %s", b, r.Raw)
		}
	}
	// A hash no chain has, and one with the wrong number.
	unknown := "0x" + strings.Repeat("ab", 32)
	r := gqltest.Post(t, h, q, map[string]any{"b": map[string]any{"hash": unknown}})
	if c := r.ErrorCodes(); len(c) == 0 || c[0] != "BLOCK_HASH_UNKNOWN" || !strings.Contains(string(r.Raw), "no block with that hash found") {
		t.Fatalf("unknown hash: want graph-node's BLOCK_HASH_UNKNOWN text, got %s", r.Raw)
	}
	hdr, err := ic.chain.Client().HeaderByNumber(ctx, big.NewInt(st.Finalized-1))
	if err != nil {
		t.Fatal(err)
	}
	r = gqltest.Post(t, h, q, map[string]any{"b": map[string]any{"hash": hdr.Hash().Hex(), "number": st.Finalized}})
	if c := r.ErrorCodes(); len(c) == 0 || c[0] != "BAD_BLOCK" {
		t.Fatalf("hash of block %d given with number %d: want BAD_BLOCK, got %s", st.Finalized-1, st.Finalized, r.Raw)
	}
}
