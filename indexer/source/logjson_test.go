package source

import (
	"encoding/json"
	"errors"
	"math/big"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
)

func sampleLogs(n int) []types.Log {
	r := rand.New(rand.NewPCG(1, 2))
	logs := make([]types.Log, n)
	for i := range logs {
		l := &logs[i]
		for k := range l.Address {
			l.Address[k] = byte(r.Uint32())
		}
		l.Topics = make([]common.Hash, 1+i%4)
		for j := range l.Topics {
			for k := range l.Topics[j] {
				l.Topics[j][k] = byte(r.Uint32())
			}
		}
		l.Data = make([]byte, 32*(i%5))
		for k := range l.Data {
			l.Data[k] = byte(r.Uint32())
		}
		l.BlockNumber = uint64(1000 + i/20)
		l.TxHash[0], l.TxHash[31] = byte(i), byte(i>>8)
		l.TxIndex = uint(i % 20)
		l.BlockHash[0] = byte(i / 20)
		l.BlockTimestamp = 1_700_000_000 + uint64(i)
		l.Index = uint(i)
		l.Removed = i%7 == 3
	}
	return logs
}

func TestLogsDecodeLikeGoEthereum(t *testing.T) {
	want := sampleLogs(300)
	raw, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var got logList
	if err := got.UnmarshalJSON(raw); err != nil {
		t.Fatal(err)
	}
	var viaGeth []types.Log
	if err := json.Unmarshal(raw, &viaGeth); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual([]types.Log(got), want) || !reflect.DeepEqual([]types.Log(got), viaGeth) {
		t.Fatal("decoding differs from go-ethereum's")
	}
	// Same through encoding/json (the single-call path), and with spacing and unknown fields.
	spaced := strings.ReplaceAll(strings.ReplaceAll(string(raw), ",", " ,\n "), `{"address"`, `{ "extra": {"a": [1, 2.5e3, -0.1, true, false, null, "x\"y\\"]}, "address"`)
	var got2 logList
	if err := json.Unmarshal([]byte(spaced), &got2); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got2, got) {
		t.Fatal("spacing or unknown fields changed the result")
	}
	zero := "0x" + strings.Repeat("00", 32)
	addr := "0x" + strings.Repeat("00", 20)
	for _, bad := range []string{
		`[{"address":"0x12","topics":[],"data":"0x","transactionHash":"` + zero + `"}]`,
		`[{"topics":[],"data":"0x","transactionHash":"` + zero + `"}]`,
		`[{"address":"` + addr + `","topics":["0xzz"],"data":"0x","transactionHash":"` + zero + `"}]`,
		`[{"address":"` + addr + `","topics":[],"data":"0x1","transactionHash":"` + zero + `"}]`,
		`[{"address":"` + addr + `","topics":[],"data":"0x","transactionHash":"` + zero + `","logIndex":"12"}]`,
		`[{"address":"` + addr + `","topics":[],"data":"0x","transactionHash":"` + zero + `","removed":1}]`,
		`[{"address":"` + addr + `","topics":[],"data":"0x","transactionHash":"` + zero + `"}`,
		`[{"address":"` + addr + `","topics":[],"data":"0x","transactionHash":"` + zero + `"},]`,
		`[{"address":"` + addr + `","topics":[] "data":"0x","transactionHash":"` + zero + `"}]`,
		`[{"address":"` + addr + `","topics":[],"data":"0x","transactionHash":"` + zero + `","x":tru}]`,
		`[{"address":"` + addr + `","topics":[],"data":"0x","transactionHash":"` + zero + `","x":"abc}]`,
		`[{"address":"` + addr + `","topics":[],"data":"0x","transactionHash":"` + zero + `","x":1.2.3}]`,
		`[{"address":"` + addr + `","topics":[],"data":"0x","transactionHash":"` + zero + `"}] x`,
		`{"address":"` + addr + `"}`,
	} {
		var l logList
		if err := l.UnmarshalJSON([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
	var l logList
	if err := l.UnmarshalJSON([]byte(" null ")); err != nil || l != nil {
		t.Errorf("null: %v %v", l, err)
	}
}

func TestReceiptsAndBlocksDecode(t *testing.T) {
	logs := sampleLogs(6)
	to := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	rcs := []map[string]any{
		{
			"transactionHash": common.Hash{1}, "blockHash": common.Hash{9}, "blockNumber": hexutil.Uint64(77),
			"transactionIndex": hexutil.Uint64(0), "gasUsed": hexutil.Uint64(21000), "cumulativeGasUsed": hexutil.Uint64(21000),
			"effectiveGasPrice": (*hexutil.Big)(big.NewInt(7_000_000_000)), "from": common.Address{5}, "to": to,
			"logs": logs[:4], "logsBloom": types.Bloom{}, "status": hexutil.Uint64(1), "type": hexutil.Uint(2), "contractAddress": nil,
		},
		{
			"transactionHash": common.Hash{2}, "blockHash": common.Hash{9}, "blockNumber": hexutil.Uint64(77),
			"transactionIndex": hexutil.Uint64(1), "gasUsed": hexutil.Uint64(50000), "effectiveGasPrice": (*hexutil.Big)(big.NewInt(1)),
			"from": common.Address{6}, "to": nil, "logs": logs[4:], "logsBloom": types.Bloom{},
		},
	}
	raw, err := json.Marshal(rcs)
	if err != nil {
		t.Fatal(err)
	}
	for _, withLogs := range []bool{false, true} {
		l := receiptList{WithLogs: withLogs}
		if err := l.UnmarshalJSON(raw); err != nil {
			t.Fatal(err)
		}
		r0, r1 := l.List[0], l.List[1]
		if len(l.List) != 2 || r0.TxHash != (common.Hash{1}) || r0.BlockHash != (common.Hash{9}) || r0.BlockNumber != 77 ||
			r0.GasUsed != 21000 || r0.EffectiveGasPrice.Int64() != 7_000_000_000 || r0.From != (common.Address{5}) || *r0.To != to ||
			r1.To != nil || r1.TxIndex != 1 || r1.GasUsed != 50000 {
			t.Fatalf("receipts decoded wrong: %+v", l.List)
		}
		if withLogs != (len(r0.Logs) == 4 && len(r1.Logs) == 2) || (withLogs && !reflect.DeepEqual(append(r0.Logs, r1.Logs...), logs)) {
			t.Fatalf("withLogs %v: logs %d %d", withLogs, len(r0.Logs), len(r1.Logs))
		}
	}
	var null receiptList
	if err := null.UnmarshalJSON([]byte("null")); err != nil || !null.Null {
		t.Fatalf("null receipts: %v %v", null, err)
	}
	var bad receiptList
	if err := bad.UnmarshalJSON([]byte(`[{"blockHash":"0x01"}]`)); err == nil {
		t.Fatal("accepted a bad receipt")
	}

	block := map[string]any{
		"hash": common.Hash{9}, "number": hexutil.Uint64(77), "timestamp": hexutil.Uint64(1234), "parentHash": common.Hash{8},
		"transactions": []map[string]any{
			{"hash": common.Hash{1}, "from": common.Address{5}, "to": to, "value": (*hexutil.Big)(new(big.Int).Lsh(big.NewInt(1), 100)),
				"gasPrice": (*hexutil.Big)(big.NewInt(3)), "input": hexutil.Bytes{1, 2, 3}, "blockHash": common.Hash{9}, "type": hexutil.Uint64(2),
				"accessList": []any{}, "v": "0x1", "r": "0x2", "s": "0x3"},
			{"hash": common.Hash{2}, "from": common.Address{6}, "to": nil, "value": "0x0", "input": "0x"},
		},
	}
	raw, err = json.Marshal(block)
	if err != nil {
		t.Fatal(err)
	}
	var b rpcBlockTxs
	if err := b.UnmarshalJSON(raw); err != nil {
		t.Fatal(err)
	}
	if b.Null || b.Hash != (common.Hash{9}) || b.Number != 77 || b.Timestamp != 1234 || len(b.Transactions) != 2 {
		t.Fatalf("block decoded wrong: %+v", b)
	}
	t0, t1 := b.Transactions[0], b.Transactions[1]
	if t0.From != (common.Address{5}) || *t0.To != to || t0.Value.Cmp(new(big.Int).Lsh(big.NewInt(1), 100)) != 0 || t0.GasPrice.Int64() != 3 ||
		t0.Input != nil || t0.Type != 2 || t1.To != nil || t1.Value.Sign() != 0 || t1.Hash != (common.Hash{2}) {
		t.Fatalf("block transactions decoded wrong: %+v", b.Transactions)
	}
	var tx rpcTx
	if err := json.Unmarshal(mustJSON(t, block["transactions"].([]map[string]any)[0]), &tx); err != nil || !reflect.DeepEqual(tx.Input, []byte{1, 2, 3}) {
		t.Fatalf("single transaction: %+v %v", tx, err)
	}
	if err := b.UnmarshalJSON([]byte(`{"hash":"0x` + strings.Repeat("00", 32) + `","number":"0x1","transactions":["0x` + strings.Repeat("00", 32) + `"]}`)); err == nil {
		t.Fatal("accepted a block with transaction hashes only")
	}
	if err := b.UnmarshalJSON([]byte("null")); err != nil || !b.Null {
		t.Fatalf("null block: %+v %v", b, err)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestScannerRejectsMalformedJSON(t *testing.T) {
	for _, good := range []string{`1`, `-0.5e+3`, `"a\"b\\"`, `[]`, `{}`, `[1,[2,{"a":null}]]`, `{"a":{"b":[true,false]}}`, `"\u00e9"`} {
		s := &scanner{b: []byte(good)}
		if err := s.skip(); err != nil || s.end() != nil {
			t.Errorf("rejected %s: %v", good, err)
		}
	}
	for _, bad := range []string{``, `[`, `]`, `{"a"}`, `{"a":}`, `{a:1}`, `[1 2]`, `[1,]`, `"abc`, `"a\"`, `tru`, `nul`, `1.2.3`, `--1`, "\"a\x01b\"", `{"a":1,}`} {
		s := &scanner{b: []byte(bad)}
		err := s.skip()
		if err == nil {
			err = s.end()
		}
		if err == nil {
			t.Errorf("accepted %q", bad)
		} else if !errors.Is(err, errSyntax) {
			t.Errorf("%q: error %v is not a syntax error", bad, err)
		}
	}
}

func BenchmarkDecodeLogs(b *testing.B) {
	raw, _ := json.Marshal(sampleLogs(5000))
	b.Run("go-ethereum", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			var logs []types.Log
			if err := json.Unmarshal(raw, &logs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("scanner", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			var logs logList
			if err := logs.UnmarshalJSON(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestHasControl compares the word-at-a-time control character check with a byte loop, on
// strings where the only control character sits at every position, next to 0x20 and 0x80+.
func TestHasControl(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	naive := func(b []byte) bool {
		for _, c := range b {
			if c < 0x20 {
				return true
			}
		}
		return false
	}
	edge := []byte{0x00, 0x1f, 0x20, 0x21, 0x7f, 0x80, 0x9f, 0xa0, 0xff, '0', 'f', '"', '\\'}
	hits := 0
	for n := 0; n < 40; n++ {
		for range 300 {
			b := make([]byte, n)
			for i := range b {
				if r.IntN(4) == 0 {
					b[i] = edge[r.IntN(len(edge))]
				} else {
					b[i] = byte(0x20 + r.IntN(0xe0))
				}
			}
			if got, want := hasControl(b), naive(b); got != want {
				t.Fatalf("hasControl(%x) = %v, want %v", b, got, want)
			}
			if naive(b) {
				hits++
			}
		}
	}
	if hits < 1000 {
		t.Fatalf("only %d strings held a control character", hits)
	}
}
