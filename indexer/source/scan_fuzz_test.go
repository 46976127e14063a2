package source

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
)

// The scanner (scan.go) replaces encoding/json and go-ethereum's unmarshalers on every large
// answer, so these fuzz targets hold it to them. For any input:
//   - what the scanner accepts is valid JSON;
//   - when both accept an answer as a node writes it (exact-case keys, each once, no escapes),
//     they decode the same values, and what the oracle accepts the scanner accepts too;
//   - what the oracle decoded, encoded again as go-ethereum does, the scanner decodes equally.
// The scanner may accept more than the oracle (quantities with leading zeros, null where a
// node never sends one); it must never decode differently. `go test` runs the seeds: real
// answers of a go-ethereum node (testdata/answers, see its README) and edge cases.

// answerSeeds returns the "result" of each recorded answer of method.
func answerSeeds(f *testing.F, file string) [][]byte {
	f.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "answers", file))
	if err != nil {
		f.Fatalf("seed answer: %v", err)
	}
	var env struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(b, &env); err != nil || len(env.Result) == 0 {
		f.Fatalf("seed answer %s: no result (%v)", file, err)
	}
	return [][]byte{env.Result}
}

// grammarSeeds are values whose grammar encoding/json and a lax reader may disagree on.
var grammarSeeds = []string{
	`null`, `[]`, `{}`, `[01]`, `[1.]`, `[.5]`, `[+1]`, `[-]`, `[1e]`, `[1e+]`, `[-0.0e-0]`, `[1E400]`,
	`["\u00e9\""]`, `["\x01"]`, `[tru]`, `[nul]`, `{"a":1,}`, `[1,]`, `{"a" 1}`, ` [ ] `, `[] x`,
	`"\\"`, `["a\\"]`, `{"\u0061ddress":"0x"}`,
}

// badNumbers are number literals a lax reader may take for JSON; each seed puts them where the
// scanner skips a value (an unknown field of an otherwise valid object).
var badNumbers = []string{"01", "-01", "1.", "1.e5", "1e", "1e+", "-", "00", "1E+-1"}

var (
	zeroHash    = `"0x` + strings.Repeat("00", 32) + `"`
	zeroAddress = `"0x` + strings.Repeat("00", 20) + `"`
)

// withBadNumbers wraps each bad number (and a good one) into a value of the target's shape.
func withBadNumbers(f *testing.F, wrap func(n string) string) {
	for _, n := range append([]string{"-0.5e+10"}, badNumbers...) {
		f.Add([]byte(wrap(n)))
	}
}

func logObject(extra string) string {
	return `{"address":` + zeroAddress + `,"topics":[],"data":"0x","transactionHash":` + zeroHash + extra + `}`
}

// nodeShaped reports whether b looks like what a node writes: no escapes, and in every object
// each key once, none equal to a known field but for case (encoding/json matches keys
// case-insensitively and keeps the last duplicate; the scanner matches exactly).
func nodeShaped(b []byte, fields []string) bool {
	if bytes.IndexByte(b, '\\') >= 0 {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	type frame struct {
		object bool
		keys   map[string]bool
		atKey  bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return true // end, or a grammar error the other checks report
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.atKey {
			if k, ok := tok.(string); ok {
				if top.keys[k] {
					return false
				}
				top.keys[k] = true
				for _, f := range fields {
					if k != f && strings.EqualFold(k, f) {
						return false
					}
				}
				top.atKey = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, keys: map[string]bool{}, atKey: true})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].atKey = true // a value ended: a key comes next
		}
	}
}

// agree checks one input against the oracle. equal compares the two decodings ("" if equal).
func agree(t *testing.T, b []byte, fields []string, err, oracleErr error, equal func() string) {
	t.Helper()
	if err == nil && !json.Valid(b) {
		t.Fatalf("scanner accepted malformed JSON %q", b)
	}
	if oracleErr != nil || !nodeShaped(b, fields) {
		return
	}
	if err != nil {
		t.Fatalf("scanner rejected what encoding/json with go-ethereum's types decodes: %v\ninput %q", err, b)
	}
	if d := equal(); d != "" {
		t.Fatalf("decodings differ: %s\ninput %q", d, b)
	}
}

// sameLogs compares logs, an empty slice equal to nil.
func sameLogs(got, want []types.Log) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d logs, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if len(g.Topics) == 0 && len(w.Topics) == 0 {
			g.Topics, w.Topics = nil, nil
		}
		if len(g.Data) == 0 && len(w.Data) == 0 {
			g.Data, w.Data = nil, nil
		}
		if !reflect.DeepEqual(g, w) {
			return fmt.Sprintf("log %d: %+v, want %+v", i, g, w)
		}
	}
	return ""
}

var logFields = []string{"address", "topics", "data", "blockNumber", "transactionHash", "transactionIndex",
	"blockHash", "blockTimestamp", "logIndex", "removed"}

