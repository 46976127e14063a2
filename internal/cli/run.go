package cli

import (
	"context"
	"errors"
	"strings"

	"github.com/spf13/cobra"

	"github.com/echain/echain-indexer/config"
)

func newRunCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "run",
		Short: "Index the chain and serve the API",
		Long: "run follows the chain into the database and serves GraphQL, webhooks, health and metrics.\n" +
			"Several processes may run against one database: one indexes (a PostgreSQL lock elects it),\n" +
			"the others serve the API and take over when it stops.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runApp(cmd.Context(), e, parts{follower: true, api: true})
		},
	}
}

func newServeCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Serve the API only (a read replica of the indexed database)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runApp(cmd.Context(), e, parts{api: true})
		},
	}
}

func runApp(ctx context.Context, e *env, p parts) error {
	a, err := build(ctx, e, e.cfg, p)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			e.log.Info("stopped during start-up")
			return nil
		}
		return err
	}
	e.logListening(a)
	return a.serve(ctx)
}

func (e *env) logListening(a *app) {
	var rpc []string
	for _, u := range a.cfg.RPC.HTTPURLs {
		rpc = append(rpc, config.Redact(u))
	}
	args := []any{"graphql", "http://" + a.api.Addr() + "/graphql", "profile", a.cfg.Profile, "chain_id", a.cfg.ChainID,
		"rpc", strings.Join(rpc, ","), "config_file", a.cfg.File}
	if a.mets != nil {
		args = append(args, "metrics", "http://"+a.mets.Addr()+"/metrics")
	}
	e.log.Info("serving", args...)
}
