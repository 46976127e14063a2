// Package cli is the command line of echain-indexer (cmd/echain-indexer) and of the developer
// tools (cmd/echain-dev): configuration, logging, signals, exit status and the indexing process's
// parts. The production commands live here; the dev chain and the demo live in cmd/echain-dev so
// that the production binary does not link go-ethereum's simulated node. See README.md for
// running it and docs/ARCHITECTURE.md for how it works.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/echain/echain-indexer/config"
)

// Exit codes.
const (
	exitOK     = 0
	exitFail   = 1
	exitConfig = 2 // bad configuration or usage: fix the input, retrying will not help
)

// usageError marks errors that are the caller's input (flags, configuration).
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// Main runs echain-indexer's command line and returns the process's exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	return execute(newRoot(stdout, stderr), args, stderr)
}

// execute runs a command line and returns the process's exit code. The first SIGINT/SIGTERM
// cancels the command's context, which starts a clean shutdown; a second one exits at once.
func execute(root *cobra.Command, args []string, stderr io.Writer) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	done := make(chan struct{})
	defer close(done)
	go watchSignals(sigs, done, cancel, stderr, func() { os.Exit(exitFail) })

	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, err)
	var ue usageError
	var ce *config.Error
	if errors.As(err, &ue) || errors.As(err, &ce) {
		return exitConfig
	}
	return exitFail
}

// watchSignals cancels the command at the first signal and calls exit at the second, until done
// closes (the command returned).
func watchSignals(sigs <-chan os.Signal, done <-chan struct{}, cancel func(), stderr io.Writer, exit func()) {
	select {
	case s := <-sigs:
		fmt.Fprintf(stderr, "echain-indexer: %s: shutting down (again to exit at once)\n", s)
		cancel()
	case <-done:
		return
	}
	// Not the command's context: cancel has just closed it.
	select {
	case <-sigs:
		fmt.Fprintln(stderr, "echain-indexer: second signal: exiting now")
		exit()
	case <-done:
	}
}

// env is what every command gets: its configuration, logger and output streams.
type env struct {
	cfg    *config.Config
	log    *slog.Logger
	stdout io.Writer
	stderr io.Writer
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	return rootCommand("echain-indexer",
		"Index the Echain contracts into PostgreSQL and serve them over GraphQL",
		"echain-indexer follows the Echain event-ticketing contracts over JSON-RPC, survives\n"+
			"reorganisations, keeps the entities in PostgreSQL and serves them in The Graph's GraphQL dialect.\n\n"+
			"Configuration: the built-in config.yaml, then --config FILE (or ./config.yaml), ECHAIN_* environment\n"+
			"variables and flags. Secrets (ECHAIN_DATABASE_URL, ECHAIN_WEBHOOK_SECRETS) come from the environment only.",
		stdout, stderr,
		newRunCmd,
		newServeCmd,
		newMigrateCmd,
		newResyncCmd,
		newStatusCmd,
		newVersionCmd,
	)
}

// rootCommand completes root with what every binary of the project shares: configuration
// loading before each command, the logger, usage errors, and the configuration flags.
func rootCommand(name, short, long string, stdout, stderr io.Writer, cmds ...func(*env) *cobra.Command) *cobra.Command {
	e := &env{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           name,
		Short:         short,
		Long:          long,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Annotations["config"] == "none" {
				return nil
			}
			o, err := config.OptionsFromFlags(cmd.Flags())
			if err != nil {
				return usageError{err}
			}
			cfg, warnings, err := config.Load(o)
			if err != nil {
				return err
			}
			e.cfg = cfg
			e.log = newLogger(stderr, cfg.Log)
			for _, w := range warnings {
				e.log.Warn(w)
			}
			if cmd.Annotations["runtime"] != "go-defaults" {
				e.log.Debug("garbage collector", cfg.Runtime.Apply(os.Getenv)...)
			}
			return nil
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	config.AddFlags(root.PersistentFlags())
	for _, c := range cmds {
		root.AddCommand(c(e))
	}
	return root
}

func newLogger(w io.Writer, c config.Log) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.Level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
