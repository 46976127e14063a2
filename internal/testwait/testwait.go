// Package testwait lets tests wait for a condition as long as the test binary allows, instead
// of a budget sized for a quiet machine: on a busy CI box (load 15 on 2 cores) a slow condition
// only makes a test slower, and one that never comes fails naming what it waited for, before
// `go test -timeout` kills the binary with nothing but goroutine dumps.
package testwait

import (
	"context"
	"testing"
	"time"
)

const (
	// margin is left before the binary's deadline for the failure message and cleanups.
	margin = 30 * time.Second
	// noDeadline is the limit when the test has none (-timeout 0, benchmarks).
	noDeadline = 10 * time.Minute
	poll       = 10 * time.Millisecond
)

// Deadline is when a wait that starts now gives up: shortly before the test's deadline.
func Deadline(t testing.TB) time.Time {
	now := time.Now()
	d, ok := t.(interface{ Deadline() (time.Time, bool) })
	if !ok {
		return now.Add(noDeadline)
	}
	end, ok := d.Deadline()
	if !ok {
		return now.Add(noDeadline)
	}
	if end.Sub(now) > 2*margin {
		return end.Add(-margin)
	}
	return now.Add(end.Sub(now) / 2) // nearly out of time: leave half for reporting
}

// Context ends at Deadline, for calls that take a context; it is cancelled when the test ends.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithDeadline(context.Background(), Deadline(t))
	t.Cleanup(cancel)
	return ctx
}

// After delivers once Deadline passes: the limit of a select waiting for a channel.
func After(t testing.TB) <-chan time.Time {
	return time.After(time.Until(Deadline(t)))
}

// For polls cond until it returns true, and fails the test naming what it waited for if it
// does not before Deadline. cond returns its current state, for the failure message.
func For(t testing.TB, what string, cond func() (bool, string)) {
	t.Helper()
	ForUntil(t, Deadline(t), what, cond)
}

// ForUntil is For with a deadline of the caller's: a benchmark's wait that may outlast the
// bound For takes when the test has none.
func ForUntil(t testing.TB, deadline time.Time, what string, cond func() (bool, string)) {
	t.Helper()
	start := time.Now()
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s; still %s", time.Since(start).Round(time.Millisecond), what, state)
		}
		time.Sleep(poll)
	}
}

// Until is For with a condition that has no state to report.
func Until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	For(t, what, func() (bool, string) { return cond(), "not so" })
}