func FuzzScanLogs(f *testing.F) {
	for _, s := range answerSeeds(f, "eth_getLogs.json") {
		f.Add(s)
	}
	for _, s := range grammarSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(`[` + logObject(`,"blockNumber":"0x01","removed":false`) + `]`))
	withBadNumbers(f, func(n string) string { return `[` + logObject(`,"x":`+n) + `]` })
	f.Fuzz(func(t *testing.T, b []byte) {
		var got logList
		err := got.UnmarshalJSON(b)
		var want []types.Log
		oerr := json.Unmarshal(b, &want)
		agree(t, b, logFields, err, oerr, func() string { return sameLogs(got, want) })
		if oerr != nil {
			return
		}
		again, merr := json.Marshal(want)
		if merr != nil {
			t.Fatal(merr)
		}
		var round logList
		if err := round.UnmarshalJSON(again); err != nil {
			t.Fatalf("scanner rejected go-ethereum's encoding %q: %v", again, err)
		}
		if d := sameLogs(round, want); d != "" {
			t.Fatalf("go-ethereum's encoding %q decodes differently: %s", again, d)
		}
	})
}

// receiptOracle is what the scanner reads of a receipt, in go-ethereum's JSON types.
type receiptOracle struct {
	TxHash            *common.Hash    `json:"transactionHash"`
	BlockHash         *common.Hash    `json:"blockHash"`
	BlockNumber       *hexutil.Uint64 `json:"blockNumber"`
	TxIndex           *hexutil.Uint64 `json:"transactionIndex"`
	GasUsed           *hexutil.Uint64 `json:"gasUsed"`
	EffectiveGasPrice *hexutil.Big    `json:"effectiveGasPrice"`
	From              common.Address  `json:"from"`
	To                *common.Address `json:"to"`
	Logs              []types.Log     `json:"logs"`
}

var receiptFields = append([]string{"gasUsed", "effectiveGasPrice", "from", "to", "logs"}, logFields...)

func (o *receiptOracle) check() error {
	if o.TxHash == nil || o.BlockHash == nil || o.GasUsed == nil {
		return fmt.Errorf("receipt without transactionHash, blockHash or gasUsed")
	}
	return nil
}

func u64(p *hexutil.Uint64) uint64 {
	if p == nil {
		return 0
	}
	return uint64(*p)
}

func bigOf(p *hexutil.Big) *big.Int {
	if p == nil {
		return nil
	}
	return (*big.Int)(p)
}

func sameBig(a, b *big.Int) bool {
	return (a == nil) == (b == nil) && (a == nil || a.Cmp(b) == 0)
}

func sameReceipts(got receiptList, want []receiptOracle) string {
	if got.Null != (want == nil) || len(got.List) != len(want) {
		return fmt.Sprintf("null %v, %d receipts; want %d", got.Null, len(got.List), len(want))
	}
	var wantLogs []types.Log
	for i, w := range want {
		g := got.List[i]
		if g.TxHash != *w.TxHash || g.BlockHash != *w.BlockHash || g.BlockNumber != u64(w.BlockNumber) ||
			g.TxIndex != u64(w.TxIndex) || g.GasUsed != u64(w.GasUsed) || !sameBig(g.EffectiveGasPrice, bigOf(w.EffectiveGasPrice)) ||
			g.From != w.From || !reflect.DeepEqual(g.To, w.To) {
			return fmt.Sprintf("receipt %d: %+v, want %+v", i, g, w)
		}
		if d := sameLogs(g.Logs, w.Logs); d != "" {
			return fmt.Sprintf("receipt %d: %s", i, d)
		}
		wantLogs = append(wantLogs, w.Logs...)
	}
	return sameLogs(got.Logs, wantLogs)
}

func FuzzScanBlockReceipts(f *testing.F) {
	for _, s := range answerSeeds(f, "eth_getBlockReceipts.json") {
		f.Add(s)
	}
	for _, s := range grammarSeeds {
		f.Add([]byte(s))
	}
	withBadNumbers(f, func(n string) string {
		return `[{"transactionHash":` + zeroHash + `,"blockHash":` + zeroHash + `,"gasUsed":"0x1","x":` + n + `,"logs":[` + logObject("") + `]}]`
	})
	f.Fuzz(func(t *testing.T, b []byte) {
		got := receiptList{WithLogs: true}
		err := got.UnmarshalJSON(b)
		var want []receiptOracle
		oerr := json.Unmarshal(b, &want)
		for i := range want {
			if oerr == nil {
				oerr = want[i].check()
			}
		}
		if oerr == nil && want == nil && !bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
			oerr = fmt.Errorf("not an array") // cannot happen: encoding/json errs first
		}
		agree(t, b, receiptFields, err, oerr, func() string { return sameReceipts(got, want) })
	})
}

