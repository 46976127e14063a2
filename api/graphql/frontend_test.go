package graphql

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/echain/echain-indexer/api/graphql/internal/gqltest"
	"github.com/echain/echain-indexer/schema"
	"github.com/echain/echain-indexer/store/ddl"
)

// Two more pages the frontend sends (issue 18): an organizer's events, newest first, and the
// active listings of an event, cheapest first.
const (
	benchOrganizerEvents = `query OrganizerEvents($organizer: String!, $skip: Int!) {
  events(where: {organizer: $organizer}, orderBy: createdAt, orderDirection: desc, first: 20, skip: $skip) {
    id title startTime endTime status ticketsSold maxTickets imageUrl
  }
}`
	benchEventListings = `query EventListings($event: String!) {
  listings(where: {event: $event, status: "active"}, orderBy: price, orderDirection: asc, first: 20) {
    id price seller createdAt
    ticket { id tokenId }
  }
}`
)

// frontendPage is one page the frontend sends and the index its first statement must walk.
type frontendPage struct {
	name, query string
	index       string // the index that yields the page in order
	vars        func(f *gqltest.Frontend, r *rand.Rand) map[string]any
}

func frontendPages() []frontendPage {
	return []frontendPage{
		{"owner_tickets", benchOwnerTickets, "ticket_owner_created_at", func(f *gqltest.Frontend, r *rand.Rand) map[string]any {
			return map[string]any{"owner": "0x" + hex.EncodeToString(f.Owners[r.IntN(len(f.Owners))])}
		}},
		{"event_with_tickets", benchEventWithTickets, "ticket_event_token_id", func(f *gqltest.Frontend, r *rand.Rand) map[string]any {
			return map[string]any{"id": f.TicketEvents[r.IntN(len(f.TicketEvents))]}
		}},
		{"organizer_events", benchOrganizerEvents, "event_organizer_created_at", func(f *gqltest.Frontend, r *rand.Rand) map[string]any {
			return map[string]any{"organizer": f.Organizers[r.IntN(len(f.Organizers))], "skip": 20 * r.IntN(5)}
		}},
		{"event_listings", benchEventListings, "listing_event_price", func(f *gqltest.Frontend, r *rand.Rand) map[string]any {
			return map[string]any{"event": f.ListingEvents[r.IntN(len(f.ListingEvents))]}
		}},
		{"events_page", benchEventsPage, "event_start_time", func(f *gqltest.Frontend, r *rand.Rand) map[string]any {
			return map[string]any{"after": fmt.Sprint(1_700_000_000 + 3600*r.IntN(50_000)), "skip": 20 * r.IntN(5)}
		}},
	}
}

// frontendSizes: a million tickets, 100 holders of 10,000 each, 100 events of 10,000 tickets,
// 100 organizers of 1,000 events, 5 events of 10,000 listings.
var frontendSizes = gqltest.FrontendSizes{Owners: 100, TicketEvents: 100, PerPair: 100, Events: 100_000, Organizers: 100,
	Listings: 50_000, ListingEvents: 5, TransferEvery: 7}

func frontendDB(t testing.TB, sch *schema.Schema) (*pgxpool.Pool, *gqltest.Frontend) {
	t.Helper()
	ctx := context.Background()
	var f *gqltest.Frontend
	load := func(pool *pgxpool.Pool) error {
		start := time.Now()
		var err error
		f, err = gqltest.LoadFrontend(ctx, pool, sch, frontendSizes)
		t.Logf("loaded %d tickets in %s", frontendSizes.Tickets(), time.Since(start).Round(time.Millisecond))
		return err
	}
	if os.Getenv("ECHAIN_BENCH_KEEP") == "1" {
		pool := gqltest.KeptDB(t, sch, fmt.Sprintf("echain_bench_frontend_%.12s", sch.Fingerprint), load)
		if f == nil { // reused: the sizes say what it holds
			f = gqltest.FrontendInfo(frontendSizes)
		}
		return pool, f
	}
	_, pool := gqltest.BulkDB(t, sch, load)
	return pool, f
}

// statementLog records every statement a pool runs, batched ones included.
type statementLog struct {
	mu    sync.Mutex
	stmts []loggedStatement
}

type loggedStatement struct {
	sql  string
	args []any
}

func (l *statementLog) add(sql string, args []any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stmts = append(l.stmts, loggedStatement{sql, append([]any(nil), args...)})
}

