package store_test

import (
	"context"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/echain/echain-indexer/schema/entity"
	"github.com/echain/echain-indexer/store"
)

// mixGen produces the entity writes of ticket sales: per block, purchase transactions minting
// 1-3 tickets each (a Transfer and a Ticket per ticket, a Transaction per purchase, the Event's
// counters updated), plus resales and transfers of earlier tickets (Ticket update, Transfer,
// Transaction). It writes through the generated entities, as the mappings do.
type mixGen struct {
	rng     *rand.Rand
	events  int
	minted  []int // tickets minted per event
	block   int64
	txSeq   int
	perBlk  int // purchases per block
	moves   int // transfers of existing tickets per block
	written int // versions Set (distinct entity per block)
}

func newMixGen(events int) *mixGen {
	return &mixGen{rng: rand.New(rand.NewPCG(7, 7)), events: events, minted: make([]int, events+1), perBlk: 20, moves: 5}
}

func addr(n int) []byte {
	var a common.Address
	a[0], a[18], a[19] = 0xec, byte(n>>8), byte(n)
	return a.Bytes()
}

func (g *mixGen) txHash() []byte {
	g.txSeq++
	return common.BigToHash(big.NewInt(int64(g.txSeq))).Bytes()
}

// setupEvents commits the events the mix sells tickets for.
func (g *mixGen) setupEvents(tb testing.TB, s *store.Store) {
	b := s.NewBatch()
	g.block++
	p := ptr(g.block, 0)
	b.StartBlock(p)
	for e := 1; e <= g.events; e++ {
		ev := &entity.Event{ID: fmt.Sprint(e), Creator: addr(e), Organizer: fmt.Sprintf("%x", addr(e)), Title: fmt.Sprintf("Event %d", e),
			MetadataURI: "ipfs://bafy" + fmt.Sprint(e), TicketContract: addr(10000 + e), StartTime: big.NewInt(1_800_000_000),
			EndTime: big.NewInt(1_800_086_400), MaxTickets: big.NewInt(1_000_000), TicketPrice: big.NewInt(10_000_000_000_000_000),
			TicketsSold: big.NewInt(0), TicketsUsed: big.NewInt(0), Revenue: big.NewInt(0), Status: "active",
			CreatedAt: big.NewInt(p.Timestamp), CreatedAtBlock: big.NewInt(p.Number), UpdatedAt: big.NewInt(p.Timestamp)}
		ev.Save(b)
	}
	commitBlocks(tb, s, b, []store.BlockPtr{p}, p.Number)
}

// fill adds n blocks of traffic to the batch and returns their pointers.
func (g *mixGen) fill(ctx context.Context, tb testing.TB, b *store.Batch, n int) []store.BlockPtr {
	var ps []store.BlockPtr
	for range n {
		g.block++
		p := ptr(g.block, 0)
		ps = append(ps, p)
		b.StartBlock(p)
		ts := big.NewInt(p.Timestamp)
		touched := map[string]bool{}
		for range g.perBlk {
			e := 1 + g.rng.IntN(g.events)
			eid := fmt.Sprint(e)
			ev, err := entity.LoadEvent(ctx, b, eid)
			if err != nil || ev == nil {
				tb.Fatalf("event %s: %v", eid, err)
			}
			buyer := g.rng.IntN(300_000)
			tx := g.txHash()
			qty := 1 + g.rng.IntN(3)
			for q := range qty {
				g.minted[e]++
				tid := fmt.Sprintf("%d-%d", e, g.minted[e])
				(&entity.Transfer{ID: fmt.Sprintf("0x%x-%d", tx, 2*q), Ticket: tid, From: make([]byte, 20), To: addr(buyer),
					TransactionHash: tx, BlockNumber: big.NewInt(p.Number), Timestamp: ts}).Save(b)
				(&entity.Ticket{ID: tid, Event: eid, Contract: ev.TicketContract, TokenID: big.NewInt(int64(g.minted[e])), Owner: addr(buyer),
					OriginalOwner: addr(buyer), SeatNumber: big.NewInt(0), Tier: big.NewInt(0), TicketType: "standard", Price: ev.TicketPrice,
					PurchasePrice: ev.TicketPrice, CreatedAt: ts, UpdatedAt: ts}).Save(b)
				g.written += 2
			}
			ev.TicketsSold.Add(ev.TicketsSold, big.NewInt(int64(qty)))
			ev.Revenue.Mul(ev.TicketsSold, ev.TicketPrice)
			ev.UpdatedAt = ts
			ev.Save(b)
			if !touched["e"+eid] {
				touched["e"+eid] = true
				g.written++
			}
			(&entity.Transaction{ID: fmt.Sprintf("0x%x", tx), Event: &eid, From: addr(buyer), To: ev.TicketContract,
				Value: new(big.Int).Mul(ev.TicketPrice, big.NewInt(int64(qty))), TransactionType: "ticket_purchase",
				GasUsed: big.NewInt(150_000), GasPrice: big.NewInt(1_000_000), Timestamp: ts, BlockNumber: big.NewInt(p.Number)}).Save(b)
			g.written++
		}
		for range g.moves {
			e := 1 + g.rng.IntN(g.events)
			if g.minted[e] == 0 {
				continue
			}
			tid := fmt.Sprintf("%d-%d", e, 1+g.rng.IntN(g.minted[e]))
			tk, err := entity.LoadTicket(ctx, b, tid)
			if err != nil || tk == nil {
				tb.Fatalf("ticket %s: %v", tid, err)
			}
			to := g.rng.IntN(300_000)
			tx := g.txHash()
			(&entity.Transfer{ID: fmt.Sprintf("0x%x-0", tx), Ticket: tid, From: tk.Owner, To: addr(to), TransactionHash: tx,
				BlockNumber: big.NewInt(p.Number), Timestamp: ts}).Save(b)
			tk.Owner, tk.UpdatedAt = addr(to), ts
			tk.Save(b)
			(&entity.Transaction{ID: fmt.Sprintf("0x%x", tx), Ticket: &tid, From: tk.Owner, To: tk.Contract, Value: big.NewInt(0),
				TransactionType: "ticket_transfer", GasUsed: big.NewInt(60_000), GasPrice: big.NewInt(1_000_000), Timestamp: ts,
				BlockNumber: big.NewInt(p.Number)}).Save(b)
			if !touched["t"+tid] {
				touched["t"+tid] = true
				g.written++
			}
			g.written += 2
		}
	}
	return ps
}

