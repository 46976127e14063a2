package source

import (
	"errors"
	"sync"
	"testing"
	"time"
)

func TestRangeSizerGrowsWhileSmallAndFast(t *testing.T) {
	r := NewRangeSizer(RangeSizerConfig{Initial: 100, Max: 5000, TargetLogs: 1000, TargetDuration: time.Second, Growth: 2})
	if r.Size() != 100 {
		t.Fatalf("initial %d", r.Size())
	}
	r.Success(100, 10, 50*time.Millisecond)
	if r.Size() != 200 {
		t.Fatalf("after a small fast answer: %d, want 200 (growth capped at 2x)", r.Size())
	}
	for range 20 {
		r.Success(r.Size(), 0, time.Millisecond)
	}
	if r.Size() != 5000 {
		t.Fatalf("should reach Max: %d", r.Size())
	}
	// A short range at the tip does not shrink it.
	r.Success(3, 0, time.Millisecond)
	if r.Size() != 5000 {
		t.Fatalf("a short answer shrank the size to %d", r.Size())
	}
}

func TestRangeSizerSteersToTargets(t *testing.T) {
	r := NewRangeSizer(RangeSizerConfig{Initial: 1000, Max: 10000, TargetLogs: 1000, TargetDuration: time.Second})
	// 1000 blocks gave 4000 logs: density 4/block, ideal 250 blocks.
	r.Success(1000, 4000, 100*time.Millisecond)
	if r.Size() != 250 {
		t.Fatalf("after a too-big answer: %d, want 250", r.Size())
	}
	// Growth toward the ideal stops at it: 250 blocks with 500 logs → ideal 500.
	r.Success(250, 500, 100*time.Millisecond)
	if r.Size() != 500 {
		t.Fatalf("grew to %d, want 500", r.Size())
	}
	r.Success(500, 1000, 100*time.Millisecond)
	if r.Size() != 500 {
		t.Fatalf("at target: %d, want 500", r.Size())
	}
	// Too slow: 500 blocks took 4s → ideal 125, but shrink at most 4x at once.
	r.Success(500, 10, 4*time.Second)
	if r.Size() != 125 {
		t.Fatalf("after a slow answer: %d, want 125", r.Size())
	}
	r2 := NewRangeSizer(RangeSizerConfig{Initial: 1000, TargetDuration: time.Second})
	r2.Success(1000, 0, 100*time.Second) // ideal 10, limited to a 4x cut
	if r2.Size() != 250 {
		t.Fatalf("one slow answer cut %d, want 250", r2.Size())
	}
}

func TestRangeSizerFailureHonoursSuggestion(t *testing.T) {
	r := NewRangeSizer(RangeSizerConfig{Initial: 2000, Max: 10000, CeilingSuccesses: 3})
	err := &RangeTooLargeError{From: 100, To: 2099, SuggestedFrom: 100, SuggestedTo: 399, Cause: errors.New("x")}
	to, ok := r.Failure(100, 2099, err)
	if !ok || to != 399 || r.Size() != 300 {
		t.Fatalf("got to=%d ok=%v size=%d, want 399 true 300", to, ok, r.Size())
	}
	// The suggested size is a ceiling for a while even when answers are tiny.
	r.Success(300, 0, time.Millisecond)
	r.Success(300, 0, time.Millisecond)
	if r.Size() != 300 {
		t.Fatalf("grew past the ceiling: %d", r.Size())
	}
	r.Success(300, 0, time.Millisecond) // third comfortable answer lifts it
	r.Success(300, 0, time.Millisecond)
	if r.Size() != 600 {
		t.Fatalf("after the ceiling lifted: %d, want 600", r.Size())
	}
	// A suggestion below Min wins: the provider knows its limit.
	r3 := NewRangeSizer(RangeSizerConfig{Initial: 100, Min: 10})
	to, ok = r3.Failure(0, 99, &RangeTooLargeError{SuggestedFrom: 0, SuggestedTo: 4, Cause: errors.New("x")})
	if !ok || to != 4 || r3.Size() != 5 {
		t.Fatalf("suggestion below Min: to=%d size=%d", to, r3.Size())
	}
}

