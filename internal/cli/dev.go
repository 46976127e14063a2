package cli

import (
	"context"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/echain/echain-indexer/config"
)

// What cmd/echain-dev needs to build its commands on the same configuration, logging, signals
// and exit status as echain-indexer, and to run the indexing process in its own (the demo).

// Env is what every command gets: its configuration, logger and output streams.
type Env = env

// Command builds one subcommand on the shared Env.
type Command = func(*Env) *cobra.Command

// MainWith runs the command line of a binary named name with cmds and returns its exit code.
func MainWith(name, short, long string, args []string, stdout, stderr io.Writer, cmds ...Command) int {
	return execute(rootCommand(name, short, long, stdout, stderr, cmds...), args, stderr)
}

// Config is the loaded configuration (nil before the command runs).
func (e *env) Config() *config.Config { return e.cfg }

// Log is the command's logger.
func (e *env) Log() *slog.Logger { return e.log }

// SetLog replaces the command's logger (the demo keeps its components quiet).
func (e *env) SetLog(l *slog.Logger) { e.log = l }

// Stdout is where a command's own output goes; Stderr where its logs go.
func (e *env) Stdout() io.Writer { return e.stdout }
func (e *env) Stderr() io.Writer { return e.stderr }

// NewLogger is the logger every command uses, for the settings in c.
func NewLogger(w io.Writer, c config.Log) *slog.Logger { return newLogger(w, c) }

// UsageError marks err as the caller's input: the process exits 2.
func UsageError(err error) error { return usageError{err} }

// Indexer is a complete indexing process (follower, API, metrics listener) built but not yet
// serving.
type Indexer struct{ a *app }

// BuildIndexer opens the database, the RPC source, the follower, the API and the metrics
// listener for cfg, as `run` does.
func BuildIndexer(ctx context.Context, e *Env, cfg *config.Config) (*Indexer, error) {
	a, err := build(ctx, e, cfg, parts{follower: true, api: true})
	if err != nil {
		return nil, err
	}
	return &Indexer{a: a}, nil
}

// APIAddr is the address the API listens on.
func (i *Indexer) APIAddr() string { return i.a.api.Addr() }

// MetricsAddr is the metrics listener's address, "" when metrics.listen is off.
func (i *Indexer) MetricsAddr() string {
	if i.a.mets == nil {
		return ""
	}
	return i.a.mets.Addr()
}

// Serve runs the process until ctx ends, then shuts it down within shutdown_timeout.
func (i *Indexer) Serve(ctx context.Context) error { return i.a.serve(ctx) }
