package echaintest

import (
	"math/big"
	"reflect"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
)

func TestDiff(t *testing.T) {
	want := State{
		"Ticket": {
			"1-1": {"id": "1-1", "owner": "0xaa", "usedAt": nil, "isUsed": false},
			"1-2": {"id": "1-2", "owner": "0xbb"},
		},
		"Event": {},
	}
	got := State{
		"Ticket": {
			"1-1": {"id": "1-1", "owner": "0xab", "usedAt": "5", "isUsed": false},
			"1-3": {"id": "1-3", "owner": "0xcc"},
		},
		"Event": {},
	}
	d := Diff(want, got)
	exp := []string{
		`Ticket 1-1 owner: want "0xaa" got "0xab"`,
		`Ticket 1-1 usedAt: want null got "5"`,
		`Ticket 1-2: missing (want {id:"1-2", owner:"0xbb"})`,
		`Ticket 1-3: not expected (got {id:"1-3", owner:"0xcc"})`,
	}
	if !reflect.DeepEqual(d, exp) {
		t.Errorf("Diff:\n%q\nwant\n%q", d, exp)
	}
	if d := Diff(want, want); len(d) != 0 {
		t.Errorf("a state differs from itself: %v", d)
	}
	if d := Diff(State{"A": {"x": {"id": "x", "n": int64(3)}}}, State{"A": {"x": {"id": "x", "n": int32(3)}}}); len(d) != 0 {
		t.Errorf("int32 and int64 of the same value differ: %v", d)
	}
}

// The oracle's hand decoder agrees with go-ethereum's encoder on the shapes it reads.
func TestWordsDecoder(t *testing.T) {
	str, _ := abi.NewType("string", "", nil)
	u256, _ := abi.NewType("uint256", "", nil)
	addr, _ := abi.NewType("address", "", nil)
	args := abi.Arguments{{Type: u256}, {Type: addr}, {Type: str}, {Type: u256}}
	a := common.HexToAddress("0x00000000000000000000000000000000000000ff")
	data, err := args.Pack(big.NewInt(7), a, "Lagos Live ✓", big.NewInt(1e18))
	if err != nil {
		t.Fatal(err)
	}
	w := &words{data: data}
	if w.big(0).Int64() != 7 || w.addr(1) != a || w.str(2) != "Lagos Live ✓" || w.big(3).String() != "1000000000000000000" || w.err != nil {
		t.Errorf("decoded %v %v %q %v err %v", w.big(0), w.addr(1), w.str(2), w.big(3), w.err)
	}
	short := &words{data: data[:40]}
	short.str(2)
	if short.err == nil {
		t.Error("a string beyond the data decoded without error")
	}
}
