package indexer

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/ethereum/go-ethereum/common"

	"github.com/echain/echain-indexer/store"
)

// chainState is the follower's in-memory copy of what the store committed: the cursor, the
// unfinalized window and the learned data sources. It changes only after the store accepted a
// commit or a revert, so a restart that reloads it from the store sees the same thing.
type chainState struct {
	// head is the cursor; Hash is zero before the first block (nothing to check parents against).
	head store.BlockPtr
	// window holds the committed blocks above finality, ascending, for parent checks and walks.
	window    []store.BlockPtr
	finalized int64

	// sources are append-only between reverts, in discovery (block) order. The backfill pipeline
	// reads prefixes of list from other goroutines while the discovery stage appends, hence mu.
	mu     sync.RWMutex
	list   []store.DataSource
	byAddr map[common.Address]store.DataSource
}

func loadState(ctx context.Context, st *store.Store, start int64) (*chainState, error) {
	s := &chainState{byAddr: map[common.Address]store.DataSource{}}
	head, err := st.Head(ctx)
	if err != nil {
		return nil, fmt.Errorf("load cursor: %w", err)
	}
	if head != nil {
		s.head = *head
	} else {
		s.head = store.BlockPtr{Number: start - 1}
	}
	w, err := st.Window(ctx)
	if err != nil {
		return nil, fmt.Errorf("load block window: %w", err)
	}
	s.window = w
	if len(w) > 0 {
		s.finalized = w[0].Number - 1
	} else {
		s.finalized = s.head.Number
	}
	ds, err := st.DataSources(ctx)
	if err != nil {
		return nil, fmt.Errorf("load data sources: %w", err)
	}
	sort.SliceStable(ds, func(i, j int) bool { return ds[i].Block < ds[j].Block })
	for _, d := range ds {
		s.addSource(d)
	}
	return s, nil
}

// hashAt returns the hash of the committed block at n when the follower still knows it.
func (s *chainState) hashAt(n int64) (store.BlockPtr, bool) {
	if n == s.head.Number && s.head.Hash != (common.Hash{}) {
		return s.head, true
	}
	i := sort.Search(len(s.window), func(i int) bool { return s.window[i].Number >= n })
	if i < len(s.window) && s.window[i].Number == n {
		return s.window[i], true
	}
	return store.BlockPtr{}, false
}

// lowestKnown is the lowest block whose hash is known (the floor of any reorg walk).
func (s *chainState) lowestKnown() int64 {
	if len(s.window) > 0 {
		return s.window[0].Number
	}
	return s.head.Number
}

// advance records committed blocks (ascending) and the new finality.
func (s *chainState) advance(head store.BlockPtr, blocks []store.BlockPtr, finalized int64) {
	s.head = head
	s.window = append(s.window, blocks...)
	if finalized > s.finalized {
		s.finalized = finalized
	}
	i := sort.Search(len(s.window), func(i int) bool { return s.window[i].Number > s.finalized })
	if i > 0 {
		s.window = append(s.window[:0:0], s.window[i:]...)
	}
}

// revert forgets everything after `to`, mirroring store.RevertTo.
func (s *chainState) revert(to store.BlockPtr) {
	i := sort.Search(len(s.window), func(i int) bool { return s.window[i].Number > to.Number })
	s.window = s.window[:i:i]
	s.head = to
	if s.finalized > to.Number {
		s.finalized = to.Number
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	j := sort.Search(len(s.list), func(i int) bool { return s.list[i].Block > to.Number })
	for _, d := range s.list[j:] {
		delete(s.byAddr, d.Address)
	}
	s.list = s.list[:j:j]
}

// addSource records a data source; it reports false when the address was already known.
func (s *chainState) addSource(d store.DataSource) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byAddr[d.Address]; ok {
		return false
	}
	s.byAddr[d.Address] = d
	s.list = append(s.list, d)
	return true
}

func (s *chainState) source(a common.Address) (store.DataSource, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, ok := s.byAddr[a]
	return d, ok
}

// sourceAddrs returns the addresses of every known data source. The slice is a snapshot.
func (s *chainState) sourceAddrs() []common.Address {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]common.Address, len(s.list))
	for i, d := range s.list {
		out[i] = d.Address
	}
	return out
}

func (s *chainState) sourceCount() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.list)
}
