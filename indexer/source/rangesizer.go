package source

import (
	"errors"
	"math"
	"sync"
	"time"
)

// RangeSizerConfig tunes a RangeSizer. Zero fields take the defaults.
type RangeSizerConfig struct {
	Initial uint64 // first range size in blocks (default 100)
	Min     uint64 // never below (default 1)
	Max     uint64 // never above (default 10,000)
	// An answer is comfortable below both targets; the sizer steers toward them.
	TargetLogs     int           // logs per answer (default 5,000)
	TargetDuration time.Duration // time per answer (default 1s)
	// Growth is the most the size grows after one answer (default 20; at most 2 once the
	// provider refused a range): the targets bound it too, so a sparse history reaches a
	// provider's range cap after two or three answers instead of seven doublings.
	Growth float64
	// CeilingSuccesses is how many comfortable answers after a too-large failure before the
	// sizer may grow past the failed size again (default 50): provider limits are often about
	// log density, which changes along the chain.
	CeilingSuccesses int
}

// RangeSizer picks eth_getLogs block ranges: it grows while answers are small and fast, shrinks
// toward the targets when they are big or slow, halves on a too-large failure or jumps to the
// range the provider suggested. It is pure logic, safe for concurrent use by several ranges in
// flight (answers for ranges sized before a change still count, by their own size).
type RangeSizer struct {
	cfg RangeSizerConfig

	mu        sync.Mutex
	size      float64
	ceiling   uint64 // 0: none
	ceilLeft  int    // comfortable answers left before the ceiling lifts
	successes uint64
	failures  uint64
	grew      bool // the last answer grew the size
}

// NewRangeSizer returns a sizer starting at cfg.Initial.
func NewRangeSizer(cfg RangeSizerConfig) *RangeSizer {
	if cfg.Min == 0 {
		cfg.Min = 1
	}
	if cfg.Max == 0 {
		cfg.Max = 10_000
	}
	cfg.Max = max(cfg.Max, cfg.Min)
	if cfg.Initial == 0 {
		cfg.Initial = 100
	}
	cfg.Initial = min(max(cfg.Initial, cfg.Min), cfg.Max)
	if cfg.TargetLogs <= 0 {
		cfg.TargetLogs = 5_000
	}
	if cfg.TargetDuration <= 0 {
		cfg.TargetDuration = time.Second
	}
	if cfg.Growth <= 1 {
		cfg.Growth = 20
	}
	if cfg.CeilingSuccesses <= 0 {
		cfg.CeilingSuccesses = 50
	}
	return &RangeSizer{cfg: cfg, size: float64(cfg.Initial)}
}

// Size is the current range size in blocks.
func (r *RangeSizer) Size() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sizeLocked()
}

func (r *RangeSizer) sizeLocked() uint64 {
	n := uint64(math.Round(r.size))
	n = min(max(n, r.cfg.Min), r.cfg.Max)
	if r.ceiling != 0 {
		n = min(n, r.ceiling) // a provider's suggestion may be below Min
	}
	return max(n, 1)
}

// Next returns the end of the range that starts at from, at most limit.
func (r *RangeSizer) Next(from, limit uint64) uint64 {
	to := from + r.Size() - 1
	return min(to, limit)
}

// Success reports a range of `blocks` blocks answered with `logs` logs in `took`.
func (r *RangeSizer) Success(blocks uint64, logs int, took time.Duration) {
	if blocks == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.successes++
	b := float64(blocks)
	// The size at which this answer's density and speed would hit the targets.
	ideal := math.Inf(1)
	if logs > 0 {
		ideal = float64(r.cfg.TargetLogs) * b / float64(logs)
	}
	if took > 0 {
		ideal = min(ideal, float64(r.cfg.TargetDuration)*b/float64(took))
	}
	r.grew = false
	if logs > r.cfg.TargetLogs || took > r.cfg.TargetDuration {
		// Too big or too slow: shrink toward the ideal, at most 4× at once (one slow answer
		// may be noise).
		r.size = max(min(r.size, max(ideal, b/4)), float64(r.cfg.Min))
		return
	}
	if r.ceiling != 0 {
		if r.ceilLeft--; r.ceilLeft <= 0 {
			r.ceiling = 0
		}
	}
	// Comfortable: grow toward the ideal, never past Growth× the answered range (a short range
	// at the chain's tip says little about a long one) and never shrink.
	growth := r.cfg.Growth
	if r.failures > 0 {
		growth = min(growth, 2) // the provider refused a range before: approach its limit gradually
	}
	grown := min(ideal, b*growth)
	was := r.sizeLocked()
	r.size = min(max(r.size, grown), float64(r.cfg.Max))
	if r.ceiling != 0 {
		r.size = min(r.size, float64(r.ceiling)) // after the ceiling lifts, grow from it gradually
	}
	r.grew = r.sizeLocked() > was
}

// Growing reports whether the size may still grow fast on the next answer: none yet, or the
// last one grew it and the provider never refused a range (after a refusal it grows by 2x
// steps, and waiting would only serialise the ranges). Ranges sized meanwhile would take the
// old size: a caller with ranges in flight does better to wait for their answers first.
func (r *RangeSizer) Growing() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.successes == 0 || (r.grew && r.failures == 0 && r.sizeLocked() < r.cfg.Max)
}

// Failure reports that [from, to] failed. For a *RangeTooLargeError it shrinks and returns the
// end of the range to retry from `from` (the provider's suggestion when it made one that starts
// at from, else half the failed range), with ok true. ok is false when the range cannot shrink
// (already Min blocks) or err is not a *RangeTooLargeError: the caller must handle it.
func (r *RangeSizer) Failure(from, to uint64, err error) (retryTo uint64, ok bool) {
	var rte *RangeTooLargeError
	if !errors.As(err, &rte) || to < from {
		return 0, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures++
	failed := to - from + 1
	if rte.SuggestedTo != 0 && rte.SuggestedFrom == from && rte.SuggestedTo >= from && rte.SuggestedTo < to {
		// The provider knows its limit better than Min does.
		n := rte.SuggestedTo - from + 1
		r.size = float64(n)
		r.ceiling, r.ceilLeft = n, r.cfg.CeilingSuccesses
		return rte.SuggestedTo, true
	}
	if failed <= r.cfg.Min {
		return 0, false
	}
	n := max(failed/2, r.cfg.Min)
	r.size = min(r.size, float64(n))
	r.ceiling, r.ceilLeft = n, r.cfg.CeilingSuccesses
	return from + n - 1, true
}

// RangeSizerStats counts answers seen.
type RangeSizerStats struct {
	Size      uint64
	Successes uint64
	Failures  uint64
}

// Stats reports the current size and counts.
func (r *RangeSizer) Stats() RangeSizerStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return RangeSizerStats{Size: r.sizeLocked(), Successes: r.successes, Failures: r.failures}
}