func (l *statementLog) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	l.add(d.SQL, d.Args)
	return ctx
}
func (l *statementLog) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (l *statementLog) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}
func (l *statementLog) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	l.add(d.SQL, d.Args)
}
func (l *statementLog) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// entityStatements takes the logged statements that read entity tables.
func (l *statementLog) entityStatements() []loggedStatement {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []loggedStatement
	for _, s := range l.stmts {
		if strings.Contains(s.sql, ddl.Quote(ddl.EntitySchema)+".") {
			out = append(out, s)
		}
	}
	l.stmts = nil
	return out
}

// planNode is a node of EXPLAIN (ANALYZE, FORMAT JSON).
type planNode struct {
	NodeType       string     `json:"Node Type"`
	IndexName      string     `json:"Index Name"`
	ActualRows     float64    `json:"Actual Rows"`
	ActualLoops    float64    `json:"Actual Loops"`
	RemovedBFilter float64    `json:"Rows Removed by Filter"`
	Plans          []planNode `json:"Plans"`
}

type explained struct {
	Plan          planNode `json:"Plan"`
	ExecutionTime float64  `json:"Execution Time"`
}

// explainGeneric runs a statement the API sent under EXPLAIN ANALYZE with the plan the API runs
// it with: prepared, and planned generically (the API's transactions force generic plans).
func explainGeneric(ctx context.Context, pool *pgxpool.Pool, n int, st loggedStatement) (*explained, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SET LOCAL plan_cache_mode = force_generic_plan"); err != nil {
		return nil, err
	}
	name := "frontend_plan_" + strconv.Itoa(n)
	if _, err := tx.Conn().Prepare(ctx, name, st.sql); err != nil {
		return nil, fmt.Errorf("prepare %s: %w", st.sql, err)
	}
	defer tx.Conn().Deallocate(context.WithoutCancel(ctx), name)
	lits := make([]string, len(st.args))
	for i, a := range st.args {
		if lits[i], err = sqlLiteral(a); err != nil {
			return nil, err
		}
	}
	q := "EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE " + name
	if len(lits) > 0 {
		q += "(" + strings.Join(lits, ", ") + ")"
	}
	var raw []byte
	if err := tx.QueryRow(ctx, q).Scan(&raw); err != nil {
		return nil, fmt.Errorf("explain %s: %w", st.sql, err)
	}
	var out []explained
	if err := json.Unmarshal(raw, &out); err != nil || len(out) != 1 {
		return nil, fmt.Errorf("explain output %s: %v", raw, err)
	}
	return &out[0], nil
}

// sqlLiteral renders a statement argument the engine sends as an SQL constant; EXECUTE casts it
// to the prepared parameter's type.
func sqlLiteral(a any) (string, error) {
	if rv := reflect.ValueOf(a); rv.Kind() == reflect.Slice && rv.Type().Elem().Kind() == reflect.String {
		a = rv.Convert(reflect.TypeFor[[]string]()).Interface() // the engine's own text[] type
	}
	switch v := a.(type) {
	case string:
		return ddl.Literal(v), nil
	case []byte:
		return `'\x` + hex.EncodeToString(v) + `'`, nil
	case int32, int64, int:
		return fmt.Sprint(v), nil
	case bool:
		return strconv.FormatBool(v), nil
	case []string:
		parts := make([]string, len(v))
		for i, s := range v {
			parts[i] = ddl.Literal(s)
		}
		return "ARRAY[" + strings.Join(parts, ", ") + "]::text[]", nil
	}
	return "", fmt.Errorf("no literal for %T", a)
}

// walk visits every node of a plan.
func (p *planNode) walk(f func(*planNode)) {
	f(p)
	for i := range p.Plans {
		p.Plans[i].walk(f)
	}
}