// txOracle is what the scanner reads of a transaction, in go-ethereum's JSON types.
type txOracle struct {
	Hash        *common.Hash    `json:"hash"`
	Type        *hexutil.Uint64 `json:"type"`
	BlockHash   *common.Hash    `json:"blockHash"`
	BlockNumber *hexutil.Uint64 `json:"blockNumber"`
	From        common.Address  `json:"from"`
	To          *common.Address `json:"to"`
	Value       *hexutil.Big    `json:"value"`
	GasPrice    *hexutil.Big    `json:"gasPrice"`
	Input       *hexutil.Bytes  `json:"input"`
}

var txFields = []string{"hash", "type", "blockHash", "blockNumber", "from", "to", "value", "gasPrice", "input"}

func sameTx(g rpcTx, w txOracle) string {
	var input []byte
	if w.Input != nil {
		input = *w.Input
	}
	ok := g.Hash == *w.Hash && g.Type == u64(w.Type) && reflect.DeepEqual(g.BlockHash, w.BlockHash) &&
		(g.BlockNumber == nil) == (w.BlockNumber == nil) && (g.BlockNumber == nil || *g.BlockNumber == uint64(*w.BlockNumber)) &&
		g.From == w.From && reflect.DeepEqual(g.To, w.To) && sameBig(g.Value, bigOf(w.Value)) &&
		sameBig(g.GasPrice, bigOf(w.GasPrice)) && bytes.Equal(g.Input, input)
	if !ok {
		return fmt.Sprintf("%+v, want %+v", g, w)
	}
	return ""
}

func FuzzScanTransaction(f *testing.F) {
	for _, s := range answerSeeds(f, "eth_getTransactionByHash.json") {
		f.Add(s)
	}
	for _, s := range grammarSeeds {
		f.Add([]byte(s))
	}
	withBadNumbers(f, func(n string) string { return `{"hash":` + zeroHash + `,"x":` + n + `}` })
	f.Fuzz(func(t *testing.T, b []byte) {
		var got rpcTx
		err := got.UnmarshalJSON(b)
		var want txOracle
		oerr := json.Unmarshal(b, &want)
		if oerr == nil && want.Hash == nil {
			oerr = fmt.Errorf("transaction without a hash")
		}
		if oerr == nil && bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
			oerr = fmt.Errorf("null") // encoding/json leaves the struct as it was
		}
		agree(t, b, txFields, err, oerr, func() string { return sameTx(got, want) })
	})
}

// blockOracle is what the scanner reads of a block with its transactions.
type blockOracle struct {
	Hash         *common.Hash    `json:"hash"`
	Number       *hexutil.Uint64 `json:"number"`
	Timestamp    *hexutil.Uint64 `json:"timestamp"`
	Transactions *[]txOracle     `json:"transactions"`
}

func FuzzScanBlockWithTxs(f *testing.F) {
	for _, s := range answerSeeds(f, "eth_getBlockByNumber.json") {
		f.Add(s)
	}
	for _, s := range grammarSeeds {
		f.Add([]byte(s))
	}
	withBadNumbers(f, func(n string) string {
		return `{"hash":` + zeroHash + `,"number":"0x1","x":` + n + `,"transactions":[{"hash":` + zeroHash + `,"y":[` + n + `]}]}`
	})
	fields := append([]string{"number", "timestamp", "transactions"}, txFields...)
	f.Fuzz(func(t *testing.T, b []byte) {
		got := rpcBlockTxs{WithInput: true}
		err := got.UnmarshalJSON(b)
		var want *blockOracle
		oerr := json.Unmarshal(b, &want)
		if oerr == nil && want != nil {
			if want.Hash == nil || want.Number == nil || want.Transactions == nil {
				oerr = fmt.Errorf("block object without hash, number or transactions")
			}
			for _, tx := range derefTxs(want.Transactions) {
				if oerr == nil && tx.Hash == nil {
					oerr = fmt.Errorf("transaction without a hash")
				}
			}
		}
		agree(t, b, fields, err, oerr, func() string {
			if got.Null != (want == nil) {
				return fmt.Sprintf("null %v, want %v", got.Null, want == nil)
			}
			if want == nil {
				return ""
			}
			if got.Hash != *want.Hash || got.Number != uint64(*want.Number) || got.Timestamp != u64(want.Timestamp) ||
				len(got.Transactions) != len(*want.Transactions) {
				return fmt.Sprintf("block %x %d %d with %d txs, want %+v", got.Hash, got.Number, got.Timestamp, len(got.Transactions), want)
			}
			for i, w := range *want.Transactions {
				if d := sameTx(got.Transactions[i], w); d != "" {
					return fmt.Sprintf("tx %d: %s", i, d)
				}
			}
			return ""
		})
	})
}

func derefTxs(p *[]txOracle) []txOracle {
	if p == nil {
		return nil
	}
	return *p
}
