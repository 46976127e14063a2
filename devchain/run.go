package devchain

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
)

// RunConfig configures `echain-dev devchain`.
type RunConfig struct {
	Chain   Config
	Traffic TrafficConfig
	// NoTraffic serves the chain without generating transactions (blocks only on demand).
	NoTraffic bool
	// History, when Blocks > 0, pre-builds (or loads from History.CacheDir) a history first.
	History HistoryConfig
	// Busy, when set, drives busy-chain traffic (see BusyConfig) instead of Traffic's dense one,
	// with Traffic's seed; a History is then a busy one too.
	Busy *BusyConfig
	// ShowKeys prints the private keys of the funded accounts (dev-only keys from the seed).
	ShowKeys bool
}

// Run starts a dev chain, prints where to reach it to stdout, drives traffic until ctx is done
// and closes the chain.
func Run(ctx context.Context, cfg RunConfig, log *slog.Logger, stdout io.Writer) (err error) {
	var c *Chain
	if cfg.History.Blocks > 0 {
		cfg.History.Busy = cfg.Busy
		c, err = StartWithHistory(ctx, cfg.Chain, cfg.History, log)
	} else {
		c, err = Start(ctx, cfg.Chain, log)
	}
	if err != nil {
		return err
	}
	defer func() {
		if cerr := c.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("devchain: close: %w", cerr)
		}
	}()
	if err := c.PrintInfo(stdout, cfg.ShowKeys); err != nil {
		return err
	}
	if cfg.NoTraffic {
		<-ctx.Done()
		return nil
	}
	var t *Traffic
	if cfg.Busy != nil {
		b, err := NewBusy(ctx, c, cfg.Traffic, *cfg.Busy, log)
		if err != nil {
			return err
		}
		e20, e721 := b.Tokens()
		fmt.Fprintf(stdout, "busy chain: unrelated ERC-20 %s, ERC-721 %s\n", e20, e721)
		t = b.Traffic()
		err = b.Run(ctx)
	} else {
		t = NewTraffic(c, cfg.Traffic, log)
		err = t.Run(ctx)
	}
	s := t.Stats()
	log.Info("dev chain traffic stopped", "blocks", s.Blocks, "txs", s.Txs, "reorgs", s.Reorgs,
		"events", s.Events, "tickets", s.Tickets, "reverted", s.Reverted)
	return err
}

// PrintInfo writes the RPC URLs, contract addresses and accounts in a human-readable block.
func (c *Chain) PrintInfo(w io.Writer, showKeys bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	a := c.Addresses
	fmt.Fprintf(tw, "Echain dev chain\tchain id %d\n", c.chainID)
	fmt.Fprintf(tw, "HTTP RPC\t%s\n", c.HTTPURL)
	fmt.Fprintf(tw, "WebSocket RPC\t%s\n", c.WSURL)
	if c.MetadataGateway != "" {
		fmt.Fprintf(tw, "metadata gateway\t%s\n", c.MetadataGateway)
	}
	fmt.Fprintf(tw, "start block\t%d\n", a.StartBlock)
	for _, row := range []struct {
		name string
		addr fmt.Stringer
	}{
		{"EventFactory", a.EventFactory}, {"EventTicket (template)", a.EventTicketTemplate},
		{"Marketplace", a.Marketplace}, {"POAPAttendance", a.POAPAttendance},
		{"IncentiveManager", a.IncentiveManager}, {"deployer/owner", a.Deployer}, {"treasury", a.Treasury},
	} {
		fmt.Fprintf(tw, "%s\t%s\n", row.name, row.addr)
	}
	if showKeys {
		fmt.Fprintf(tw, "deployer key\t%s\n", hexutil.Encode(crypto.FromECDSA(c.deployer.Key)))
		for i, u := range c.users {
			fmt.Fprintf(tw, "user %d\t%s\t%s\n", i, u.Address, hexutil.Encode(crypto.FromECDSA(u.Key)))
		}
	}
	return tw.Flush()
}
