package gqltest

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/big"
	"math/rand/v2"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/echain/echain-indexer/schema"
	"github.com/echain/echain-indexer/store/ddl"
	"github.com/echain/echain-indexer/store/storetest"
)

// Sizes of a bulk Echain dataset.
type Sizes struct {
	Events           int
	TicketsPerEvent  int
	Owners           int
	Organizers       int
	ExtraTransferPct int // percent of tickets with a second transfer
	TxsPerEvent      int
}

// Bulk describes a loaded dataset: what the benchmarks pick query variables from.
type Bulk struct {
	Head     int64
	Events   int
	Owners   [][]byte
	StartMin int64 // smallest event startTime
}

func addr(prefix byte, n int) []byte {
	b := make([]byte, 20)
	b[0] = prefix
	binary.BigEndian.PutUint64(b[12:], uint64(n))
	return b
}

func hash32(kind byte, n int) []byte {
	b := make([]byte, 32)
	b[0] = kind
	binary.BigEndian.PutUint64(b[24:], uint64(n))
	return b
}

// LoadBulk COPYs a synthetic Echain dataset into the entity tables of a database made by
// OpenDB (or the store): current versions from block 1, the cursor at the last block.
func LoadBulk(ctx context.Context, pool *pgxpool.Pool, sch *schema.Schema, sz Sizes) (*Bulk, error) {
	rnd := rand.New(rand.NewPCG(1, 2))
	const head = bulkHead
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	vid := int64(0)
	copyRows := func(typ string, n int, row func(i int) map[string]any) error {
		t := sch.Type(typ)
		cols := storetest.CopyColumns(t)
		open := storetest.CopyFrom(t, 1)
		i := 0
		src := pgx.CopyFromFunc(func() ([]any, error) {
			if i >= n {
				return nil, nil
			}
			vals := row(i)
			i++
			vid++
			out := make([]any, 0, len(cols))
			out = append(out, vid)
			if t.Immutable {
				out = append(out, storetest.CopyFrom(t, int64(1+rnd.IntN(head))))
			} else {
				out = append(out, open)
			}
			for _, c := range t.Columns {
				v, ok := vals[c.Name]
				if !ok && c.NonNull {
					return nil, fmt.Errorf("%s: no %s", typ, c.Name)
				}
				out = append(out, v)
			}
			return out, nil
		})
		_, err := conn.Conn().CopyFrom(ctx, pgx.Identifier{ddl.EntitySchema, t.Table}, cols, src)
		if err != nil {
			return fmt.Errorf("copy %s: %w", typ, err)
		}
		return nil
	}
	words := []string{"Jazz", "Rock", "Tech", "Art", "Food", "Film", "Chess", "Yoga", "Poetry", "Startup"}
	cats := []string{"music", "tech", "art", "food", "sport"}
	if err := copyRows("Organizer", sz.Organizers, func(i int) map[string]any {
		return map[string]any{"id": fmt.Sprintf("0x%x", addr(0x0a, i)), "verified": i%10 != 0, "eventsCreated": int64(sz.Events / sz.Organizers), "updatedAt": int64(1700000000)}
	}); err != nil {
		return nil, err
	}
	startMin := int64(bulkStartMin)
	if err := copyRows("Event", sz.Events, func(i int) map[string]any {
		org := i % sz.Organizers
		price := int64(1+rnd.IntN(100)) * 1_000_000_000_000_000
		sold := int64(sz.TicketsPerEvent)
		status := "active"
		if rnd.IntN(10) == 0 {
			status = "inactive"
		}
		var loc any
		if rnd.IntN(4) > 0 {
			loc = "Hall " + strconv.Itoa(rnd.IntN(50))
		}
		start := startMin + int64(rnd.IntN(10_000_000))
		return map[string]any{"id": strconv.Itoa(i + 1), "creator": addr(0x0a, org), "organizer": fmt.Sprintf("0x%x", addr(0x0a, org)),
			"title": words[rnd.IntN(len(words))] + " night " + strconv.Itoa(i+1), "metadataUri": "ipfs://bafy" + strconv.Itoa(i),
			"description": "An event", "category": cats[rnd.IntN(len(cats))], "location": loc, "imageUrl": nil,
			"ticketContract": addr(0x0c, i), "startTime": start, "endTime": start + 7200, "maxTickets": int64(sz.TicketsPerEvent * 2),
			"ticketPrice": price, "ticketsSold": sold, "ticketsUsed": int64(rnd.IntN(int(sold) + 1)), "revenue": pgtype.Numeric{Int: bigMul(price, sold), Valid: true},
			"status": status, "createdAt": int64(1_690_000_000 + i), "createdAtBlock": int64(1 + i), "updatedAt": int64(1_690_000_000 + i)}
	}); err != nil {
		return nil, err
	}
	nt := sz.Events * sz.TicketsPerEvent
	owners := make([]int, nt)
	for i := range owners {
		owners[i] = rnd.IntN(sz.Owners)
	}
	if err := copyRows("Ticket", nt, func(i int) map[string]any {
		ev := i/sz.TicketsPerEvent + 1
		tok := i%sz.TicketsPerEvent + 1
		used := rnd.IntN(5) == 0
		var usedAt any
		if used {
			usedAt = int64(1_700_000_000 + rnd.IntN(1000))
		}
		return map[string]any{"id": strconv.Itoa(ev) + "-" + strconv.Itoa(tok), "event": strconv.Itoa(ev), "contract": addr(0x0c, ev-1),
			"tokenId": int64(tok), "owner": addr(0x0b, owners[i]), "originalOwner": addr(0x0b, owners[i]), "seatNumber": int64(0), "tier": int64(0),
			"ticketType": "standard", "price": int64(1e15), "purchasePrice": int64(1e15), "isUsed": used, "usedAt": usedAt,
			"transferRestricted": false, "burned": false, "createdAt": int64(1_695_000_000 + i), "updatedAt": int64(1_695_000_000 + i)}
	}); err != nil {
		return nil, err
	}
	extra := nt * sz.ExtraTransferPct / 100
	if err := copyRows("Transfer", nt+extra, func(i int) map[string]any {
		tk := i
		from := make([]byte, 20)
		if i >= nt {
			tk = rnd.IntN(nt)
			from = addr(0x0b, owners[tk])
		}
		ev := tk/sz.TicketsPerEvent + 1
		tok := tk%sz.TicketsPerEvent + 1
		return map[string]any{"id": fmt.Sprintf("0x%x-%d", hash32(1, i), i%4), "ticket": strconv.Itoa(ev) + "-" + strconv.Itoa(tok),
			"from": from, "to": addr(0x0b, owners[tk]), "transactionHash": hash32(1, i), "blockNumber": int64(1 + i/10), "timestamp": int64(1_695_000_000 + i)}
	}); err != nil {
		return nil, err
	}
	types := []string{"ticket_purchase", "ticket_resale", "ticket_check_in", "ticket_transfer"}
	if err := copyRows("Transaction", sz.Events*sz.TxsPerEvent, func(i int) map[string]any {
		ev := i/sz.TxsPerEvent + 1
		return map[string]any{"id": fmt.Sprintf("0x%x", hash32(2, i)), "event": strconv.Itoa(ev), "ticket": strconv.Itoa(ev) + "-1",
			"from": addr(0x0b, rnd.IntN(sz.Owners)), "to": addr(0x0c, ev-1), "value": int64(rnd.IntN(1000)) * 1e12,
			"transactionType": types[rnd.IntN(len(types))], "gasUsed": int64(50000 + rnd.IntN(100000)), "gasPrice": int64(1e9),
			"timestamp": int64(1_695_000_000 + i), "blockNumber": int64(1 + i/10)}
	}); err != nil {
		return nil, err
	}
	if err := storetest.SetCursor(ctx, conn, storetest.Cursor{Number: head, Hash: hash32(9, head), ParentHash: hash32(9, head-1), Timestamp: 1_700_000_000}); err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "ANALYZE"); err != nil {
		return nil, err
	}
	return BulkInfo(sz), nil
}

// BulkInfo describes the dataset LoadBulk makes for sz (without loading it).
func BulkInfo(sz Sizes) *Bulk {
	b := &Bulk{Head: bulkHead, Events: sz.Events, StartMin: bulkStartMin}
	for i := 0; i < sz.Owners; i++ {
		b.Owners = append(b.Owners, addr(0x0b, i))
	}
	return b
}

const (
	bulkHead     = 100000
	bulkStartMin = 1_700_000_000
)

func bigMul(a, b int64) *big.Int { return new(big.Int).Mul(big.NewInt(a), big.NewInt(b)) }
