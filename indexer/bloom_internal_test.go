package indexer

import (
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// TestBloomChoices: a block may hold a handled log only when its bloom has one of the handled
// topics and one of the fixed contracts' or known sources' addresses; a bloom is sparse while at
// most a quarter of its bits are set.
func TestBloomChoices(t *testing.T) {
	fixed, clone, other := common.Address{1}, common.Address{2}, common.Address{3}
	topic, otherTopic := common.Hash{10}, common.Hash{11}
	f := &logFilter{fixedAddrs: []common.Address{fixed}, allTopics: []common.Hash{topic}}
	bloom := func(items ...[]byte) types.Bloom {
		var b types.Bloom
		for _, x := range items {
			b.Add(x)
		}
		return b
	}
	for _, c := range []struct {
		name    string
		b       types.Bloom
		sources []common.Address
		want    bool
	}{
		{"fixed contract, handled topic", bloom(fixed[:], topic[:]), nil, true},
		{"fixed contract, other topic", bloom(fixed[:], otherTopic[:]), nil, false},
		{"other contract, handled topic", bloom(other[:], topic[:]), nil, false},
		{"known source, handled topic", bloom(clone[:], topic[:]), []common.Address{clone}, true},
		{"source not known yet", bloom(clone[:], topic[:]), nil, false},
		{"empty block", types.Bloom{}, []common.Address{clone}, false},
	} {
		if got := f.mayHold(c.b, c.sources); got != c.want {
			t.Errorf("%s: mayHold %v, want %v", c.name, got, c.want)
		}
	}

	if !bloomSparse(types.Bloom{}) || !bloomSparse(bloom(fixed[:], topic[:], other[:])) {
		t.Error("a bloom of a few entries is not sparse")
	}
	var full types.Bloom
	for i := range full {
		full[i] = 0xff
	}
	if bloomSparse(full) {
		t.Error("a saturated bloom is sparse")
	}
	var quarter types.Bloom
	for i := 0; i < len(quarter)/4; i++ {
		quarter[i] = 0xff
	}
	if !bloomSparse(quarter) {
		t.Error("a bloom with a quarter of its bits set is not sparse")
	}
	quarter[len(quarter)/4] = 1
	if bloomSparse(quarter) {
		t.Error("a bloom with more than a quarter of its bits set is sparse")
	}
}
