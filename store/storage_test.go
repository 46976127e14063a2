package store_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/echain/echain-indexer/store"
	"github.com/echain/echain-indexer/store/ddl"
	"github.com/echain/echain-indexer/store/storetest"
)

// storageChain is the shape of the chain issue 21 measured side by side with Ponder (97 MiB of
// entity tables there): versions per type as the indexer wrote them with full history.
var storageChain = []struct {
	typ      string
	entities int
	versions int
}{
	{"Organizer", 120, 4_604},
	{"Event", 4_484, 53_517},
	{"Ticket", 59_682, 102_142},
	{"Transfer", 88_724, 88_724},
	{"Transaction", 97_972, 97_972},
}

// storageValues are realistic values by field: lengths as the chain writes them (0x-hex ids,
// ipfs URIs, wei amounts). e is the entity number, k the version number within it.
func storageValues(e, k string) map[string]map[string]string {
	addr := func(p string) string { return "decode('" + p + "' || lpad(to_hex(" + e + "), 38, '0'), 'hex')" }
	hexAddr := func(p string) string { return "'0x" + p + "' || lpad(to_hex(" + e + "), 38, '0')" }
	hash := func(p string) string { return "decode('" + p + "' || lpad(to_hex(" + e + "), 62, '0'), 'hex')" }
	hexHash := func(p string) string { return "'0x" + p + "' || lpad(to_hex(" + e + "), 62, '0')" }
	wei := "(1000000000000000 + " + e + " * 7919 % 1000 * 1000000000000)"
	ts := "(1700000000 + " + e + " * 13 + " + k + " * 2)"
	event := "(" + e + " % 4484 + 1)"
	return map[string]map[string]string{
		"Organizer": {"id": hexAddr("0a"), "verified": "true", "eventsCreated": k, "updatedAt": ts},
		"Event": {"id": "(" + e + " + 1)::text", "creator": addr("0a"), "organizer": hexAddr("0a"),
			"title": "'Echain event number ' || " + e, "metadataUri": "'ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbz' || " + e,
			"description": "'A community meetup with talks, workshops and a closing party for everyone who holds a ticket.'",
			"category":    "'music'", "location": "'Hall ' || (" + e + " % 50)", "imageUrl": "'https://ipfs.io/ipfs/bafybeihkoviema7g3gxyt6la7vd5ho32ictqbilu3wnlo3rs7ewhnp7lly'",
			"ticketContract": addr("0c"), "startTime": "(1710000000 + " + e + " * 3600)", "endTime": "(1710007200 + " + e + " * 3600)",
			"maxTickets": "500", "ticketPrice": wei, "ticketsSold": k, "ticketsUsed": "0", "revenue": wei + " * " + k,
			"status": "'active'", "createdAt": ts, "createdAtBlock": "(1 + " + e + ")", "updatedAt": ts},
		"Ticket": {"id": event + "::text || '-' || (" + e + " / 4484 + 1)::text", "event": event + "::text", "contract": addr("0c"),
			"tokenId": "(" + e + " / 4484 + 1)", "owner": addr("0b"), "originalOwner": addr("0b"), "seatNumber": "0", "tier": "0",
			"ticketType": "'standard'", "price": wei, "purchasePrice": wei, "isUsed": k + " > 0",
			"usedAt": "CASE WHEN " + k + " > 0 THEN " + ts + " END", "transferRestricted": "false", "burned": "false",
			"createdAt": ts, "updatedAt": ts},
		"Transfer": {"id": hexHash("01") + " || '-' || (" + e + " % 7)::text", "ticket": event + "::text || '-' || (" + e + " / 4484 + 1)::text",
			"from": addr("0b"), "to": addr("0d"), "transactionHash": hash("01"), "blockNumber": "(1 + " + e + " / 40)", "timestamp": ts},
		"Transaction": {"id": hexHash("02"), "event": event + "::text", "ticket": event + "::text || '-1'", "from": addr("0b"),
			"to": addr("0c"), "value": wei, "transactionType": "'ticket_purchase'", "gasUsed": "(50000 + " + e + " % 100000)",
			"gasPrice": "1000000000", "timestamp": ts, "blockNumber": "(1 + " + e + " / 40)"},
	}
}

// BenchmarkStorage lays down the entity versions of the chain issue 21 measured (full history:
// every version of an entity but the last is closed), builds the API's indexes as the indexer
// does after backfill, and reports per entity type the bytes a version takes in the table
// (heap and TOAST) and in its indexes, and the total against Ponder's 97 MiB for the same
// entities. Index sizes are logged one by one.
//
//	go test ./store -run '^$' -bench BenchmarkStorage -benchtime 1x -v
func BenchmarkStorage(b *testing.B) {
	sch := echainSchema(b)
	ctx := context.Background()
	for b.Loop() {
		s, _ := openStore(b, sch, store.Options{})
		pool := s.Pool()
		var vid int64
		for _, c := range storageChain {
			t := sch.Type(c.typ)
			// version g: entity g % entities, the k-th of it; versions of an entity are
			// `entities` apart, so version k covers blocks [100k+1, 100(k+1)+1).
			e, k := "(g % "+strconv.Itoa(c.entities)+")", "(g / "+strconv.Itoa(c.entities)+")"
			from := "(100 * " + k + " + 1)::int4"
			block := storetest.VisibleFrom(t, from)
			if !t.Immutable {
				to := "CASE WHEN g + " + strconv.Itoa(c.entities) + " < " + strconv.Itoa(c.versions) + " THEN (100 * " + k + " + 101)::int4 END"
				block = ddl.BlockRange(from, to)
			}
			if err := storetest.InsertSeries(ctx, pool, t, c.versions, vid, block, storageValues(e, k)[c.typ]); err != nil {
				b.Fatal(err)
			}
			vid += int64(c.versions)
		}
		if err := s.EnsureIndexes(ctx); err != nil {
			b.Fatal(err)
		}
		if _, err := pool.Exec(ctx, "VACUUM ANALYZE"); err != nil {
			b.Fatal(err)
		}
		var total int64
		for _, c := range storageChain {
			tb := s.Layout().Table(c.typ)
			var heap, idx int64
			if err := pool.QueryRow(ctx, "SELECT pg_table_size($1::regclass), pg_indexes_size($1::regclass)", tb.Name).Scan(&heap, &idx); err != nil {
				b.Fatal(err)
			}
			total += heap + idx
			b.ReportMetric(float64(heap)/float64(c.versions), c.typ+"_table_B/version")
			b.ReportMetric(float64(idx)/float64(c.versions), c.typ+"_index_B/version")
			rows, err := pool.Query(ctx, `SELECT c.relname, pg_relation_size(c.oid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = $1::regclass ORDER BY 2 DESC`, tb.Name)
			if err != nil {
				b.Fatal(err)
			}
			var line string
			for rows.Next() {
				var n string
				var sz int64
				if err := rows.Scan(&n, &sz); err != nil {
					b.Fatal(err)
				}
				line += fmt.Sprintf(" %s=%.0f", n, float64(sz)/float64(c.versions))
			}
			rows.Close()
			b.Logf("%s: %d versions, table %.0f B/version, indexes %.0f B/version:%s", c.typ, c.versions,
				float64(heap)/float64(c.versions), float64(idx)/float64(c.versions), line)
		}
		b.ReportMetric(float64(total)/(1<<20), "entity_MiB")
		b.ReportMetric(float64(total)/(97<<20), "x_ponder")
	}
}
