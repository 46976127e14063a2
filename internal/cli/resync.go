package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/echain/echain-indexer/indexer"
)

func newResyncCmd(e *env) *cobra.Command {
	var from int64
	var fromStart bool
	cmd := &cobra.Command{
		Use:   "resync (--from-block N | --from-start)",
		Short: "Re-index from a block: revert the entities to N-1, then index N.. again",
		Long: "resync reverts the database to block N-1 and indexes again from N up to the chain head.\n" +
			"When an indexer is running against the database, it does the work (the request is queued\n" +
			"in the database) and this command waits until that indexer is back at the block it had\n" +
			"reached (it needs no RPC endpoint of its own then); otherwise this process does the work,\n" +
			"up to the chain head. The API keeps answering throughout, as of N-1 right after the revert.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if fromStart == cmd.Flags().Changed("from-block") {
				return usageError{errors.New("resync: give exactly one of --from-block N and --from-start")}
			}
			ctx := cmd.Context()
			a, err := build(ctx, e, e.cfg, parts{follower: true})
			if err != nil {
				return err
			}
			defer a.close()
			if fromStart {
				from = a.fl.StartBlock()
			}
			last := ""
			err = a.fl.Resync(ctx, from, func(p indexer.ResyncProgress) {
				line := fmt.Sprintf("resync from %d: %s, indexed %d of %d", p.From, p.Phase, p.Indexed, p.Target)
				if line != last {
					fmt.Fprintln(e.stdout, line)
					last = line
				}
			})
			if err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("resync interrupted (it resumes from the cursor when an indexer runs): %w", err)
				}
				return err
			}
			return nil
		},
	}
	cmd.Flags().Int64Var(&from, "from-block", 0, "first block to index again")
	cmd.Flags().BoolVar(&fromStart, "from-start", false, "index again from the start block")
	return cmd
}
