package graphql

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/echain/echain-indexer/api/graphql/internal/gqltest"
	"github.com/echain/echain-indexer/schema"
	"github.com/echain/echain-indexer/store"
)

// synth is a synthetic Echain history written through the store's Batch/Commit/RevertTo, with
// the state after every canonical block kept in Go for the expected answers.
type synth struct {
	t      *testing.T
	sch    *schema.Schema
	st     *store.Store
	states map[int64]map[string]map[string]gqltest.Row // block -> type -> id -> row
	hashes map[int64]common.Hash
	head   int64
}

func blockHash(branch byte, n int64) common.Hash {
	var h common.Hash
	h[0] = branch
	h[1] = 0xbb
	copy(h[24:], big.NewInt(n).FillBytes(make([]byte, 8)))
	return h
}

func ownerAddr(n int) []byte {
	b := make([]byte, 20)
	b[0] = 0x0b
	b[19] = byte(n)
	return b
}

func newSynth(t *testing.T) *synth {
	sch, err := schema.Load()
	if err != nil {
		t.Fatal(err)
	}
	return &synth{t: t, sch: sch, st: gqltest.OpenStore(t, sch), states: map[int64]map[string]map[string]gqltest.Row{0: {}},
		hashes: map[int64]common.Hash{}}
}

func cloneState(s map[string]map[string]gqltest.Row) map[string]map[string]gqltest.Row {
	out := map[string]map[string]gqltest.Row{}
	for typ, m := range s {
		out[typ] = map[string]gqltest.Row{}
		for id, r := range m {
			out[typ][id] = r
		}
	}
	return out
}

func (s *synth) row(typ string, r gqltest.Row) []any {
	t := s.sch.Type(typ)
	out := make([]any, len(t.Columns))
	for i, c := range t.Columns {
		out[i] = r[c.Name]
	}
	return out
}

// apply commits block n of a branch; change makes the block's entity changes on a copy of the
// state at n-1.
func (s *synth) apply(ctx context.Context, branch byte, n int64, change func(n int64, set func(typ string, r gqltest.Row), get func(typ, id string) gqltest.Row)) {
	s.t.Helper()
	state := cloneState(s.states[n-1])
	ptr := store.BlockPtr{Number: n, Hash: blockHash(branch, n), ParentHash: s.hashes[n-1], Timestamp: 1_700_000_000 + n*2}
	b := s.st.NewBatch()
	b.StartBlock(ptr)
	set := func(typ string, r gqltest.Row) {
		b.Set(typ, s.row(typ, r))
		if state[typ] == nil {
			state[typ] = map[string]gqltest.Row{}
		}
		state[typ][r["id"].(string)] = r
	}
	get := func(typ, id string) gqltest.Row { return state[typ][id] }
	change(n, set, get)
	if err := s.st.Commit(ctx, b, store.Commit{Head: ptr, Window: []store.BlockPtr{ptr}}); err != nil {
		s.t.Fatalf("commit %d: %v", n, err)
	}
	s.states[n] = state
	s.hashes[n] = ptr.Hash
	s.head = n
}

func (s *synth) revertTo(ctx context.Context, n int64) {
	s.t.Helper()
	if err := s.st.RevertTo(ctx, store.BlockPtr{Number: n, Hash: s.hashes[n]}); err != nil {
		s.t.Fatalf("revert to %d: %v", n, err)
	}
	for b := n + 1; b <= s.head; b++ {
		delete(s.states, b)
		delete(s.hashes, b)
	}
	s.head = n
}

func bi(n int64) *big.Int { return big.NewInt(n) }

func ticketRow(ev string, tok int64, owner []byte, ts int64) gqltest.Row {
	return gqltest.Row{"id": ev + "-" + strconv.FormatInt(tok, 10), "event": ev, "contract": ownerAddr(200), "tokenId": bi(tok),
		"owner": owner, "originalOwner": owner, "seatNumber": bi(0), "tier": bi(0), "ticketType": "standard", "price": bi(1000),
		"purchasePrice": bi(1000), "isUsed": false, "usedAt": nil, "transferRestricted": false, "burned": false, "createdAt": bi(ts), "updatedAt": bi(ts)}
}

func eventRow(id, title string, sold, ts int64) gqltest.Row {
	return gqltest.Row{"id": id, "creator": ownerAddr(100), "organizer": "0x" + hex.EncodeToString(ownerAddr(100)), "title": title,
		"metadataUri": "ipfs://x", "description": "", "category": "", "location": nil, "imageUrl": nil, "ticketContract": ownerAddr(200),
		"startTime": bi(5), "endTime": bi(6), "maxTickets": bi(1000), "ticketPrice": bi(1000), "ticketsSold": bi(sold), "ticketsUsed": bi(0),
		"revenue": bi(sold * 1000), "status": "active", "createdAt": bi(ts), "createdAtBlock": bi(1), "updatedAt": bi(ts)}
}

