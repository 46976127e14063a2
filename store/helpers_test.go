package store_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/big"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/jackc/pgx/v5"

	"github.com/echain/echain-indexer/schema"
	"github.com/echain/echain-indexer/store"
	"github.com/echain/echain-indexer/store/storetest"
)

// allTypesSDL has every scalar kind, nullable and not, and lists.
const allTypesSDL = `
"Every column type."
type Thing @entity {
  id: ID!
  "A required string."
  s: String!
  sn: String
  b: Bytes!
  bn: Bytes
  bi: BigInt!
  bin: BigInt
  bd: BigDecimal!
  bdn: BigDecimal
  i: Int!
  inull: Int
  i8: Int8!
  ts: Timestamp
  ok: Boolean!
  okn: Boolean
  ref: Other
  strs: [String!]!
  byts: [Bytes!]
  bigs: [BigInt!]
  decs: [BigDecimal!]
  ints: [Int!]
  i8s: [Int8!]
  bools: [Boolean!]
  others: [Other!]! @derivedFrom(field: "thing")
}

type Other @entity(immutable: true) {
  id: ID!
  thing: Thing
  v: Int!
}
`

// smallSDL is what the randomized tests write: one mutable and one immutable type.
const smallSDL = `
type Acct @entity {
  id: ID!
  n: Int!
  note: String
  tags: [String!]!
  evs: [Ev!]! @derivedFrom(field: "acct")
}

type Ev @entity(immutable: true) {
  id: ID!
  acct: Acct!
  v: Int!
}
`

func mustParse(t testing.TB, sdl string) *schema.Schema {
	t.Helper()
	s, err := schema.Parse("test.graphql", sdl)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func echainSchema(t testing.TB) *schema.Schema {
	t.Helper()
	s, err := schema.Load()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// openStore opens a migrated store on a fresh database.
func openStore(t testing.TB, sch *schema.Schema, opts store.Options) (*store.Store, string) {
	t.Helper()
	url := storetest.NewDB(t)
	return openURL(t, url, sch, opts), url
}

func openURL(t testing.TB, url string, sch *schema.Schema, opts store.Options) *store.Store {
	t.Helper()
	if opts.MaxConns == 0 {
		opts.MaxConns = 4
	}
	s, err := store.Open(context.Background(), url, sch, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// ptr is block n of a branch: hashes differ between branches, parents chain within one.
func ptr(n int64, branch int) store.BlockPtr {
	return store.BlockPtr{Number: n, Hash: blockHash(n, branch), ParentHash: blockHash(n-1, branch), Timestamp: 1_700_000_000 + n*2}
}

func blockHash(n int64, branch int) common.Hash {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(n))
	binary.BigEndian.PutUint64(b[8:], uint64(branch))
	return crypto.Keccak256Hash(b[:])
}

// commitBlocks commits a batch covering blocks, all in the window above finalized.
func commitBlocks(t testing.TB, s *store.Store, b *store.Batch, blocks []store.BlockPtr, finalized int64) {
	t.Helper()
	if err := s.Commit(context.Background(), b, commitOf(blocks, finalized)); err != nil {
		t.Fatal(err)
	}
}

func commitOf(blocks []store.BlockPtr, finalized int64) store.Commit {
	c := store.Commit{Head: blocks[len(blocks)-1], Finalized: finalized}
	for _, p := range blocks {
		if p.Number > finalized {
			c.Window = append(c.Window, p)
		}
	}
	return c
}

// canon renders a Row value with its Go type, so that round trips compare types too.
func canon(v any) string {
	switch x := v.(type) {
	case nil:
		return "nil"
	case *big.Int:
		return "*big.Int:" + x.String()
	case []byte:
		return fmt.Sprintf("[]byte:%x", x)
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Slice {
		parts := make([]string, rv.Len())
		for i := range parts {
			parts[i] = canon(rv.Index(i).Interface())
		}
		return fmt.Sprintf("%T[%s]", v, strings.Join(parts, " "))
	}
	return fmt.Sprintf("%T:%v", v, v)
}

func canonRow(r []any) string {
	if r == nil {
		return "<absent>"
	}
	parts := make([]string, len(r))
	for i, v := range r {
		parts[i] = canon(v)
	}
	return strings.Join(parts, " | ")
}

// dump lists every stored version of every entity table, without vids: two stores that applied
// the same chain dump the same.
func dump(t testing.TB, s *store.Store) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	for _, typ := range s.Schema().Types {
		sys := "block_range::text"
		if typ.Immutable {
			sys = "block::text"
		}
		rows, err := s.Pool().Query(ctx, fmt.Sprintf(`SELECT id, %s, (to_jsonb(x) - 'vid' - 'block_range' - 'block')::text FROM entities.%q x`, sys, typ.Table))
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id, rng, data string
			if err := rows.Scan(&id, &rng, &data); err != nil {
				t.Fatal(err)
			}
			out = append(out, typ.Name+" "+id+" "+rng+" "+data)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	sort.Strings(out)
	return out
}

// checkVersions asserts the writer's invariants: the versions of one id never overlap, and each
// id has at most one current version.
func checkVersions(t testing.TB, s *store.Store) {
	t.Helper()
	ctx := context.Background()
	for _, typ := range s.Schema().Types {
		if typ.Immutable {
			var dup int
			if err := s.Pool().QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM (SELECT id FROM entities.%q GROUP BY id HAVING count(*) > 1) d`, typ.Table)).Scan(&dup); err != nil {
				t.Fatal(err)
			}
			if dup != 0 {
				t.Fatalf("%s: %d immutable ids stored twice", typ.Name, dup)
			}
			continue
		}
		var overlaps, currents, empty int
		if err := s.Pool().QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM entities.%[1]q a JOIN entities.%[1]q b
ON a.id = b.id AND a.vid < b.vid AND a.block_range && b.block_range`, typ.Table)).Scan(&overlaps); err != nil {
			t.Fatal(err)
		}
		if err := s.Pool().QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM (SELECT id FROM entities.%q WHERE upper_inf(block_range) GROUP BY id HAVING count(*) > 1) d`, typ.Table)).Scan(&currents); err != nil {
			t.Fatal(err)
		}
		if err := s.Pool().QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM entities.%q WHERE isempty(block_range)`, typ.Table)).Scan(&empty); err != nil {
			t.Fatal(err)
		}
		if overlaps+currents+empty != 0 {
			t.Fatalf("%s: %d overlapping version pairs, %d ids with several current versions, %d empty ranges", typ.Name, overlaps, currents, empty)
		}
	}
}

// listen opens a connection listening on the change channel.
func listen(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(ctx, "LISTEN "+store.NotifyChannel); err != nil {
		t.Fatal(err)
	}
	return conn
}

func nextChange(t testing.TB, conn *pgx.Conn) (*store.Change, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := conn.WaitForNotification(ctx)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	c, err := store.ParseChange(n.Payload)
	if err != nil {
		t.Fatalf("payload %q: %v", n.Payload, err)
	}
	return c, n.Payload
}
