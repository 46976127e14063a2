package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/echain/echain-indexer/config"
	"github.com/echain/echain-indexer/devchain"
	"github.com/echain/echain-indexer/internal/cli"
	"github.com/echain/echain-indexer/internal/cli/clitest"
	"github.com/echain/echain-indexer/store/storetest"
)

func TestMain(m *testing.M) {
	// Tests start the test binary as echain-dev, or as echain-indexer for the command lines the
	// demo prints, in a child process.
	clitest.RunAs(map[string]func() int{
		"echain-dev":     func() int { return devMain(os.Args[1:]) },
		"echain-indexer": func() int { return cli.Main(os.Args[1:], os.Stdout, os.Stderr) },
	})
	os.Exit(storetest.Run(m))
}

// TestDevchainMatchesDefaultConfig: the top level of config.yaml indexes the dev chain as
// `echain-dev devchain` deploys it, with no flags.
func TestDevchainMatchesDefaultConfig(t *testing.T) {
	t.Chdir(t.TempDir())
	cfg, _, err := config.Load(config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	chain, err := devchain.Start(context.Background(), devchain.Config{Seed: cfg.Devchain.Seed, MetadataAddr: "off"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer chain.Close()
	a := chain.Addresses
	for _, c := range []struct {
		cfg  config.Contract
		addr any
	}{
		{cfg.Contracts.EventFactory, a.EventFactory}, {cfg.Contracts.Marketplace, a.Marketplace},
		{cfg.Contracts.POAPAttendance, a.POAPAttendance}, {cfg.Contracts.IncentiveManager, a.IncentiveManager},
	} {
		if c.cfg.Address != c.addr || c.cfg.StartBlock.Number != a.StartBlock {
			t.Errorf("config.yaml has %s at %s from block %d; the dev chain deploys it at %s in block %d",
				c.cfg.Name, c.cfg.Address.Hex(), c.cfg.StartBlock.Number, c.addr, a.StartBlock)
		}
	}
	if cfg.ChainID != devchain.ChainID {
		t.Errorf("chain_id %d, dev chain %d", cfg.ChainID, devchain.ChainID)
	}
}

// TestDevchainCommand: `devchain` serves JSON-RPC on the configured ports, produces blocks with
// traffic, and stops cleanly on SIGTERM.
func TestDevchainCommand(t *testing.T) {
	httpAddr, wsAddr, metaAddr := clitest.FreePort(t), clitest.FreePort(t), clitest.FreePort(t)
	c := clitest.Start(t, "echain-dev", []string{
		"ECHAIN_DEVCHAIN_HTTP_LISTEN=" + httpAddr, "ECHAIN_DEVCHAIN_WS_LISTEN=" + wsAddr,
		"ECHAIN_DEVCHAIN_METADATA_LISTEN=" + metaAddr, "ECHAIN_DEVCHAIN_BLOCK_TIME=50ms",
	}, "devchain")
	c.WaitFor(60*time.Second, "the devchain banner", func() bool { return strings.Contains(c.Stdout.String(), "IncentiveManager") })
	out := c.Stdout.String()
	for _, want := range []string{`http://` + httpAddr, `ws://` + wsAddr, `EventFactory\s+0xf9d1a0aE6Ef88328FfC7B71Cf555Ed86744e0211`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("banner lacks %q:\n%s", want, out)
		}
	}
	head := func() int64 {
		body := `{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}`
		resp, err := http.Post("http://"+httpAddr, "application/json", strings.NewReader(body))
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		var r struct{ Result string }
		json.NewDecoder(resp.Body).Decode(&r)
		var n int64
		fmt.Sscanf(r.Result, "0x%x", &n)
		return n
	}
	first := head()
	c.WaitFor(90*time.Second, "blocks with traffic", func() bool { return head() >= first+3 })
	if code, took := c.Stop(syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Fatalf("exit %d after %s", code, took)
	}
}
