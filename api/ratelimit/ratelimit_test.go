package ratelimit

import (
	"fmt"
	"testing"
	"time"
)

func TestBurstThenRefill(t *testing.T) {
	l := New[string](2, 3, 10)
	now := time.Unix(0, 0)
	for i := range 3 {
		if !l.Allow("a", now) {
			t.Fatalf("token %d of the burst refused", i)
		}
	}
	if l.Allow("a", now) {
		t.Fatal("a fourth event in the same instant was allowed past a burst of 3")
	}
	if !l.Allow("b", now) {
		t.Fatal("another key shares a's bucket")
	}
	if !l.Allow("a", now.Add(500*time.Millisecond)) {
		t.Fatal("half a second at 2/s refilled no token")
	}
	if l.Allow("a", now.Add(500*time.Millisecond)) {
		t.Fatal("half a second at 2/s refilled more than one token")
	}
}

func TestTableBounded(t *testing.T) {
	l := New[string](1, 1, 5)
	now := time.Unix(0, 0)
	for i := range 50 {
		if !l.Allow(fmt.Sprint(i), now) {
			t.Fatalf("new key %d refused", i)
		}
	}
	if n := l.Len(); n > 5 {
		t.Fatalf("%d buckets, bound 5", n)
	}
}
