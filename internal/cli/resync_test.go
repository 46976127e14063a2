package cli

import (
	"testing"

	"github.com/echain/echain-indexer/indexer"
)

// TestResyncLine: a running indexer that goes on past the resync's target does not make the
// command print more blocks indexed than it waits for.
func TestResyncLine(t *testing.T) {
	for _, c := range []struct {
		p    indexer.ResyncProgress
		want string
	}{
		{indexer.ResyncProgress{Phase: "indexing", From: 5, Indexed: 12, Target: 17}, "resync from 5: indexing, indexed 12 of 17"},
		{indexer.ResyncProgress{Phase: "done", From: 5, Indexed: 27, Target: 17},
			"resync from 5: done, indexed 17 of 17 (the running indexer has gone on to 27)"},
	} {
		if got := resyncLine(c.p); got != c.want {
			t.Errorf("got %q\nwant %q", got, c.want)
		}
	}
}
