// Package ctxsleep waits for a duration or the end of a context, whichever comes first: the
// back-offs of the follower, the RPC source and the metadata fetcher.
package ctxsleep

import (
	"context"
	"time"
)

// Sleep waits d; it returns false early when ctx ends first.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
