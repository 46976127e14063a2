package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/common"
)

// Event types we turn into hints. Coinbase also sends types we have no use for (onramp, payments…);
// those are verified and answered 200, never retried into a storm.
var activityTypes = map[string]bool{
	"onchain.activity.detected":     true, // CDP v2, flat (or wrapped in data)
	"wallet.activity.detected":      true, // CDP v2 envelope, camelCase, numbers as strings
	"erc20_transfer":                true, // CDP v1
	"erc721_transfer":               true,
	"erc1155_transfer_single":       true,
	"erc1155_transfer_batch":        true,
	"smart_contract_event_activity": true,
}

// flexUint accepts a JSON number or a decimal (or 0x-hex) string: v2 onchain sends integers, the
// wallet envelope and v1 send strings.
type flexUint struct {
	v   uint64
	set bool
}

func (f *flexUint) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		s = strings.TrimSpace(s)
		if s == "" {
			return nil
		}
	}
	var (
		v   uint64
		err error
	)
	if rest, ok := strings.CutPrefix(s, "0x"); ok {
		v, err = strconv.ParseUint(rest, 16, 64)
	} else {
		v, err = strconv.ParseUint(s, 10, 64)
	}
	if err != nil {
		return fmt.Errorf("not a non-negative integer: %s", b)
	}
	f.v, f.set = v, true
	return nil
}

// fields is the union of the payload shapes' fields that a hint needs. encoding/json matches keys
// case-insensitively, which is harmless here: no two names below differ only in case.
type fields struct {
	EventType    string   `json:"eventType"`
	EventTypeS   string   `json:"event_type"`
	EventID      string   `json:"eventId"`
	Network      string   `json:"network"`
	BlockNumberS flexUint `json:"block_number"`
	BlockNumber  flexUint `json:"blockNumber"`
	TxHashS      string   `json:"transaction_hash"`
	TxHash       string   `json:"transactionHash"`
	LogIndexS    flexUint `json:"log_index"`
	LogIndex     flexUint `json:"logIndex"`
	ContractS    string   `json:"contract_address"`
	Contract     string   `json:"contractAddress"`
	// Data wraps the activity in wallet.activity.detected, and in some documented
	// onchain.activity.detected examples.
	Data json.RawMessage `json:"data"`
}

// event is a delivery reduced to what a hint needs.
type event struct {
	Type     string
	ID       string // body eventId when the header is absent
	Network  string
	Block    uint64
	TxHash   common.Hash
	HasTx    bool
	LogIndex uint64
	HasLog   bool
	Contract common.Address
	HasAddr  bool
}

var errMalformed = errors.New("malformed payload")

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func firstNum(a, b flexUint) flexUint {
	if a.set {
		return a
	}
	return b
}

// parsePayload decodes a verified body. headerType is X-Event-Type, which wins over the body's.
func parsePayload(body []byte, headerType string) (event, error) {
	var ev event
	var top fields
	if err := json.Unmarshal(body, &top); err != nil {
		return ev, fmt.Errorf("%w: %w", errMalformed, err)
	}
	merged := top
	if d := bytes.TrimSpace(top.Data); len(d) > 0 && d[0] == '{' {
		var inner fields
		if err := json.Unmarshal(d, &inner); err != nil {
			return ev, fmt.Errorf("%w: data: %w", errMalformed, err)
		}
		// The envelope names the event; the wrapped object carries the log.
		merged.Network = first(top.Network, inner.Network)
		merged.BlockNumberS = firstNum(firstNum(top.BlockNumberS, top.BlockNumber), firstNum(inner.BlockNumberS, inner.BlockNumber))
		merged.TxHashS = first(first(top.TxHashS, top.TxHash), first(inner.TxHashS, inner.TxHash))
		merged.LogIndexS = firstNum(firstNum(top.LogIndexS, top.LogIndex), firstNum(inner.LogIndexS, inner.LogIndex))
		merged.ContractS = first(first(top.ContractS, top.Contract), first(inner.ContractS, inner.Contract))
		merged.EventType = first(first(top.EventType, top.EventTypeS), first(inner.EventType, inner.EventTypeS))
		merged.EventID = first(top.EventID, inner.EventID)
	}
	ev.Type = first(strings.TrimSpace(headerType), first(merged.EventType, merged.EventTypeS))
	ev.ID = merged.EventID
	ev.Network = strings.ToLower(strings.TrimSpace(merged.Network))
	ev.Block = firstNum(merged.BlockNumberS, merged.BlockNumber).v
	if li := firstNum(merged.LogIndexS, merged.LogIndex); li.set {
		ev.LogIndex, ev.HasLog = li.v, true
	}
	if s := first(merged.TxHashS, merged.TxHash); s != "" {
		b, err := decodeHex(s, common.HashLength)
		if err != nil {
			return ev, fmt.Errorf("%w: transaction hash %q: %w", errMalformed, s, err)
		}
		ev.TxHash, ev.HasTx = common.BytesToHash(b), true
	}
	if s := first(merged.ContractS, merged.Contract); s != "" {
		b, err := decodeHex(s, common.AddressLength)
		if err != nil {
			return ev, fmt.Errorf("%w: contract address %q: %w", errMalformed, s, err)
		}
		ev.Contract, ev.HasAddr = common.BytesToAddress(b), true
	}
	return ev, nil
}

func decodeHex(s string, n int) ([]byte, error) {
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, "0x")
	if !ok {
		rest, ok = strings.CutPrefix(s, "0X")
	}
	if !ok || len(rest) != 2*n {
		return nil, fmt.Errorf("want 0x and %d hex digits", 2*n)
	}
	b := make([]byte, n)
	for i := range n {
		hi, ok1 := unhex(rest[2*i])
		lo, ok2 := unhex(rest[2*i+1])
		if !ok1 || !ok2 {
			return nil, errors.New("not hex")
		}
		b[i] = hi<<4 | lo
	}
	return b, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
