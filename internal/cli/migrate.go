package cli

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/echain/echain-indexer/schema"
)

func newMigrateCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the database tables (run and serve also do it at start-up)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			sch, err := schema.Load()
			if err != nil {
				return fmt.Errorf("schema: %w", err)
			}
			st, err := openStore(ctx, e, e.cfg, sch, prometheus.NewRegistry())
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.Migrate(ctx); err != nil {
				return fmt.Errorf("migrate: %w", err)
			}
			fmt.Fprintf(e.stdout, "migrated: %d entity tables, layout %s\n", len(st.Layout().Tables), st.Layout().Fingerprint)
			return nil
		},
	}
}