// BenchmarkFlush measures Commit alone for a backfill batch of 100 blocks (~13,000 entity
// versions: Ticket and Transfer inserts, Transactions, Event updates, some Ticket updates),
// below finality. "indexed" runs after EnsureIndexes: the cost once the API's indexes exist.
func BenchmarkFlush(b *testing.B) {
	for _, indexed := range []bool{false, true} {
		name := "backfill"
		if indexed {
			name = "indexed"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			// One connection: its backend's CPU time measures the server's work, which stays
			// meaningful when other processes load the machine (wall time does not).
			s, _ := openStore(b, echainSchema(b), store.Options{MaxConns: 1})
			g := newMixGen(200)
			g.setupEvents(b, s)
			if indexed {
				if err := s.EnsureIndexes(ctx); err != nil {
					b.Fatal(err)
				}
			}
			srv := newServerMeter(b, s)
			total := 0
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				batch := s.NewBatch()
				before := g.written
				ps := g.fill(ctx, b, batch, 100)
				total += g.written - before
				srv.startClient()
				b.StartTimer()
				if err := s.Commit(ctx, batch, store.Commit{Head: ps[len(ps)-1], Finalized: ps[len(ps)-1].Number}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				srv.stopClient()
			}
			b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "versions/s")
			b.ReportMetric(float64(total)/float64(b.N), "versions/op")
			srv.report(b, total)
		})
	}
}

