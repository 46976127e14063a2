package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

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
			a, err := build(ctx, e, e.cfg, parts{follower: true, resync: true})
			if err != nil {
				return err
			}
			defer a.close()
			if fromStart {
				from = a.fl.StartBlock()
			}
			last := ""
			err = a.fl.Resync(ctx, from, func(p indexer.ResyncProgress) {
				line := resyncLine(p)
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

// resyncLine reports progress. The running indexer goes on following the chain past the
// target while this command watches; beyond it, the resync is done at the target, and the line
// says where the indexer has gone rather than "indexed 27 of 17".
func resyncLine(p indexer.ResyncProgress) string {
	line := fmt.Sprintf("resync from %d: %s, indexed %d of %d", p.From, p.Phase, min(p.Indexed, p.Target), p.Target)
	if p.Indexed > p.Target {
		line += fmt.Sprintf(" (the running indexer has gone on to %d)", p.Indexed)
	}
	return line
}

// quietEnv is e with a logger that drops everything below errors: resync may not need a node
// (the running indexer may do the work), so a node it cannot reach at start is no news yet.
func (e *env) quietEnv() *env {
	q := *e
	q.log = slog.New(minLevel{e.log.Handler(), slog.LevelError})
	return &q
}

type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(as), h.min}
}
func (h minLevel) WithGroup(g string) slog.Handler { return minLevel{h.Handler.WithGroup(g), h.min} }
