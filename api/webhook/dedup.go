package webhook

import (
	"sync"
	"time"
)

// seenSet remembers keys for at least ttl/2 and at most ttl, in at most max entries: two
// generations that rotate when the newer one is full or old enough. Coinbase retries for a long
// time, but a late retry of a hint is harmless (the follower ignores blocks it has), so the bound
// is about memory, not correctness.
type seenSet struct {
	mu        sync.Mutex
	cur, prev map[string]struct{}
	started   time.Time
	ttl       time.Duration
	half      int // capacity of one generation
}

func newSeenSet(ttl time.Duration, max int) *seenSet {
	half := max / 2
	if half < 1 {
		half = 1
	}
	return &seenSet{cur: make(map[string]struct{}), prev: map[string]struct{}{}, ttl: ttl, half: half}
}

// add records the keys and reports whether any of them was already present. Empty keys are skipped.
func (s *seenSet) add(now time.Time, keys ...string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started.IsZero() {
		s.started = now
	}
	if len(s.cur) >= s.half || now.Sub(s.started) >= s.ttl/2 {
		if now.Sub(s.started) >= s.ttl {
			// Idle for longer than a full TTL: the previous generation is too old as well.
			s.prev = map[string]struct{}{}
		} else {
			s.prev = s.cur
		}
		s.cur = make(map[string]struct{}, len(s.prev))
		s.started = now
	}
	dup := false
	for _, k := range keys {
		if k == "" {
			continue
		}
		if _, ok := s.cur[k]; ok {
			dup = true
			continue
		}
		if _, ok := s.prev[k]; ok {
			dup = true
		}
		s.cur[k] = struct{}{}
	}
	return dup
}

func (s *seenSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.cur) + len(s.prev)
}
