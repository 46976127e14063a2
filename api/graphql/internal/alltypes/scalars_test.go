package alltypes

import (
	"context"
	"encoding/json"
	"math/big"
	"reflect"
	"testing"

	"github.com/echain/echain-indexer/api/graphql/engine"
	"github.com/echain/echain-indexer/api/graphql/internal/gqltest"
)

// TestScalarsAsASubgraphSendsThem checks the wire form of every scalar kind, null and list: BigInt
// and BigDecimal as decimal strings (no float on the way, no trailing fractional zeros),
// Int8 and Timestamp as decimal strings, Bytes as lowercase 0x hex, Int and Boolean as JSON.
func TestScalarsAsASubgraphSendsThem(t *testing.T) {
	ctx := context.Background()
	sch, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	pool := gqltest.OpenDB(t, sch)
	w := gqltest.NewWriter(pool, sch)
	huge, _ := new(big.Int).SetString("-123456789012345678901234567890123456789", 10)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.Put(ctx, "Owner", 1, gqltest.Row{"id": "o1", "name": "Ann", "rank": int32(-3)}))
	must(w.Put(ctx, "Thing", 1, gqltest.Row{"id": "x", "name": "é\"\\\n<&>\u2028", "nick": nil, "count": int32(-2147483648), "small": nil,
		"big": huge, "bigOpt": nil, "dec": "-0012.5000", "i8": int64(9223372036854775807), "ts": int64(1700000000123456),
		"flag": true, "flagOpt": nil, "data": []byte{0xAB, 0xCD, 0x00}, "dataOpt": []byte{}, "tags": []string{"a", "B"},
		"nums": []int32{1, -2}, "bigs": []string{"0", "340282366920938463463374607431768211456"}, "blobs": [][]byte{{0xFF}, {}},
		"owner": "o1", "maybe": nil}))
	must(w.Put(ctx, "Part", 1, gqltest.Row{"id": "p", "thing": "x", "weight": "100.000", "label": "w"}))
	must(w.SetHead(ctx, gqltest.Block{Number: 1, Hash: []byte{0xAA}, ParentHash: []byte{0xBB}, Timestamp: 42}, 0))
	e, err := engine.New(pool, sch, Binding(), engine.Options{})
	must(err)
	h := engine.NewHandler(e)
	q := `{ thing(id: "x") { id name nick count small big bigOpt dec i8 ts flag flagOpt data dataOpt tags nums bigs blobs
  owner { id rank } maybe { id } parts { id weight } } _meta { block { number hash parentHash timestamp } } }`
	r := gqltest.Post(t, h, q, nil)
	ref, err := engine.New(pool, sch, Binding(), engine.Options{DisableFastPath: true})
	must(err)
	if rr := gqltest.Post(t, engine.NewHandler(ref), q, nil); string(rr.Raw) != string(r.Raw) {
		t.Errorf("fast path and graphql-go differ:\n fast      %s\n graphqlgo %s", r.Raw, rr.Raw)
	}
	var got any
	if err := json.Unmarshal(r.Raw, &got); err != nil {
		t.Fatal(err)
	}
	var want any
	must(json.Unmarshal([]byte(`{"data": {"thing": {"id": "x", "name": "é\"\\\n<&>\u2028", "nick": null, "count": -2147483648, "small": null,
  "big": "-123456789012345678901234567890123456789", "bigOpt": null, "dec": "-12.5", "i8": "9223372036854775807", "ts": "1700000000123456",
  "flag": true, "flagOpt": null, "data": "0xabcd00", "dataOpt": "0x", "tags": ["a", "B"], "nums": [1, -2],
  "bigs": ["0", "340282366920938463463374607431768211456"], "blobs": ["0xff", "0x"],
  "owner": {"id": "o1", "rank": -3}, "maybe": null, "parts": [{"id": "p", "weight": "100"}]},
  "_meta": {"block": {"number": 1, "hash": "0xaa", "parentHash": "0xbb", "timestamp": 42}}}}`), &want))
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %s", r.Raw)
	}
}