// block makes one block of activity: `mints` tickets of event 1 minted (with their Transfer),
// ticket 1-1 moved to a new owner, the event's title naming the branch and block.
func block(branch byte, mints int) func(n int64, set func(string, gqltest.Row), get func(string, string) gqltest.Row) {
	return func(n int64, set func(string, gqltest.Row), get func(string, string) gqltest.Row) {
		ts := 1_700_000_000 + n*2
		var sold int64
		if ev := get("Event", "1"); ev != nil {
			sold = ev["ticketsSold"].(*big.Int).Int64()
		}
		for i := 0; i < mints; i++ {
			sold++
			tk := ticketRow("1", sold, ownerAddr(int(n)%5), ts)
			set("Ticket", tk)
			set("Transfer", gqltest.Row{"id": fmt.Sprintf("0x%02x%04d-%d", branch, n, i), "ticket": tk["id"], "from": make([]byte, 20), "to": tk["owner"],
				"transactionHash": blockHash(branch, n).Bytes(), "blockNumber": bi(n), "timestamp": bi(ts)})
		}
		if t1 := get("Ticket", "1-1"); t1 != nil {
			moved := gqltest.Row{}
			for k, v := range t1 {
				moved[k] = v
			}
			moved["owner"] = ownerAddr(10 + int(n))
			moved["updatedAt"] = bi(ts)
			set("Ticket", moved)
		}
		set("Event", eventRow("1", fmt.Sprintf("%c-%d", branch, n), sold, ts))
		if n == 1 {
			set("Organizer", gqltest.Row{"id": "0x" + hex.EncodeToString(ownerAddr(100)), "verified": true, "eventsCreated": bi(1), "updatedAt": bi(ts)})
		}
	}
}

const eventAtQuery = `query($b: Block_height) {
  event(id: "1", block: $b) { id title ticketsSold organizer { id } tickets(first: 1000, orderBy: tokenId) { id owner tokenId transfers { id blockNumber } } }
  _meta(block: $b) { block { number hash } }
}`

