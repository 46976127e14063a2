package config

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestRuntimeApply(t *testing.T) {
	prevPercent := debug.SetGCPercent(100)
	prevLimit := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() {
		debug.SetGCPercent(prevPercent)
		debug.SetMemoryLimit(prevLimit)
	})
	r := Runtime{GCPercent: 250, MemoryLimit: 300 << 20}

	r.Apply(func(string) string { return "" })
	if got := debug.SetGCPercent(100); got != 250 {
		t.Errorf("gc percent %d, want 250", got)
	}
	if got := debug.SetMemoryLimit(math.MaxInt64); got != 300<<20 {
		t.Errorf("memory limit %d, want %d", got, 300<<20)
	}

	// The environment's settings, which the runtime read at start, are left alone.
	env := map[string]string{"GOGC": "150", "GOMEMLIMIT": "1GiB"}
	attrs := r.Apply(func(k string) string { return env[k] })
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("gc percent %d with GOGC set, want it untouched (100)", got)
	}
	if got := debug.SetMemoryLimit(math.MaxInt64); got != math.MaxInt64 {
		t.Errorf("memory limit %d with GOMEMLIMIT set, want it untouched", got)
	}
	if len(attrs) != 4 || attrs[0] != "GOGC" || attrs[2] != "GOMEMLIMIT" {
		t.Errorf("attributes %v, want the environment's settings named", attrs)
	}
}
