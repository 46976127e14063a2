package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/echain/echain-indexer/abis"
	"github.com/echain/echain-indexer/config"
	"github.com/echain/echain-indexer/devchain"
	"github.com/echain/echain-indexer/internal/cli"
	"github.com/echain/echain-indexer/store/pglocal"
)

const demoQuery = `{ events(first: 1000) { id title ticketsSold } _meta { block { number hash } } }`

func newDemoCmd(e *cli.Env) *cobra.Command {
	var verbose bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Dev chain + PostgreSQL + indexer + API in one process, with traffic until Ctrl-C",
		Long: "demo starts a dev chain with the Echain contracts and generated traffic, a PostgreSQL\n" +
			"database (a throwaway cluster, or a fresh database on $DATABASE_URL's or 127.0.0.1:5432's\n" +
			"server, dropped at exit), the indexer and the API, prints the GraphQL URL and what it\n" +
			"answers as the chain grows. Ctrl-C stops everything and removes what it created.",
		Args: cobra.NoArgs,
		// A node's memory grows with its chain: the indexer's memory limit is not for it.
		Annotations: map[string]string{"runtime": "go-defaults"},
		RunE: func(cmd *cobra.Command, args []string) error {
			if !verbose && e.Config().Log.Level < slog.LevelWarn {
				// The demo's own lines tell the story; component logs only when something is wrong.
				e.SetLog(cli.NewLogger(e.Stderr(), config.Log{Level: slog.LevelWarn, Format: e.Config().Log.Format}))
			}
			return runDemo(cmd.Context(), e)
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log at log.level (default: warnings only)")
	return cmd
}

func runDemo(ctx context.Context, e *cli.Env) (err error) {
	started := time.Now()
	out := e.Stdout()
	cfg := *e.Config() // the demo rewires chain, database and listeners on its own copy

	// PostgreSQL: $DATABASE_URL, else the server on 127.0.0.1:5432, else a throwaway cluster.
	srv, err := pglocal.Find(ctx, cfg.Database.URL, e.Log())
	if err != nil {
		return fmt.Errorf("demo: PostgreSQL: %w", err)
	}
	defer func() {
		if serr := srv.Stop(); serr != nil {
			e.Log().Warn("stopping the throwaway PostgreSQL", "err", serr)
		}
	}()
	dbURL, drop, err := freshDatabase(ctx, srv.URL)
	if err != nil {
		return err
	}
	defer drop()
	cfg.Database.URL = dbURL
	where := "a throwaway cluster"
	if !srv.Throwaway {
		where = "the server on " + redactDB(srv.URL)
	}
	fmt.Fprintf(out, "PostgreSQL: database %s on %s (dropped at exit)\n", dbName(dbURL), where)

	chain, err := startDevchain(ctx, e, cfg.Devchain)
	if err != nil {
		return err
	}
	defer chain.Close()
	fmt.Fprintf(out, "dev chain:  %s (chain %d, contracts in block %d)\n", chain.WSURL, devchain.ChainID, chain.Addresses.StartBlock)

	a := chain.Addresses
	cfg.ChainID = devchain.ChainID
	cfg.RPC.HTTPURLs = []string{chain.HTTPURL}
	cfg.RPC.WSURLs = []string{chain.WSURL}
	set := func(c *config.Contract, addr common.Address) {
		c.Address, c.StartBlock = addr, config.StartBlock{Number: a.StartBlock}
	}
	set(&cfg.Contracts.EventFactory, a.EventFactory)
	set(&cfg.Contracts.Marketplace, a.Marketplace)
	set(&cfg.Contracts.POAPAttendance, a.POAPAttendance)
	set(&cfg.Contracts.IncentiveManager, a.IncentiveManager)
	cfg.Metadata.Gateway = chain.MetadataGateway
	if len(cfg.Webhook.Secrets) == 0 {
		cfg.Webhook.Secrets = []string{randomHex(16)}
	}
	cfg.API.Listen = freeOr(cfg.API.Listen, e)
	if cfg.Metrics.Listen != "" {
		cfg.Metrics.Listen = freeOr(cfg.Metrics.Listen, e)
	}

	app, err := cli.BuildIndexer(ctx, e, &cfg)
	if err != nil {
		return err
	}
	gqlURL := "http://" + app.APIAddr() + "/graphql"
	fmt.Fprintf(out, "\nGraphQL:    %s   (open it in a browser for GraphiQL)\n", gqlURL)
	if app.MetricsAddr() != "" {
		fmt.Fprintf(out, "metrics:    http://%s/metrics\n", app.MetricsAddr())
	}
	fmt.Fprintf(out, "try:        curl -s %s -H 'content-type: application/json' -d '{\"query\":\"%s\"}'\n",
		gqlURL, strings.ReplaceAll(demoQuery, `"`, `\"`))
	metricsURL := ""
	if app.MetricsAddr() != "" {
		metricsURL = "http://" + app.MetricsAddr()
	}
	fmt.Fprintf(out, "status:     %s\n", statusHint(e.Config(), dbURL, chain.HTTPURL, metricsURL))
	fmt.Fprintf(out, "Ctrl-C stops everything.\n\n")

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return app.Serve(gctx) })
	g.Go(func() error { return runTraffic(gctx, e, chain) })
	g.Go(func() error {
		sender, err := devchain.NewWebhookSender(devchain.WebhookSenderConfig{
			URL:     "http://" + app.APIAddr() + "/webhooks/coinbase",
			Secret:  cfg.Webhook.Secrets[0],
			Network: firstOr(cfg.Webhook.Networks, "base-sepolia"),
			ABIs:    echainABIs(),
		}, e.Log().With("component", "webhook-sender"))
		if err != nil {
			return fmt.Errorf("demo: webhook sender: %w", err)
		}
		return sender.Run(gctx, chain.Client())
	})
	g.Go(func() error { report(gctx, e, gqlURL, started); return nil })
	err = g.Wait()
	fmt.Fprintln(out, "\ndemo stopped")
	return err
}