// TestFrontendPagesWalkIndexes proves, on a store with a million tickets and holders of 10,000
// each, that every page the frontend sends reads its rows from an index in the order it returns
// them: EXPLAIN ANALYZE of each statement the API sends, planned as the API plans it, shows the
// page's index, no sort, and no scan that reads more than a few pages' worth of rows. With only
// (owner, id) indexed, a holder's newest tickets read and sort all 10,000 of them.
func TestFrontendPagesWalkIndexes(t *testing.T) {
	sch, err := schema.Load()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pool, f := frontendDB(t, sch)
	log := &statementLog{}
	cfg := pool.Config().Copy()
	cfg.ConnConfig.Tracer = log
	traced, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer traced.Close()
	h := newHandler(t, sch, traced, Options{})
	const maxRead = 2000 // rows any scan may read: a page is 20-100 rows, a holder has 10,000
	for _, pg := range frontendPages() {
		r := rand.New(rand.NewPCG(3, 4))
		for try := range 3 {
			vars := pg.vars(f, r)
			log.entityStatements() // drop the statements of earlier requests
			resp := gqltest.Post(t, h, pg.query, vars)
			if len(resp.Errors) > 0 || len(resp.Raw) < 60 {
				t.Fatalf("%s %v: %s", pg.name, vars, resp.Raw)
			}
			stmts := log.entityStatements()
			if len(stmts) == 0 {
				t.Fatalf("%s: no statement read an entity table", pg.name)
			}
			var total float64
			usesIndex := false
			for i, st := range stmts {
				ex, err := explainGeneric(ctx, pool, i, st)
				if err != nil {
					t.Fatalf("%s: %v", pg.name, err)
				}
				total += ex.ExecutionTime
				ex.Plan.walk(func(n *planNode) {
					if n.IndexName == pg.index {
						usesIndex = true
					}
					if strings.Contains(n.NodeType, "Sort") {
						t.Errorf("%s statement %d sorts (%s of %.0f rows x %.0f loops):\n%s", pg.name, i, n.NodeType, n.ActualRows, n.ActualLoops, st.sql)
					}
					if read := (n.ActualRows + n.RemovedBFilter) * max(n.ActualLoops, 1); strings.HasSuffix(n.NodeType, "Scan") && read > maxRead {
						t.Errorf("%s statement %d: %s %s read %.0f rows:\n%s", pg.name, i, n.NodeType, n.IndexName, read, st.sql)
					}
				})
			}
			if !usesIndex {
				t.Errorf("%s: no statement walks %s", pg.name, pg.index)
			}
			if try == 0 {
				t.Logf("%s: %d statements, %.3f ms in PostgreSQL (EXPLAIN ANALYZE)", pg.name, len(stmts), total)
			}
		}
	}
}

// BenchmarkFrontendPages sends each page the frontend sends over HTTP from 1, 16 and 64 clients
// against a store with a million tickets (holders of 10,000), and reports p50/p99 latency and
// p50 over the time PostgreSQL spends executing the page's statements (EXPLAIN ANALYZE of the
// generic plans, summed): what the API, HTTP and the load generator add. Server, PostgreSQL and
// load generator share the machine.
//
//	ECHAIN_BENCH_KEEP=1 go test ./api/graphql -run '^$' -bench BenchmarkFrontendPages -benchtime 2000x
func BenchmarkFrontendPages(b *testing.B) {
	sch, err := schema.Load()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	pool, f := frontendDB(b, sch)
	log := &statementLog{}
	cfg := pool.Config().Copy()
	cfg.MaxConns = 8
	apiPool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer apiPool.Close()
	tcfg := pool.Config().Copy()
	tcfg.ConnConfig.Tracer = log
	traced, err := pgxpool.NewWithConfig(ctx, tcfg)
	if err != nil {
		b.Fatal(err)
	}
	defer traced.Close()
	h, err := NewHandler(apiPool, sch, Options{})
	if err != nil {
		b.Fatal(err)
	}
	th, err := NewHandler(traced, sch, Options{})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, pg := range frontendPages() {
		// PostgreSQL's own time for the page: the median over a few variable sets.
		r := rand.New(rand.NewPCG(5, 6))
		var pgMs []float64
		for range 5 {
			log.entityStatements()
			if resp := gqltest.Post(b, th, pg.query, pg.vars(f, r)); len(resp.Errors) > 0 {
				b.Fatalf("%s: %s", pg.name, resp.Raw)
			}
			sum := 0.0
			for i, st := range log.entityStatements() {
				ex, err := explainGeneric(ctx, pool, i, st)
				if err != nil {
					b.Fatal(err)
				}
				sum += ex.ExecutionTime
			}
			pgMs = append(pgMs, sum)
		}
		pgMedian := median(pgMs)
		for _, clients := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("%s/clients=%d", pg.name, clients), func(b *testing.B) {
				p50 := loadgen(b, srv.URL, clients, pg.query, func(r *rand.Rand) map[string]any { return pg.vars(f, r) })
				b.ReportMetric(pgMedian, "pg_explain_ms")
				b.ReportMetric(p50/pgMedian, "p50/pg_explain")
			})
		}
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
