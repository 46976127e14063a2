// Package gqltest helps the API's tests: a migrated store for a schema, a writer that lays down
// entity versions exactly as the store's layout defines them (and remembers them, so tests can
// compute expected answers in Go), and a client for the HTTP handler.
package gqltest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/echain/echain-indexer/schema"
	"github.com/echain/echain-indexer/store"
	"github.com/echain/echain-indexer/store/storetest"
)

// OpenStore creates a fresh database laid out by the store for sch (store.Migrate and
// store.EnsureIndexes) and returns the open store.
func OpenStore(t testing.TB, sch *schema.Schema) *store.Store {
	t.Helper()
	st := openStore(t, sch)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := st.EnsureIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	return st
}

// openStore migrates a fresh database without the API's secondary indexes (bulk loads build
// them afterwards, as the indexer does after backfill).
func openStore(t testing.TB, sch *schema.Schema) *store.Store {
	t.Helper()
	url := storetest.NewDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := store.Open(ctx, url, sch, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return st
}

// OpenDB is OpenStore for tests that write the tables themselves: it returns a plain pool on
// the database (the API's own, as a server would give it).
func OpenDB(t testing.TB, sch *schema.Schema) *pgxpool.Pool {
	t.Helper()
	st := OpenStore(t, sch)
	pool, err := pgxpool.New(context.Background(), st.Pool().Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// Row is an entity's values by field name, in the Go types of the store's Row convention
// (docs/ARCHITECTURE.md): string for ID/String/references, []byte for Bytes, *big.Int or decimal
// string for BigInt, string for BigDecimal, int32 for Int, int64 for Int8/Timestamp, bool,
// slices for lists, nil for null.
type Row map[string]any

// Version is one stored version of an entity.
type Version struct {
	Type     string
	ID       string
	From, To int64 // visible at From <= b < To; To = 0 while current
	Vals     Row
}

// Writer writes entity versions straight into the tables (through storetest's raw writes, which
// take the layout from store/ddl) and keeps them, so a test can ask what was visible at any block.
type Writer struct {
	Pool     *pgxpool.Pool
	Sch      *schema.Schema
	vid      int64
	Versions []*Version
}

// NewWriter writes into the database of pool.
func NewWriter(pool *pgxpool.Pool, sch *schema.Schema) *Writer {
	return &Writer{Pool: pool, Sch: sch}
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// Put makes vals (which must include "id") the version of the entity from block on.
func (w *Writer) Put(ctx context.Context, typ string, block int64, vals Row) error {
	t := w.Sch.Type(typ)
	if t == nil {
		return fmt.Errorf("no type %s", typ)
	}
	id, _ := vals["id"].(string)
	if err := w.close(ctx, t, id, block); err != nil {
		return err
	}
	w.vid++
	var cols, exprs []string
	args := []any{w.vid, int32(block)}
	for _, c := range t.Columns {
		v, ok := vals[c.Name]
		if !ok && c.NonNull {
			return fmt.Errorf("%s %s: no value for %s", typ, id, c.Name)
		}
		cols = append(cols, quote(c.Column))
		args = append(args, sqlValue(c, v))
		exprs = append(exprs, fmt.Sprintf("$%d::%s", len(args), castType(c)))
	}
	if _, err := w.Pool.Exec(ctx, storetest.VersionInsert(t, cols, exprs), args...); err != nil {
		return fmt.Errorf("put %s %s: %w", typ, id, err)
	}
	cp := Row{}
	for k, v := range vals {
		cp[k] = v
	}
	w.Versions = append(w.Versions, &Version{Type: typ, ID: id, From: block, Vals: cp})
	return nil
}

// Delete ends the entity's current version at block.
func (w *Writer) Delete(ctx context.Context, typ, id string, block int64) error {
	t := w.Sch.Type(typ)
	if t.Immutable {
		return fmt.Errorf("%s is immutable", typ)
	}
	return w.close(ctx, t, id, block)
}

func (w *Writer) close(ctx context.Context, t *schema.EntityType, id string, block int64) error {
	for _, v := range w.Versions {
		if v.Type == t.Name && v.ID == id && v.To == 0 {
			if t.Immutable {
				return fmt.Errorf("%s %s is immutable", t.Name, id)
			}
			v.To = block
		}
	}
	if t.Immutable {
		return nil
	}
	return storetest.EndCurrent(ctx, w.Pool, t, id, block)
}

// At returns the rows of typ visible at block, sorted by id.
func (w *Writer) At(typ string, block int64) []Row {
	var out []Row
	for _, v := range w.Versions {
		if v.Type == typ && v.From <= block && (v.To == 0 || block < v.To) {
			out = append(out, v.Vals)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i]["id"].(string) < out[j]["id"].(string) })
	return out
}

// Block is a block as the cursor and the window record it.
type Block struct {
	Number           int64
	Hash, ParentHash []byte
	Timestamp        int64
}

// SetHead moves the cursor and records the block in the unfinalized window.
func (w *Writer) SetHead(ctx context.Context, b Block, historyFrom int64) error {
	c := storetest.Cursor{Number: b.Number, Hash: b.Hash, ParentHash: b.ParentHash, Timestamp: b.Timestamp, HistoryFrom: historyFrom}
	if err := storetest.SetCursor(ctx, w.Pool, c); err != nil {
		return err
	}
	return storetest.PutWindowBlock(ctx, w.Pool, c, w.vid+1)
}

// Analyze refreshes planner statistics after seeding.
func (w *Writer) Analyze(ctx context.Context) error {
	_, err := w.Pool.Exec(ctx, "ANALYZE")
	return err
}

func castType(c *schema.Field) string {
	base := c.Kind.SQLType()
	if c.Kind == schema.KindBigInt || c.Kind == schema.KindBigDecimal {
		base = "text"
	}
	if c.List {
		base += "[]"
	}
	if c.Kind == schema.KindBigInt || c.Kind == schema.KindBigDecimal {
		return base + "::" + c.SQLType()
	}
	return base
}

func sqlValue(c *schema.Field, v any) any {
	if v == nil {
		return nil
	}
	if c.Kind == schema.KindBigInt || c.Kind == schema.KindBigDecimal {
		if c.List {
			l := v.([]string)
			return l
		}
		return fmt.Sprint(v)
	}
	return v
}

// Response is a decoded GraphQL response.
type Response struct {
	Status int
	Header http.Header
	Data   map[string]any
	Errors []map[string]any
	Raw    []byte
}

// ErrorCodes lists extensions.code of the errors ("" when absent).
func (r *Response) ErrorCodes() []string {
	var out []string
	for _, e := range r.Errors {
		ext, _ := e["extensions"].(map[string]any)
		c, _ := ext["code"].(string)
		out = append(out, c)
	}
	return out
}

// Post sends one query to h as a JSON POST.
func Post(t testing.TB, h http.Handler, query string, vars map[string]any) *Response {
	t.Helper()
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return Do(t, h, req)
}

// Do runs a request against h and decodes the response.
func Do(t testing.TB, h http.Handler, req *http.Request) *Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	raw, _ := io.ReadAll(rec.Result().Body)
	r := &Response{Status: rec.Code, Header: rec.Header(), Raw: raw}
	var wire struct {
		Data   map[string]any   `json:"data"`
		Errors []map[string]any `json:"errors"`
	}
	if rec.Header().Get("Content-Encoding") == "" {
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		if err := d.Decode(&wire); err != nil {
			t.Fatalf("response is not JSON (%d): %v: %s", rec.Code, err, raw)
		}
	}
	r.Data, r.Errors = wire.Data, wire.Errors
	return r
}

// BulkDB creates a fresh database, fills it with load before the API's indexes exist (as the
// indexer backfills), then builds them and refreshes the planner's statistics. It returns the
// database's name and a pool on it.
func BulkDB(t testing.TB, sch *schema.Schema, load func(*pgxpool.Pool) error) (string, *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	st := openStore(t, sch)
	pool, err := pgxpool.New(ctx, st.Pool().Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	var name string
	if err := pool.QueryRow(ctx, "SELECT current_database()").Scan(&name); err != nil {
		t.Fatal(err)
	}
	if err := load(pool); err != nil {
		t.Fatal(err)
	}
	if err := st.EnsureIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if _, err := pool.Exec(ctx, "VACUUM ANALYZE"); err != nil {
		t.Fatal(err)
	}
	return name, pool
}

// KeptDB returns a pool on the database `name`, made by BulkDB the first time; later runs reuse
// it (for benchmarks whose dataset takes long to build). The database is kept after the test;
// drop it with DROP DATABASE to rebuild it.
func KeptDB(t testing.TB, sch *schema.Schema, name string, load func(*pgxpool.Pool) error) *pgxpool.Pool {
	t.Helper()
	server := storetest.ServerURL(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var ready bool
	_ = conn.QueryRow(ctx, "SELECT true FROM pg_database WHERE datname = $1", name).Scan(&ready)
	url := storetest.WithDatabase(server, name)
	if ready {
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		if h, err := store.ReadHead(ctx, pool); err == nil && h != nil {
			t.Cleanup(pool.Close)
			return pool
		}
		pool.Close()
		if _, err := conn.Exec(ctx, "DROP DATABASE "+quote(name)+" WITH (FORCE)"); err != nil {
			t.Fatal(err)
		}
	}
	tmpName, tmp := BulkDB(t, sch, load)
	tmp.Close()
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+quote(tmpName)+" RENAME TO "+quote(name)); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}
