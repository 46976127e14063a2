package config

import (
	"runtime/debug"
)

// Apply sets the garbage collector from r, except what GOGC and GOMEMLIMIT in the environment
// already set (the Go runtime read those at start, and an operator's word wins). It returns
// what is in force, as log attributes.
func (r Runtime) Apply(getenv func(string) string) []any {
	var attrs []any
	if v := getenv("GOGC"); v != "" {
		attrs = append(attrs, "GOGC", v)
	} else {
		debug.SetGCPercent(r.GCPercent)
		attrs = append(attrs, "gc_percent", r.GCPercent)
	}
	switch v := getenv("GOMEMLIMIT"); {
	case v != "":
		attrs = append(attrs, "GOMEMLIMIT", v)
	case r.MemoryLimit > 0:
		debug.SetMemoryLimit(r.MemoryLimit)
		attrs = append(attrs, "memory_limit_bytes", r.MemoryLimit)
	}
	return attrs
}
