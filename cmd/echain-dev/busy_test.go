package main

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/echain/echain-indexer/internal/cli/clitest"
)

// TestDevchainBusyCommand runs `echain-dev devchain --busy`: it deploys the unrelated tokens,
// says where they are, and stops cleanly on SIGTERM.
func TestDevchainBusyCommand(t *testing.T) {
	httpAddr, wsAddr, metaAddr := clitest.FreePort(t), clitest.FreePort(t), clitest.FreePort(t)
	c := clitest.Start(t, "echain-dev", []string{
		"ECHAIN_DEVCHAIN_HTTP_LISTEN=" + httpAddr, "ECHAIN_DEVCHAIN_WS_LISTEN=" + wsAddr,
		"ECHAIN_DEVCHAIN_METADATA_LISTEN=" + metaAddr,
	}, "devchain", "--busy", "--busy-block-time", "50ms", "--busy-unrelated", "4")
	c.WaitFor(60*time.Second, "the busy tokens' addresses", func() bool {
		return strings.Contains(c.Stdout.String(), "busy chain: unrelated ERC-20 0x")
	})
	if code, took := c.Stop(syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Fatalf("exit %d after %s", code, took)
	}
}
