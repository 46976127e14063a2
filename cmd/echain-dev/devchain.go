package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/echain/echain-indexer/config"
	"github.com/echain/echain-indexer/devchain"
	"github.com/echain/echain-indexer/internal/cli"
)

func newDevchainCmd(e *cli.Env) *cobra.Command {
	var showKeys bool
	var history int
	var like string
	var busy bool
	var busyUnrelated, busyEvery int
	var busyBlockTime time.Duration
	cmd := &cobra.Command{
		Use:   "devchain",
		Short: "Run the dev chain: Echain contracts on a local node with generated traffic",
		Long: "devchain runs a go-ethereum simulated chain over HTTP and WebSocket JSON-RPC with the Echain\n" +
			"contracts deployed, and drives every Echain operation at devchain.txs_per_block per\n" +
			"devchain.block_time, injecting reorganisations when devchain.reorg_every is set.\n" +
			"With the default configuration `echain-indexer run` in another terminal indexes it.",
		Args: cobra.NoArgs,
		// A node's memory grows with its chain: the indexer's memory limit is not for it.
		Annotations: map[string]string{"runtime": "go-defaults"},
		RunE: func(cmd *cobra.Command, args []string) error {
			dc := e.Config().Devchain
			chain, err := devchainConfig(dc)
			if err != nil {
				return err
			}
			chain.Like = like
			rc := devchain.RunConfig{
				Chain:     chain,
				Traffic:   trafficConfig(dc),
				NoTraffic: dc.TxsPerBlock == 0,
				ShowKeys:  showKeys,
			}
			if busy {
				// devchain.txs_per_block Echain transactions in each Echain block.
				rc.Busy = &devchain.BusyConfig{Unrelated: busyUnrelated, EchainEvery: busyEvery,
					EchainTxs: rc.Traffic.TxsPerBlock, BlockInterval: busyBlockTime}
			}
			if history > 0 {
				dir, err := devchain.DefaultCacheDir()
				if err != nil {
					e.Log().Warn("no cache directory: the history is built afresh", "err", err)
				}
				rc.History = devchain.HistoryConfig{Blocks: history, CacheDir: dir}
			}
			if like != "" {
				fmt.Fprintf(e.Stdout(), "index it with: ECHAIN_PROFILE=%s and ECHAIN_RPC_WS_URL / ECHAIN_RPC_HTTP_URL set to the URLs below\n", like)
			} else if dc.Seed == 1 {
				fmt.Fprintln(e.Stdout(), "index it with: echain-indexer run   (the default configuration has these addresses)")
			} else {
				fmt.Fprintln(e.Stdout(), "devchain.seed is not 1: set the printed addresses (ECHAIN_CONTRACTS_*_ADDRESS) to index it")
			}
			if err := devchain.Run(cmd.Context(), rc, e.Log().With("component", "devchain"), e.Stdout()); err != nil {
				return fmt.Errorf("devchain: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&showKeys, "show-keys", false, "print the funded accounts' private keys (dev-only keys derived from the seed)")
	cmd.Flags().StringVar(&like, "like", "", "look like a public network to the indexer: "+strings.Join(devchain.Lookalikes(), ", ")+
		" (its chain id, the profile's contract addresses, its finality)")
	cmd.Flags().IntVar(&history, "history", 0, "pre-build this many blocks of dense traffic first (cached under ~/.cache/echain-indexer)")
	cmd.Flags().BoolVar(&busy, "busy", false, "busy-chain mode: every block carries unrelated ERC-20/ERC-721 transfers, Echain traffic in one block of --busy-echain-every\n"+
		"(with --history, a busy history of that many blocks, most without an Echain log)")
	cmd.Flags().IntVar(&busyUnrelated, "busy-unrelated", 40, "busy mode: unrelated token transfers per block")
	cmd.Flags().IntVar(&busyEvery, "busy-echain-every", 50, "busy mode: one block in this many carries Echain traffic")
	cmd.Flags().DurationVar(&busyBlockTime, "busy-block-time", 2*time.Second, "busy mode: time between blocks (Base's 2 s)")
	return cmd
}

// devchainConfig maps the devchain.* keys.
func devchainConfig(dc config.Devchain) (devchain.Config, error) {
	c := devchain.Config{Seed: dc.Seed, MaxReorgDepth: max(20, dc.ReorgDepth)}
	var err error
	if c.HTTPHost, c.HTTPPort, err = hostPort("devchain.http_listen", dc.HTTPListen); err != nil {
		return c, err
	}
	if c.WSHost, c.WSPort, err = hostPort("devchain.ws_listen", dc.WSListen); err != nil {
		return c, err
	}
	c.MetadataAddr = dc.MetadataListen
	return c, nil
}

func trafficConfig(dc config.Devchain) devchain.TrafficConfig {
	return devchain.TrafficConfig{
		Seed:          dc.Seed,
		TxsPerBlock:   dc.TxsPerBlock,
		BlockInterval: dc.BlockTime,
		ReorgEvery:    dc.ReorgEvery,
		ReorgMaxDepth: dc.ReorgDepth,
	}
}

// startDevchain starts the dev chain for the demo on devchain.*_listen, where the default
// configuration's rpc.* and `status` look for it, or on a free port where one of those is taken
// (a devchain already running, say).
func startDevchain(ctx context.Context, e *cli.Env, dc config.Devchain) (*devchain.Chain, error) {
	dc.HTTPListen, dc.WSListen, dc.MetadataListen = freeOr(dc.HTTPListen, e), freeOr(dc.WSListen, e), freeOr(dc.MetadataListen, e)
	c, err := devchainConfig(dc)
	if err != nil {
		return nil, err
	}
	chain, err := devchain.Start(ctx, c, e.Log().With("component", "devchain"))
	if err != nil {
		return nil, fmt.Errorf("devchain: %w", err)
	}
	return chain, nil
}

func hostPort(key, listen string) (string, int, error) {
	h, p, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, &config.Error{Key: key, Err: err}
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, &config.Error{Key: key, Err: err}
	}
	return h, n, nil
}

// runTraffic drives the chain until ctx ends (nothing when devchain.txs_per_block is 0).
func runTraffic(ctx context.Context, e *cli.Env, chain *devchain.Chain) error {
	dc := e.Config().Devchain
	if dc.TxsPerBlock == 0 {
		<-ctx.Done()
		return nil
	}
	if err := devchain.NewTraffic(chain, trafficConfig(dc), e.Log().With("component", "traffic")).Run(ctx); err != nil {
		return fmt.Errorf("devchain traffic: %w", err)
	}
	return nil
}