// report prints what the API answers every few seconds: the proof that data flows end to end.
func report(ctx context.Context, e *cli.Env, url string, started time.Time) {
	first := true
	last := ""
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		block, events, sold, err := queryDemo(ctx, url)
		if err != nil || block == 0 {
			continue
		}
		line := fmt.Sprintf("block %d: %d events, %s tickets sold", block, events, sold)
		if first {
			fmt.Fprintf(e.Stdout(), "first GraphQL answer %.1fs after start: %s\n", time.Since(started).Seconds(), line)
			first = false
			tick.Reset(5 * time.Second)
			last = line
			continue
		}
		if line != last {
			fmt.Fprintln(e.Stdout(), line)
			last = line
		}
	}
}

func queryDemo(ctx context.Context, url string) (block int64, events int, sold string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	body, _ := json.Marshal(map[string]string{"query": demoQuery})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, "", err
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Events []struct {
				TicketsSold string `json:"ticketsSold"`
			} `json:"events"`
			Meta struct {
				Block struct {
					Number int64 `json:"number"`
				} `json:"block"`
			} `json:"_meta"`
		} `json:"data"`
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, 0, "", err
	}
	if len(r.Errors) > 0 {
		return 0, 0, "", fmt.Errorf("graphql: %s", r.Errors[0].Message)
	}
	total := new(big.Int)
	for _, ev := range r.Data.Events {
		if n, ok := new(big.Int).SetString(ev.TicketsSold, 10); ok {
			total.Add(total, n)
		}
	}
	return r.Data.Meta.Block.Number, len(r.Data.Events), total.String(), nil
}

// freshDatabase creates an empty database on the server and returns its URL and a function that
// drops it: the demo never writes into an existing database.
func freshDatabase(ctx context.Context, serverURL string) (string, func(), error) {
	name := "echain_demo_" + randomHex(4)
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return "", nil, fmt.Errorf("demo: connect to PostgreSQL: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("demo: create database %s (the demo needs CREATEDB on %s): %w", name, redactDB(serverURL), err)
	}
	url, err := withDatabase(serverURL, name)
	if err != nil {
		return "", nil, err
	}
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, serverURL)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	}
	return url, drop, nil
}

// withDatabase points a connection string (URL or key=value form) at another database.
func withDatabase(serverURL, db string) (string, error) {
	if u, err := url.Parse(serverURL); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.Path = "/" + db
		return u.String(), nil
	}
	if _, err := pgx.ParseConfig(serverURL); err != nil {
		return "", fmt.Errorf("demo: database url: %w", err)
	}
	return serverURL + " dbname=" + db, nil
}

// statusHint is the command line that shows the demo's `status` from another shell, under the
// configuration the demo was started with (cfg): the demo's database, and the chain's and the
// metrics listener's addresses where they are not the ones status would look for (a port was
// taken). A password is not printed: the line then says where the server's URL goes.
func statusHint(cfg *config.Config, dbURL, rpcURL, metricsURL string) string {
	db := "'" + dbURL + "'"
	if c, err := pgx.ParseConfig(dbURL); err != nil || c.Password != "" || strings.Contains(dbURL, "'") {
		db = "<$DATABASE_URL with database " + dbName(dbURL) + ">"
	}
	line := fmt.Sprintf("ECHAIN_DATABASE_URL=%s %s status", db, indexerName())
	if len(cfg.RPC.HTTPURLs) == 0 || strings.TrimSuffix(cfg.RPC.HTTPURLs[0], "/") != strings.TrimSuffix(rpcURL, "/") {
		line += " --rpc-http-url " + rpcURL
	}
	if metricsURL != "" && metricsURL != "http://"+cfg.Metrics.Listen {
		line += " --indexer-url " + metricsURL
	}
	return line
}

// indexerName is how to start echain-indexer, for command lines the demo prints: the binary beside
// this one when it was started by a path (`make demo`: ./bin/echain-dev, so ./bin/echain-indexer).
func indexerName() string {
	if len(os.Args) == 0 || strings.ContainsAny(os.Args[0], " '\"") || !strings.Contains(os.Args[0], "/") {
		return "echain-indexer"
	}
	return path.Dir(os.Args[0]) + "/echain-indexer"
}

func dbName(u string) string {
	cfg, err := pgx.ParseConfig(u)
	if err != nil {
		return "?"
	}
	return cfg.Database
}

func redactDB(u string) string {
	cfg, err := pgx.ParseConfig(u)
	if err != nil {
		return "the configured server"
	}
	return fmt.Sprintf("%s:%d", cfg.Host, cfg.Port)
}

// freeOr keeps listen when it is free and otherwise takes a free port on the same host: a demo
// should not fail because 8000 is busy.
func freeOr(listen string, e *cli.Env) string {
	l, err := net.Listen("tcp", listen)
	if err == nil {
		l.Close()
		return listen
	}
	host, _, _ := net.SplitHostPort(listen)
	e.Log().Warn("address in use, taking a free port", "address", listen)
	return net.JoinHostPort(host, "0")
}

func echainABIs() []abi.ABI {
	var out []abi.ABI
	for _, n := range abis.EchainNames() {
		if a, err := abis.Echain(n); err == nil {
			out = append(out, a)
		}
	}
	return out
}

func firstOr(xs []string, d string) string {
	if len(xs) > 0 {
		return xs[0]
	}
	return d
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
