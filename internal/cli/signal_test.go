package cli

import (
	"bytes"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestSecondSignalExitsAtOnce: the first signal starts the clean shutdown (cancel), the second
// exits while that shutdown still runs. (The second used to wait on the context the first had
// already closed, so it was swallowed.)
func TestSecondSignalExitsAtOnce(t *testing.T) {
	sigs := make(chan os.Signal, 2)
	done := make(chan struct{})
	defer close(done)
	var cancelled, exited atomic.Bool
	var out bytes.Buffer
	go watchSignals(sigs, done, func() { cancelled.Store(true) }, &out, func() { exited.Store(true) })
	sigs <- syscall.SIGINT
	waitFor(t, 30*time.Second, "the first signal to cancel", cancelled.Load)
	if exited.Load() {
		t.Fatal("the first signal exited")
	}
	sigs <- syscall.SIGINT
	waitFor(t, 30*time.Second, "the second signal to exit", exited.Load)
}
