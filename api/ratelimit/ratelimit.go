// Package ratelimit is a token bucket per key (a client address, a webhook source) with a
// bounded table, shared by the API's per-client limit and the webhook receiver.
package ratelimit

import (
	"sync"
	"time"
)

// Limiter allows Rate events per second per key, in bursts of up to Burst. The table holds at
// most Max keys: when it fills, buckets that have refilled completely (idle keys) are dropped,
// and if that is not enough the table is reset, which fails open rather than refusing everyone
// because many addresses knocked.
type Limiter[K comparable] struct {
	mu      sync.Mutex
	rate    float64
	burst   float64
	max     int
	buckets map[K]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// New returns a limiter of rate events per second per key, burst deep, over at most max keys.
func New[K comparable](rate float64, burst, max int) *Limiter[K] {
	return &Limiter[K]{rate: rate, burst: float64(burst), max: max, buckets: make(map[K]*bucket)}
}

// Allow takes one token of key's bucket at now, and says whether there was one.
func (l *Limiter[K]) Allow(key K, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= l.max {
			l.sweep(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(l.burst, b.tokens+dt*l.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// Len is the number of keys the table holds.
func (l *Limiter[K]) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

func (l *Limiter[K]) sweep(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= l.max {
		clear(l.buckets)
	}
}
