package store

import (
	"encoding/json"
	"sort"
	"strconv"

	"github.com/ethereum/go-ethereum/common"
)

// NotifyChannel is the channel every commit and revert notifies, in the same transaction:
// listeners see a change exactly when its data is visible.
const NotifyChannel = "echain_indexer_changes"

// maxPayload is PostgreSQL's NOTIFY limit (the payload must be shorter than 8000 bytes).
const maxPayload = 7999

// Change is the JSON payload of a notification:
//
//	{"block":N,"hash":"0x..","revert":false,"types":{"Ticket":["1-5"],"Event":null}}
//
// Types maps each changed entity type to the changed ids, or to null ("some ids") when listing
// them would pass the payload limit.
type Change struct {
	Block  int64               `json:"block"`
	Hash   string              `json:"hash"`
	Revert bool                `json:"revert"`
	Types  map[string][]string `json:"types"`
}

// ParseChange decodes a notification payload.
func ParseChange(payload string) (*Change, error) {
	var c Change
	if err := json.Unmarshal([]byte(payload), &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// changedIDs lists the entities the batch wrote, by type.
func (s *Store) changedIDs(b *Batch) map[string][]string {
	out := map[string][]string{}
	for _, t := range s.tables {
		for _, e := range b.types[t.idx].order {
			if len(e.vers) > 0 {
				out[t.typ.Name] = append(out[t.typ.Name], e.id)
			}
		}
	}
	return out
}

// changePayload renders the notification, replacing the longest id lists by null until it fits.
func changePayload(block int64, hash common.Hash, revert bool, ids map[string][]string) string {
	names := make([]string, 0, len(ids))
	for n := range ids {
		names = append(names, n)
	}
	sort.Strings(names)
	// A backfill batch changes tens of thousands of ids: drop the lists that cannot fit before
	// rendering any (ids need at least len+3 bytes each: quotes and a comma).
	estimate := map[string]int{}
	total := 0
	for n, l := range ids {
		for _, id := range l {
			estimate[n] += len(id) + 3
		}
		total += estimate[n]
	}
	skip := map[string]bool{}
	for total > maxPayload {
		longest := ""
		for _, n := range names {
			if !skip[n] && estimate[n] > 0 && (longest == "" || estimate[n] > estimate[longest]) {
				longest = n
			}
		}
		if longest == "" {
			break
		}
		skip[longest] = true
		total -= estimate[longest]
	}
	lists := map[string][]byte{}
	for n, l := range ids {
		if l == nil || skip[n] {
			continue // "some ids"
		}
		sort.Strings(l)
		b, _ := json.Marshal(l)
		lists[n] = b
	}
	render := func() string {
		buf := []byte(`{"block":`)
		buf = strconv.AppendInt(buf, block, 10)
		buf = append(buf, `,"hash":"`...)
		buf = append(buf, hash.Hex()...)
		buf = append(buf, `","revert":`...)
		buf = strconv.AppendBool(buf, revert)
		buf = append(buf, `,"types":{`...)
		for i, n := range names {
			if i > 0 {
				buf = append(buf, ',')
			}
			nb, _ := json.Marshal(n)
			buf = append(buf, nb...)
			buf = append(buf, ':')
			if l := lists[n]; l != nil {
				buf = append(buf, l...)
			} else {
				buf = append(buf, "null"...)
			}
		}
		return string(append(buf, "}}"...))
	}
	p := render()
	for len(p) > maxPayload {
		longest := ""
		for _, n := range names {
			if lists[n] != nil && (longest == "" || len(lists[n]) > len(lists[longest])) {
				longest = n
			}
		}
		if longest == "" {
			break // names alone cannot pass the limit with any sane schema
		}
		lists[longest] = nil
		p = render()
	}
	return p
}