// expectEvent renders what eventAtQuery must answer at block n.
func (s *synth) expectEvent(n int64) map[string]any {
	st := s.states[n]
	ev := st["Event"]["1"]
	var tickets []any
	var ids []string
	for id, r := range st["Ticket"] {
		if r["event"] == "1" {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool {
		a, b := st["Ticket"][ids[i]]["tokenId"].(*big.Int), st["Ticket"][ids[j]]["tokenId"].(*big.Int)
		return a.Cmp(b) < 0
	})
	for _, id := range ids {
		r := st["Ticket"][id]
		var trs []string
		for tid, tr := range st["Transfer"] {
			if tr["ticket"] == id {
				trs = append(trs, tid)
			}
		}
		sort.Strings(trs)
		transfers := []any{}
		for _, tid := range trs {
			transfers = append(transfers, map[string]any{"id": tid, "blockNumber": st["Transfer"][tid]["blockNumber"].(*big.Int).String()})
		}
		tickets = append(tickets, map[string]any{"id": id, "owner": "0x" + hex.EncodeToString(r["owner"].([]byte)),
			"tokenId": r["tokenId"].(*big.Int).String(), "transfers": transfers})
	}
	if tickets == nil {
		tickets = []any{}
	}
	return map[string]any{
		"event": map[string]any{"id": "1", "title": ev["title"], "ticketsSold": ev["ticketsSold"].(*big.Int).String(),
			"organizer": map[string]any{"id": "0x" + hex.EncodeToString(ownerAddr(100))}, "tickets": tickets},
		"_meta": map[string]any{"block": map[string]any{"number": float64(n), "hash": s.hashes[n].Hex()}},
	}
}

func normalize(v any) any {
	b, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

func (s *synth) checkAt(h *Handler, b map[string]any, n int64) {
	s.t.Helper()
	r := gqltest.Post(s.t, h, eventAtQuery, map[string]any{"b": b})
	if len(r.Errors) > 0 {
		s.t.Fatalf("block %v: %v", b, r.Errors)
	}
	if got, want := normalize(r.Data), normalize(s.expectEvent(n)); !reflect.DeepEqual(got, want) {
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		s.t.Fatalf("block %v (%d):\n got  %s\n want %s", b, n, gb, wb)
	}
}

func (s *synth) wantError(h *Handler, b map[string]any, code string) {
	s.t.Helper()
	r := gqltest.Post(s.t, h, eventAtQuery, map[string]any{"b": b})
	codes := r.ErrorCodes()
	if len(codes) == 0 || codes[0] != code {
		s.t.Fatalf("block %v: want error %s, got %v (%s)", b, code, codes, r.Raw)
	}
}

// TestTimeTravelAcrossRevert reads the store as of several blocks before and after a revert and
// a new branch, through the store's own writer, and compares each answer with the history kept
// in Go.
func TestTimeTravelAcrossRevert(t *testing.T) {
	ctx := context.Background()
	s := newSynth(t)
	h, err := NewHandler(s.st.Pool(), s.sch, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Before anything is indexed, data queries are refused.
	s.wantError(h, nil, "NOT_STARTED")
	for n := int64(1); n <= 8; n++ {
		s.apply(ctx, 'A', n, block('A', 2))
	}
	for n := int64(1); n <= 8; n++ {
		s.checkAt(h, map[string]any{"number": n}, n)
	}
	s.checkAt(h, nil, 8)
	s.checkAt(h, map[string]any{"hash": s.hashes[6].Hex()}, 6)
	s.checkAt(h, map[string]any{"number_gte": 8}, 8)
	oldHash7 := s.hashes[7]

	s.revertTo(ctx, 5)
	s.checkAt(h, nil, 5)
	s.wantError(h, map[string]any{"number": 6}, "BLOCK_NOT_YET_INDEXED")
	for n := int64(6); n <= 9; n++ {
		s.apply(ctx, 'B', n, block('B', 3))
	}
	for n := int64(1); n <= 9; n++ {
		s.checkAt(h, map[string]any{"number": n}, n)
	}
	s.checkAt(h, nil, 9)
	s.checkAt(h, map[string]any{"hash": s.hashes[7].Hex()}, 7)
	s.checkAt(h, map[string]any{"number_gte": 3}, 9)
	s.wantError(h, map[string]any{"hash": oldHash7.Hex()}, "BLOCK_HASH_UNKNOWN")
	s.wantError(h, map[string]any{"number": 10}, "BLOCK_NOT_YET_INDEXED")
	s.wantError(h, map[string]any{"number_gte": 10}, "BLOCK_NOT_YET_INDEXED")
	s.wantError(h, map[string]any{"number": -1}, "BAD_BLOCK")
	s.wantError(h, map[string]any{"hash": "0x12", "number": 3}, "BLOCK_HASH_UNKNOWN")
	// the block's hash with the wrong number
	s.wantError(h, map[string]any{"hash": s.hashes[7].Hex(), "number": 6}, "BAD_BLOCK")

	// A collection read at a block, filtered on a field that changed across the revert.
	r := gqltest.Post(t, h, `{ tickets(block: {number: 7}, where: {owner: "0x0b00000000000000000000000000000000000011"}) { id } }`, nil)
	if got := fmt.Sprint(r.Data["tickets"]); got != "[map[id:1-1]]" || len(r.Errors) > 0 {
		t.Fatalf("ticket 1-1 at block 7 should be owned by owner 0x..11 (set at block 7): %s", r.Raw)
	}
}

// TestSnapshotConsistency runs queries while blocks are committed and reverted, and checks that
// every answer is one committed state: the block's values are named after the block's hash, so
// a read that mixed two states (or saw half a block) cannot match _meta.
func TestSnapshotConsistency(t *testing.T) {
	ctx := context.Background()
	s := newSynth(t)
	h, err := NewHandler(s.st.Pool(), s.sch, Options{})
	if err != nil {
		t.Fatal(err)
	}
	named := func(branch byte) func(n int64, set func(string, gqltest.Row), get func(string, string) gqltest.Row) {
		inner := block(branch, 2)
		return func(n int64, set func(string, gqltest.Row), get func(string, string) gqltest.Row) {
			inner(n, set, get)
			ev := get("Event", "1")
			ev["title"] = blockHash(branch, n).Hex()
			set("Event", ev)
		}
	}
	s.apply(ctx, 'A', 1, named('A'))
	stop := make(chan struct{})
	var queries, bad atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := gqltest.Post(t, h, `{ _meta { block { number hash } } event(id: "1") { title ticketsSold tickets(first: 1000) { id } } }`, nil)
				queries.Add(1)
				if len(r.Errors) > 0 {
					t.Errorf("query failed: %s", r.Raw)
					bad.Add(1)
					continue
				}
				meta := r.Data["_meta"].(map[string]any)["block"].(map[string]any)
				ev := r.Data["event"].(map[string]any)
				sold, _ := strconv.Atoi(ev["ticketsSold"].(string))
				if ev["title"] != meta["hash"] || sold != len(ev["tickets"].([]any)) {
					t.Errorf("inconsistent answer: %s", r.Raw)
					bad.Add(1)
				}
			}
		}()
	}
	branch := byte('A')
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) && bad.Load() == 0 {
		if s.head >= 4 && s.head%4 == 0 {
			s.revertTo(ctx, s.head-2)
			branch++
		}
		s.apply(ctx, branch, s.head+1, named(branch))
	}
	close(stop)
	wg.Wait()
	t.Logf("%d queries over %d blocks (branch %c)", queries.Load(), s.head, branch)
	if queries.Load() < 20 {
		t.Fatalf("only %d queries ran", queries.Load())
	}
}

