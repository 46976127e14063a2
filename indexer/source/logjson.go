package source

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// wireLog is a log as JSON-RPC carries it, with plain string fields: encoding/json fills those
// in its single pass, where types.Log's own UnmarshalJSON re-parses every log and every field
// through further UnmarshalJSON calls. On a large eth_getLogs answer that halves our decoding.
type wireLog struct {
	Address        string   `json:"address"`
	Topics         []string `json:"topics"`
	Data           string   `json:"data"`
	BlockNumber    string   `json:"blockNumber"`
	TxHash         string   `json:"transactionHash"`
	TxIndex        string   `json:"transactionIndex"`
	BlockHash      string   `json:"blockHash"`
	BlockTimestamp string   `json:"blockTimestamp"`
	LogIndex       string   `json:"logIndex"`
	Removed        bool     `json:"removed"`
}

var errLogField = errors.New("bad log field")

func (w *wireLog) toLog(l *types.Log) error {
	var err error
	fixed := func(dst []byte, s, name string) {
		if err != nil {
			return
		}
		if len(s) != 2+2*len(dst) || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') {
			err = fmt.Errorf("%w %s: %q", errLogField, name, s)
			return
		}
		if _, e := hex.Decode(dst, []byte(s[2:])); e != nil {
			err = fmt.Errorf("%w %s: %v", errLogField, name, e)
		}
	}
	quantity := func(s, name string, optional bool) uint64 {
		if err != nil || (optional && s == "") {
			return 0
		}
		if len(s) < 3 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') {
			err = fmt.Errorf("%w %s: %q", errLogField, name, s)
			return 0
		}
		n, e := strconv.ParseUint(s[2:], 16, 64)
		if e != nil {
			err = fmt.Errorf("%w %s: %v", errLogField, name, e)
		}
		return n
	}
	if w.Address == "" || w.TxHash == "" || w.Topics == nil || w.Data == "" {
		return fmt.Errorf("%w: log lacks address, topics, data or transactionHash", errLogField)
	}
	fixed(l.Address[:], w.Address, "address")
	l.Topics = make([]common.Hash, len(w.Topics))
	for i, t := range w.Topics {
		fixed(l.Topics[i][:], t, "topic")
	}
	if err == nil {
		if len(w.Data) < 2 || w.Data[0] != '0' || (w.Data[1] != 'x' && w.Data[1] != 'X') || len(w.Data)%2 != 0 {
			return fmt.Errorf("%w data: %q", errLogField, truncate(w.Data, 20))
		}
		l.Data = make([]byte, (len(w.Data)-2)/2)
		if _, e := hex.Decode(l.Data, []byte(w.Data[2:])); e != nil {
			return fmt.Errorf("%w data: %v", errLogField, e)
		}
	}
	l.BlockNumber = quantity(w.BlockNumber, "blockNumber", true)
	fixed(l.TxHash[:], w.TxHash, "transactionHash")
	l.TxIndex = uint(quantity(w.TxIndex, "transactionIndex", true))
	if w.BlockHash != "" {
		fixed(l.BlockHash[:], w.BlockHash, "blockHash")
	}
	l.BlockTimestamp = quantity(w.BlockTimestamp, "blockTimestamp", true)
	l.Index = uint(quantity(w.LogIndex, "logIndex", true))
	l.Removed = w.Removed
	return err
}

func decodeWireLogs(ws []wireLog) ([]types.Log, error) {
	out := make([]types.Log, len(ws))
	for i := range ws {
		if err := ws[i].toLog(&out[i]); err != nil {
			return nil, fmt.Errorf("%w: log %d: %v", errBadResponse, i, err)
		}
	}
	return out, nil
}
