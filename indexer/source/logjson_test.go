package source

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/ethereum/go-ethereum/common"
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
	}
	return logs
}

func TestWireLogsDecodeLikeGoEthereum(t *testing.T) {
	want := sampleLogs(300)
	raw, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var ws []wireLog
	if err := json.Unmarshal(raw, &ws); err != nil {
		t.Fatal(err)
	}
	got, err := decodeWireLogs(ws)
	if err != nil {
		t.Fatal(err)
	}
	var viaGeth []types.Log
	if err := json.Unmarshal(raw, &viaGeth); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(got, viaGeth) {
		t.Fatal("wire decoding differs from go-ethereum's")
	}
	for _, bad := range []string{
		`[{"address":"0x12","topics":[],"data":"0x","transactionHash":"0x` + string(make([]byte, 0)) + `"}]`,
		`[{"topics":[],"data":"0x","transactionHash":"0x00"}]`,
		`[{"address":"0x0000000000000000000000000000000000000000","topics":["0xzz"],"data":"0x","transactionHash":"0x0000000000000000000000000000000000000000000000000000000000000000"}]`,
		`[{"address":"0x0000000000000000000000000000000000000000","topics":[],"data":"0x1","transactionHash":"0x0000000000000000000000000000000000000000000000000000000000000000"}]`,
	} {
		var ws []wireLog
		if err := json.Unmarshal([]byte(bad), &ws); err != nil {
			continue
		}
		if _, err := decodeWireLogs(ws); err == nil {
			t.Errorf("accepted %s", bad)
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
	b.Run("wire", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			var ws []wireLog
			if err := json.Unmarshal(raw, &ws); err != nil {
				b.Fatal(err)
			}
			if _, err := decodeWireLogs(ws); err != nil {
				b.Fatal(err)
			}
		}
	})
}