// TestSubgraphErrorPolicy records an indexing error at a block: with the default policy (deny)
// data at or after that block is refused, `allow` reads it, _meta reports the error, and a
// revert below the block forgets it.
func TestSubgraphErrorPolicy(t *testing.T) {
	ctx := context.Background()
	s := newSynth(t)
	h, err := NewHandler(s.st.Pool(), s.sch, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for n := int64(1); n <= 6; n++ {
		s.apply(ctx, 'A', n, block('A', 1))
	}
	if err := s.st.RecordIndexingError(ctx, store.IndexingError{Block: 5, BlockHash: s.hashes[5], Handler: "test", Message: "boom", Deterministic: true}); err != nil {
		t.Fatal(err)
	}
	r := gqltest.Post(t, h, `{ events { id } }`, nil)
	if c := r.ErrorCodes(); len(c) != 1 || c[0] != "INDEXING_ERROR" {
		t.Fatalf("deny: %s", r.Raw)
	}
	r = gqltest.Post(t, h, `{ _meta { hasIndexingErrors } }`, nil)
	if len(r.Errors) > 0 || r.Data["_meta"].(map[string]any)["hasIndexingErrors"] != true {
		t.Fatalf("_meta: %s", r.Raw)
	}
	r = gqltest.Post(t, h, `{ events(subgraphError: allow) { id } event(id: "1", block: {number: 4}) { id } }`, nil)
	if len(r.Errors) > 0 || len(r.Data["events"].([]any)) != 1 || r.Data["event"] == nil {
		t.Fatalf("allow, and a block before the error: %s", r.Raw)
	}
	s.revertTo(ctx, 4)
	r = gqltest.Post(t, h, `{ events { id } _meta { hasIndexingErrors } }`, nil)
	if len(r.Errors) > 0 || r.Data["_meta"].(map[string]any)["hasIndexingErrors"] != false {
		t.Fatalf("after reverting below the error: %s", r.Raw)
	}
}

// TestExecuteAtBlock answers as of a committed block (what a subscription does on a
// notification), and with AtHash refuses once that block was replaced by a reorganisation.
func TestExecuteAtBlock(t *testing.T) {
	ctx := context.Background()
	s := newSynth(t)
	h, err := NewHandler(s.st.Pool(), s.sch, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for n := int64(1); n <= 6; n++ {
		s.apply(ctx, 'A', n, block('A', 1))
	}
	q := Request{Query: `subscription { event(id: "1") { title } _meta { block { number hash } } }`}
	run := func(eo ExecOptions) *Result { return h.Engine().Execute(ctx, q, eo) }
	oldHash5 := s.hashes[5].Hex()
	for _, n := range []int64{4, 5, 6} {
		res := run(ExecOptions{AtBlock: n, AtHash: s.hashes[n].Hex()})
		want := fmt.Sprintf(`{"event":{"title":"A-%d"},"_meta":{"block":{"number":%d,"hash":"%s"}}}`, n, n, s.hashes[n].Hex())
		if len(res.Errors) > 0 || string(res.Data) != want {
			t.Fatalf("at %d: %s", n, res.JSON())
		}
	}
	if res := run(ExecOptions{AtBlock: 7}); len(res.Errors) == 0 || res.Errors[0].Extensions["code"] != "BLOCK_NOT_YET_INDEXED" {
		t.Fatalf("a block above the head: %s", res.JSON())
	}
	s.revertTo(ctx, 4)
	s.apply(ctx, 'B', 5, block('B', 1))
	if res := run(ExecOptions{AtBlock: 5, AtHash: oldHash5}); len(res.Errors) == 0 || res.Errors[0].Extensions["code"] != "BLOCK_HASH_UNKNOWN" {
		t.Fatalf("the replaced block 5: %s", res.JSON())
	}
	if res := run(ExecOptions{AtBlock: 5, AtHash: s.hashes[5].Hex()}); len(res.Errors) > 0 || !strings.Contains(string(res.Data), `"B-5"`) {
		t.Fatalf("the new block 5: %s", res.JSON())
	}
	if res := run(ExecOptions{AtBlock: 4}); len(res.Errors) > 0 || !strings.Contains(string(res.Data), `"A-4"`) {
		t.Fatalf("block 4 without a hash: %s", res.JSON())
	}
}
