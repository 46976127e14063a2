package cli

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/echain/echain-indexer/devchain"
	"github.com/echain/echain-indexer/internal/cli/clitest"
	"github.com/echain/echain-indexer/store/storetest"
)

// TestStartBlockNotFoundIsAConfigError: `start_block: auto` that a node answering cannot resolve
// (here: an address with no contract) exits 2, naming the key and where its value came from, so
// that systemd does not restart it forever.
func TestStartBlockNotFoundIsAConfigError(t *testing.T) {
	chain, err := devchain.Start(context.Background(), devchain.Config{MetadataAddr: "off"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer chain.Close()
	c := startChild(t, []string{
		"ECHAIN_DATABASE_URL=" + storetest.NewDB(t),
		"ECHAIN_RPC_HTTP_URL=" + chain.HTTPURL, "ECHAIN_RPC_WS_URL=",
		"ECHAIN_API_LISTEN=" + freePort(t), "ECHAIN_METRICS_LISTEN=",
		"ECHAIN_CONTRACTS_MARKETPLACE_ADDRESS=0x00000000000000000000000000000000000000aa",
		"ECHAIN_CONTRACTS_MARKETPLACE_START_BLOCK=auto",
	}, "run")
	if code := c.wait(60 * time.Second); code != exitConfig {
		t.Fatalf("exit %d, want %d\n%s", code, exitConfig, c.stderr)
	}
	last := strings.TrimSpace(clitest.Tail(c.stderr.String(), 2))
	if !strings.HasPrefix(last, "config: contracts.marketplace.start_block: auto: ") ||
		!strings.HasSuffix(last, "(from $ECHAIN_CONTRACTS_MARKETPLACE_START_BLOCK)") {
		t.Errorf("last line %q", last)
	}
	if testing.Verbose() {
		t.Log(last)
	}
}

// TestSystemdDoesNotRestartConfigErrors: the unit restarts failures (exit 1) but not a bad
// configuration (exit 2), which a restart cannot fix.
func TestSystemdDoesNotRestartConfigErrors(t *testing.T) {
	unit, err := os.ReadFile("../../deploy/systemd/echain-indexer.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Restart=on-failure", "RestartPreventExitStatus=2"} {
		if !strings.Contains(string(unit), "\n"+want+"\n") {
			t.Errorf("deploy/systemd/echain-indexer.service lacks %s", want)
		}
	}
	if exitConfig != 2 || exitFail != 1 {
		t.Errorf("exit statuses: config %d, failure %d", exitConfig, exitFail)
	}
}