// BenchmarkApplyAndFlush is the whole write path of a batch: entity loads and saves through the
// batch cache, then Commit.
func BenchmarkApplyAndFlush(b *testing.B) {
	ctx := context.Background()
	s, _ := openStore(b, echainSchema(b), store.Options{})
	g := newMixGen(200)
	g.setupEvents(b, s)
	total := 0
	b.ResetTimer()
	for range b.N {
		batch := s.NewBatch()
		before := g.written
		ps := g.fill(ctx, b, batch, 100)
		total += g.written - before
		if err := s.Commit(ctx, batch, store.Commit{Head: ps[len(ps)-1], Finalized: ps[len(ps)-1].Number}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "versions/s")
}

const fixtureTickets = 1_000_000

// ticketFixture fills the Ticket table with 1,000,000 current tickets straight from SQL (2,000
// events, 300,000 owners, 100 tickets per block over 10,000 blocks), builds every index, and
// sets the cursor after it.
func ticketFixture(b *testing.B) *store.Store {
	ctx := context.Background()
	s, _ := openStore(b, echainSchema(b), store.Options{})
	start := time.Now()
	_, err := s.Pool().Exec(ctx, fmt.Sprintf(`INSERT INTO entities.ticket
SELECT g, int4range(1 + g/100, NULL), ((g %% 2000) + 1)::text || '-' || (g/2000 + 1)::text, ((g %% 2000) + 1)::text,
  decode(lpad(to_hex(g %% 2000), 40, '0'), 'hex'), g/2000 + 1,
  decode(lpad(to_hex(g %% 300000), 40, '0'), 'hex'), decode(lpad(to_hex(g %% 300000), 40, '0'), 'hex'),
  0, 0, 'standard', 10000000000000000, 10000000000000000, false, NULL, false, false,
  1700000000 + g/50, 1700000000 + g/50
FROM generate_series(0, %d) g`, fixtureTickets-1))
	if err != nil {
		b.Fatal(err)
	}
	head := ptr(1+(fixtureTickets-1)/100, 0)
	if _, err := s.Pool().Exec(ctx, `UPDATE indexer.head SET number = $1, hash = $2, parent_hash = $3, "timestamp" = $4, finalized = $1, next_vid = $5`,
		head.Number, head.Hash.Bytes(), head.ParentHash.Bytes(), head.Timestamp, fixtureTickets); err != nil {
		b.Fatal(err)
	}
	b.Logf("fixture: %d tickets inserted in %v", fixtureTickets, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	if err := s.EnsureIndexes(ctx); err != nil {
		b.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, "VACUUM ANALYZE entities.ticket"); err != nil {
		b.Fatal(err)
	}
	b.Logf("fixture: indexes built and vacuumed in %v", time.Since(start).Round(time.Millisecond))
	return s
}

// BenchmarkTickets1M: on 1,000,000 tickets, the revert of the last 10 blocks (each minting and
// moving 5, then 50, tickets), current-state lookups by id and by owner (EXPLAIN
// logged), and the bytes a Ticket version takes.
func BenchmarkTickets1M(b *testing.B) {
	ctx := context.Background()
	s := ticketFixture(b)
	st, err := s.Status(ctx)
	if err != nil {
		b.Fatal(err)
	}
	base := *st.Head
	rng := rand.New(rand.NewPCG(1, 1))
	apply := func(perBlock int) {
		batch := s.NewBatch()
		var ps []store.BlockPtr
		for i := int64(1); i <= 10; i++ {
			p := ptr(base.Number+i, 0)
			ps = append(ps, p)
			batch.StartBlock(p)
			ts := big.NewInt(p.Timestamp)
			for k := range perBlock {
				tk := ticket(fmt.Sprintf("new-%d-%d", p.Number, k), "1", 1, int64(k))
				tk.Save(batch)
				id := fmt.Sprintf("%d-%d", 1+rng.IntN(2000), 1+rng.IntN(fixtureTickets/2000))
				old, err := entity.LoadTicket(ctx, batch, id)
				if err != nil || old == nil {
					b.Fatalf("ticket %s: %v", id, err)
				}
				old.Owner, old.UpdatedAt = addr(rng.IntN(300000)), ts
				old.Save(batch)
			}
		}
		if err := s.Commit(ctx, batch, commitOf(ps, base.Number)); err != nil {
			b.Fatal(err)
		}
	}

	// Each of the 10 blocks mints perBlock tickets and moves perBlock existing ones: the revert
	// deletes 2*10*perBlock versions and reopens 10*perBlock.
	for _, perBlock := range []int{5, 50} {
		b.Run(fmt.Sprintf("revert10_%dper_block", 2*perBlock), func(b *testing.B) {
			var wal float64
			for range b.N {
				b.StopTimer()
				apply(perBlock)
				var lsn string
				if err := s.Pool().QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&lsn); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if err := s.RevertTo(ctx, base); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				var w float64
				if err := s.Pool().QueryRow(ctx, "SELECT pg_current_wal_lsn() - $1::pg_lsn", lsn).Scan(&w); err != nil {
					b.Fatal(err)
				}
				wal += w
				b.StartTimer()
			}
			b.ReportMetric(wal/float64(b.N), "WAL-B/op")
		})
	}

	explain := func(q string, args ...any) string {
		rows, err := s.Pool().Query(ctx, "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF) "+q, args...)
		if err != nil {
			b.Fatal(err)
		}
		var out []string
		for rows.Next() {
			var l string
			if err := rows.Scan(&l); err != nil {
				b.Fatal(err)
			}
			out = append(out, l)
		}
		return strings.Join(out, "\n")
	}
	owner := addr(0)
	copy(owner, make([]byte, 20))
	owner[19] = 42
	// As autovacuum keeps it: the visibility map lets index-only scans skip the heap.
	if _, err := s.Pool().Exec(ctx, "VACUUM entities.ticket"); err != nil {
		b.Fatal(err)
	}
	byID := `SELECT id FROM entities.ticket WHERE id = $1 AND upper_inf(block_range)`
	byOwner := `SELECT id FROM entities.ticket WHERE owner = $1 AND upper_inf(block_range) ORDER BY id LIMIT 100`
	for name, q := range map[string][]any{"id": {byID, "777-250"}, "owner": {byOwner, owner}} {
		plan := explain(q[0].(string), q[1:]...)
		b.Logf("EXPLAIN current lookup by %s:\n%s", name, plan)
		if !strings.Contains(plan, "Index Only Scan") {
			b.Errorf("lookup by %s is not index-only", name)
		}
	}
	b.Run("lookup_id", func(b *testing.B) {
		for i := range b.N {
			var id string
			if err := s.Pool().QueryRow(ctx, byID, fmt.Sprintf("%d-%d", 1+i%2000, 1+i%500)).Scan(&id); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("lookup_owner", func(b *testing.B) {
		for i := range b.N {
			o := make([]byte, 20)
			o[18], o[19] = byte(i>>8), byte(i)
			rows, err := s.Pool().Query(ctx, byOwner, o)
			if err != nil {
				b.Fatal(err)
			}
			rows.Close()
		}
	})

	var heap, total, rows int64
	if err := s.Pool().QueryRow(ctx, `SELECT pg_relation_size('entities.ticket'), pg_total_relation_size('entities.ticket'),
(SELECT count(*) FROM entities.ticket)`).Scan(&heap, &total, &rows); err != nil {
		b.Fatal(err)
	}
	// A mint comes from two logs: TicketMinted (address 20 B + 4 topics 128 B + 2 data words
	// 64 B) and ERC-721 Transfer (20 B + 4 topics 128 B): 360 B of log payload.
	b.Logf("Ticket storage: %d versions, table %.0f B/version, with all indexes %.0f B/version; from 360 B of logs per mint",
		rows, float64(heap)/float64(rows), float64(total)/float64(rows))
	b.Run("bytes_per_version", func(b *testing.B) {
		b.ReportMetric(float64(heap)/float64(rows), "table-B/version")
		b.ReportMetric(float64(total)/float64(rows), "indexed-B/version")
		b.ReportMetric(360, "log-B/mint")
	})
}

// serverMeter reads the CPU time of the store's single backend (/proc, the server is local)
// and the WAL written, to compare layouts on a loaded machine.
type serverMeter struct {
	s        *store.Store
	pid      int32
	cpu0     time.Duration
	wal0     string
	client   time.Duration // CPU of this process inside Commit
	client0  time.Duration
	haveProc bool
}

func (m *serverMeter) startClient() { m.client0 = selfCPU() }
func (m *serverMeter) stopClient()  { m.client += selfCPU() - m.client0 }

func newServerMeter(b *testing.B, s *store.Store) *serverMeter {
	m := &serverMeter{s: s}
	ctx := context.Background()
	if err := s.Pool().QueryRow(ctx, "SELECT pg_backend_pid(), pg_current_wal_lsn()::text").Scan(&m.pid, &m.wal0); err != nil {
		b.Fatal(err)
	}
	m.cpu0, m.haveProc = procCPU(int(m.pid))
	return m
}

func (m *serverMeter) report(b *testing.B, versions int) {
	var walBytes float64
	var pid int32
	if err := m.s.Pool().QueryRow(context.Background(), "SELECT pg_backend_pid(), pg_current_wal_lsn() - $1::pg_lsn", m.wal0).Scan(&pid, &walBytes); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(walBytes/float64(versions), "WAL-B/version")
	b.ReportMetric(float64(m.client.Microseconds())/float64(versions), "client-cpu-µs/version")
	if cpu, ok := procCPU(int(pid)); ok && m.haveProc && pid == m.pid {
		b.ReportMetric(float64((cpu-m.cpu0).Microseconds())/float64(versions), "server-cpu-µs/version")
	}
}

// procCPU is the user+system CPU time of a local process.
func procCPU(pid int) (time.Duration, bool) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, false
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * time.Second / 100, true // USER_HZ
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCommitRealtime is one block per commit at the head, with every index built and the
// block kept in the window: the latency a realtime block pays in the store (p50/p99 reported).
func BenchmarkCommitRealtime(b *testing.B) {
	ctx := context.Background()
	s, _ := openStore(b, echainSchema(b), store.Options{})
	g := newMixGen(200)
	g.perBlk, g.moves = 3, 2 // ~20 versions per block
	g.setupEvents(b, s)
	warm := s.NewBatch()
	ps := g.fill(ctx, b, warm, 200)
	if err := s.Commit(ctx, warm, store.Commit{Head: ps[len(ps)-1], Finalized: ps[len(ps)-1].Number}); err != nil {
		b.Fatal(err)
	}
	if err := s.EnsureIndexes(ctx); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		batch := s.NewBatch()
		ps := g.fill(ctx, b, batch, 1)
		head := ps[0]
		b.StartTimer()
		t0 := time.Now()
		if err := s.Commit(ctx, batch, store.Commit{Head: head, Window: ps, Finalized: head.Number - 64}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