func TestRangeSizerFailureHalvesWithoutSuggestion(t *testing.T) {
	r := NewRangeSizer(RangeSizerConfig{Initial: 1000, Min: 2})
	tooLarge := &RangeTooLargeError{Cause: errors.New("query timeout exceeded")}
	to, ok := r.Failure(0, 999, tooLarge)
	if !ok || to != 499 || r.Size() != 500 {
		t.Fatalf("got to=%d size=%d, want 499 500", to, r.Size())
	}
	// A suggestion that does not start at from is ignored.
	to, ok = r.Failure(0, 499, &RangeTooLargeError{SuggestedFrom: 7, SuggestedTo: 20, Cause: errors.New("x")})
	if !ok || to != 249 {
		t.Fatalf("misaligned suggestion: to=%d", to)
	}
	for r.Size() > 2 {
		if _, ok := r.Failure(0, r.Size()-1, tooLarge); !ok {
			t.Fatalf("failed to shrink from %d", r.Size())
		}
	}
	if _, ok := r.Failure(5, 6, tooLarge); ok {
		t.Fatal("a range of Min blocks cannot shrink")
	}
	if _, ok := r.Failure(0, 100, errors.New("connection reset")); ok {
		t.Fatal("only RangeTooLargeError shrinks the range")
	}
	// An old failure of a range longer than the current size does not grow it.
	r4 := NewRangeSizer(RangeSizerConfig{Initial: 50})
	r4.Failure(0, 999, tooLarge)
	if r4.Size() != 50 {
		t.Fatalf("stale failure changed size to %d", r4.Size())
	}
}

func TestRangeSizerNext(t *testing.T) {
	r := NewRangeSizer(RangeSizerConfig{Initial: 10})
	if got := r.Next(100, 1000); got != 109 {
		t.Fatalf("Next = %d, want 109", got)
	}
	if got := r.Next(100, 104); got != 104 {
		t.Fatalf("Next capped = %d, want 104", got)
	}
}

func TestRangeSizerConcurrent(t *testing.T) {
	r := NewRangeSizer(RangeSizerConfig{Initial: 100, Max: 1000})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 200 {
				if (i+j)%7 == 0 {
					r.Failure(0, r.Size()-1, &RangeTooLargeError{Cause: errors.New("x")})
				} else {
					r.Success(r.Size(), 10, time.Millisecond)
				}
				if s := r.Size(); s < 1 || s > 1000 {
					t.Errorf("size %d out of bounds", s)
					return
				}
			}
		}()
	}
	wg.Wait()
	st := r.Stats()
	if st.Successes+st.Failures == 0 {
		t.Fatal("no answers counted")
	}
}

// By default a sparse history's first answers take the size to the targets (here the cap) at
// once, and Growing tells a caller to wait for answers until the size has settled.
func TestRangeSizerDefaultGrowthOnSparseHistory(t *testing.T) {
	r := NewRangeSizer(RangeSizerConfig{Initial: 100, Max: 10_000})
	if !r.Growing() {
		t.Fatal("no answer yet: the size may still grow")
	}
	r.Success(100, 55, 60*time.Millisecond) // time target: ~1,666 blocks
	if got := r.Size(); got < 1500 || got > 2000 {
		t.Fatalf("after a sparse fast answer of 100 blocks: %d, want the time target (~1,666)", got)
	}
	if !r.Growing() {
		t.Fatal("the size grew: it may grow again")
	}
	r.Success(r.Size(), 400, 70*time.Millisecond)
	if r.Size() != 10_000 {
		t.Fatalf("after a sparse fast answer of ~1,666 blocks: %d, want the 10,000 cap", r.Size())
	}
	if r.Growing() {
		t.Fatal("at the cap the size cannot grow")
	}
	r.Success(10_000, 6000, 200*time.Millisecond) // above the logs target: shrinks
	if r.Growing() || r.Size() >= 10_000 {
		t.Fatalf("after a dense answer: size %d, growing %v", r.Size(), r.Growing())
	}
}
