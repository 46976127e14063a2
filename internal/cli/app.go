package cli

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/echain/echain-indexer/api"
	"github.com/echain/echain-indexer/api/graphql"
	"github.com/echain/echain-indexer/api/subscriptions"
	"github.com/echain/echain-indexer/api/webhook"
	"github.com/echain/echain-indexer/config"
	"github.com/echain/echain-indexer/indexer"
	"github.com/echain/echain-indexer/indexer/echain"
	"github.com/echain/echain-indexer/indexer/source"
	"github.com/echain/echain-indexer/metrics"
	"github.com/echain/echain-indexer/schema"
	"github.com/echain/echain-indexer/store"
)

// app is one process's parts, built from the configuration. Which parts exist depends on the
// command: `serve` has no follower, `run` and `demo` have everything.
type app struct {
	e     *env
	cfg   *config.Config
	reg   *prometheus.Registry
	sch   *schema.Schema
	store *store.Store
	src   *source.Source
	fl    *indexer.Follower
	maps  *echain.Handler // the mappings, closed before the store (background metadata fetches)
	// live is fl for the metrics listener's /status, which answers while build still runs.
	live atomic.Pointer[indexer.Follower]
	hook *webhook.Handler
	// standby: the database is a hot standby (at start); primary reads its primary's cursor for
	// the replication lag in blocks (database.primary_url; nil when not configured).
	standby bool
	primary *pgxpool.Pool
	subs    *subscriptions.Server
	api     *api.Server
	mets    *api.MetricsServer
}

type parts struct {
	follower bool // index (run, demo, resync)
	api      bool // serve GraphQL, webhooks, health and metrics (run, serve, demo)
	resync   bool // resync: the running indexer may do the work, needing no node of this process
}

// build opens the database (migrating it), the RPC source, and, for an indexing process, the
// mappings and the follower; then the API and metrics listeners. Nothing is served until run.
func build(ctx context.Context, e *env, cfg *config.Config, p parts) (_ *app, err error) {
	a := &app{e: e, cfg: cfg, reg: prometheus.NewRegistry()}
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	if err := metrics.RegisterProcess(a.reg, readBuildInfo().metrics(), time.Now()); err != nil {
		return nil, err
	}
	// Metrics listen first: a slow start (migrations, auto start blocks) is already observable.
	if p.api && cfg.Metrics.Listen != "" {
		if a.mets, err = api.ListenMetrics(cfg.Metrics.Listen, a.reg, a.statusHandler(), e.log); err != nil {
			return nil, err
		}
		go func() {
			if err := a.mets.Serve(); err != nil {
				e.log.Error("metrics listener stopped", "err", err)
			}
		}()
	}

	if a.sch, err = schema.Load(); err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	if a.store, err = openStore(ctx, e, cfg, a.sch, a.reg); err != nil {
		return nil, err
	}
	if err := a.store.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	if a.standby, err = a.store.InRecovery(ctx); err != nil {
		return nil, err
	}
	if a.standby && cfg.Database.PrimaryURL != "" {
		pc, err := pgxpool.ParseConfig(cfg.Database.PrimaryURL)
		if err != nil {
			return nil, &config.Error{Key: "database.primary_url", Err: errors.New("is not a PostgreSQL connection string")}
		}
		pc.MaxConns = 2
		if a.primary, err = pgxpool.NewWithConfig(ctx, pc); err != nil {
			return nil, fmt.Errorf("database.primary_url: %w", err)
		}
	}
	if a.standby {
		e.log.Info("the database is a hot standby: serving what it has replayed", "primary_known", a.primary != nil)
	}
	mf := metrics.With(a.reg)
	if mf.Register(metrics.NewPoolCollector(a.store.Pool(), "main")); mf.Err() != nil {
		return nil, mf.Err()
	}

	if a.src, err = source.New(ctx, sourceConfig(cfg), e.log.With("component", "source"), a.reg); err != nil {
		return nil, err
	}
	ce := e
	if p.resync {
		ce = e.quietEnv() // a wrong chain still stops it; a node out of reach is not news yet
	}
	if err := checkChain(ctx, cfg, ce); err != nil {
		return nil, err
	}

	if p.follower {
		if err := resolveStartBlocks(ctx, cfg, e, a.src, a.store); err != nil {
			return nil, err
		}
		if a.maps, err = echain.New(echainConfig(cfg, a.store), a.src, e.log.With("component", "mappings"), a.reg); err != nil {
			return nil, err
		}
		if a.fl, err = indexer.New(indexerConfig(cfg), a.src, a.store, a.maps, e.log.With("component", "follower"), a.reg); err != nil {
			return nil, err
		}
		a.live.Store(a.fl)
	}
	if !p.api {
		return a, nil
	}
	if p.follower {
		if len(cfg.Webhook.Secrets)+len(cfg.Webhook.LegacySecrets) == 0 {
			e.log.Info("webhook receiver off: no ECHAIN_WEBHOOK_SECRETS", "path", api.PathWebhook)
		} else if a.hook, err = webhook.New(webhookConfig(cfg), webhook.SinkFunc(a.hint), e.log.With("component", "webhook"), a.reg); err != nil {
			return nil, err
		}
	}

	gopts := graphqlOptions(cfg, e, a.reg)
	if a.standby {
		gopts.AwaitBlock = cfg.API.ReplicaAwaitBlock
	}
	gopts.Chain = a.src // block: {hash} and _meta's hash for blocks below the store's window
	gql, err := graphql.NewHandler(a.store.Pool(), a.sch, gopts)
	if err != nil {
		return nil, err
	}
	// One budget of request bytes for HTTP bodies and WebSocket messages.
	inFlight := api.NewInFlight(cfg.API.MaxInFlightBytes)
	so := subscriptionOptions(cfg, e, a.reg)
	so.AcquireBytes, so.ReleaseBytes = inFlight.Acquire, inFlight.Release
	if a.subs, err = subscriptions.New(a.store.Pool(), gql.Engine(), so); err != nil {
		return nil, err
	}
	opts := api.Options{
		Listen:        cfg.API.Listen,
		GraphQL:       gql,
		Subscriptions: a.subs,
		Health:        a.health,
		Ready:         a.ready,
		OnShutdown:    []func(context.Context) error{a.subs.Shutdown},
		Limits:        apiLimits(cfg),
		InFlight:      inFlight,
		Log:           e.log.With("component", "api"),
		Registerer:    a.reg,
	}
	if a.hook != nil {
		opts.Webhook = a.hook
	}
	if a.api, err = api.Listen(opts); err != nil {
		return nil, err
	}
	return a, nil
}

// hint passes a verified webhook delivery to the follower: it only makes it look sooner.
func (a *app) hint(_ context.Context, h webhook.Hint) error {
	a.fl.Hint(indexer.Hint{Block: h.Block, TxHash: h.TxHash, ReceivedAt: h.ReceivedAt})
	return nil
}

// serve runs the parts until ctx ends, then shuts down cleanly: the API stops accepting and
// closes its WebSockets while the follower commits the block in hand, all within
// shutdown_timeout.
func (a *app) serve(ctx context.Context) error {
	log := a.e.log
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := a.api.Serve(); err != nil {
			return err
		}
		return nil
	})
	if a.fl != nil {
		g.Go(func() error {
			err := a.fl.Run(gctx)
			if err != nil {
				return fmt.Errorf("indexer: %w", err)
			}
			if ctx.Err() == nil && gctx.Err() == nil {
				return errors.New("indexer stopped")
			}
			return nil
		})
	}
	if a.hook != nil {
		g.Go(func() error { return a.hook.Run(gctx) })
	}
	g.Go(func() error {
		if err := a.subs.Run(gctx); err != nil {
			return fmt.Errorf("subscriptions: %w", err)
		}
		return nil
	})
	// The shutdown trigger: a signal (ctx) or any part failing (gctx).
	var stopAt atomic.Int64
	g.Go(func() error {
		<-gctx.Done()
		started := time.Now()
		stopAt.Store(started.UnixNano())
		sctx, cancel := context.WithDeadline(context.Background(), started.Add(a.partsTimeout()))
		defer cancel()
		log.Info("shutting down", "deadline", a.cfg.ShutdownTimeout)
		if err := a.api.Shutdown(sctx); err != nil {
			log.Warn("API shutdown", "err", err)
		}
		log.Debug("API stopped", "took", time.Since(started))
		return nil
	})
	late, err := waitWithin(g, gctx, a.partsTimeout())
	stopped := time.Now()
	if at := stopAt.Load(); at != 0 {
		stopped = time.Unix(0, at)
	}
	if late {
		log.Warn("abandoning work that ignored its cancellation", "after", a.partsTimeout())
		if ctx.Err() == nil {
			err = errors.New("a part failed and the others did not stop within shutdown_timeout")
		}
	}
	// A twentieth of the deadline is left for the last log lines and the exit itself.
	closed := a.closeBy(stopped.Add(a.cfg.ShutdownTimeout - a.cfg.ShutdownTimeout/20))
	if stopAt.Load() != 0 {
		// The store is consistent whatever was abandoned: every commit is one transaction, and
		// PostgreSQL rolls back the one a dropped connection leaves open.
		log.Info("stopped", "took", time.Since(stopped).Round(time.Millisecond), "err", err,
			"abandoned", late || !closed, "store", "consistent (every block commits in one transaction)")
	}
	return err
}

// partsTimeout is what the parts get to stop; the rest of shutdown_timeout is for closing the
// database pool and the RPC clients.
func (a *app) partsTimeout() time.Duration {
	return a.cfg.ShutdownTimeout - min(a.cfg.ShutdownTimeout/4, 2*time.Second)
}

// waitWithin waits for the group; once ctx (a signal, or a part failing) has ended it gives the
// group at most d, and reports late when it gave up on it.
func waitWithin(g *errgroup.Group, ctx context.Context, d time.Duration) (late bool, err error) {
	done := make(chan error, 1)
	go func() { done <- g.Wait() }()
	select {
	case err := <-done:
		return false, err
	case <-ctx.Done():
	}
	select {
	case err := <-done:
		return false, err
	case <-time.After(d):
		return true, nil
	}
}

// closeBy closes what the app holds, giving up at deadline: pgxpool.Close
// waits for every connection in use, and an execution that ignores its cancellation would keep
// the process alive past shutdown_timeout, until systemd kills it. It reports whether all closed.
func (a *app) closeBy(deadline time.Time) bool {
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.close()
	}()
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		args := []any{"deadline", a.cfg.ShutdownTimeout}
		if a.store != nil {
			args = append(args, "connections_in_use", a.store.Pool().Stat().AcquiredConns())
		}
		a.e.log.Warn("abandoning the database pool: connections still in use at shutdown_timeout", args...)
		return false
	}
}

func (a *app) close() {
	if a.maps != nil {
		a.maps.Close()
	}
	if a.src != nil {
		a.src.Close()
	}
	if a.store != nil {
		a.store.Close()
	}
	if a.primary != nil {
		a.primary.Close()
	}
	if a.mets != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = a.mets.Shutdown(ctx)
		cancel()
	}
}

// health: the process is alive and the database answers.
func (a *app) health(ctx context.Context) error {
	if err := a.store.Pool().Ping(ctx); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	return nil
}

// ready: the committed state (what queries see) is within api.ready_max_lag_blocks of the chain
// head the RPC endpoints report. Every process answers the same way, leader or not.
func (a *app) ready(ctx context.Context) api.Readiness {
	r := api.Readiness{MaxLag: int64(a.cfg.API.ReadyMaxLagBlocks)}
	if a.fl != nil {
		r.Mode = a.fl.Status().Mode
	}
	head, err := a.store.Head(ctx)
	if err != nil {
		r.Reason = "database: " + err.Error()
		return r
	}
	if head == nil {
		r.Reason = "nothing indexed yet"
		return r
	}
	r.Indexed = head.Number
	r.ChainHead = int64(a.src.BestHead())
	if r.ChainHead == 0 {
		r.Reason = "chain head unknown: no RPC endpoint has answered"
		return r
	}
	if silent := time.Since(a.src.LastAnswer()); silent > a.cfg.API.ReadyMaxRPCSilence {
		r.Reason = fmt.Sprintf("no RPC endpoint has answered for %s (allowed %s by api.ready_max_rpc_silence)",
			silent.Round(time.Second), a.cfg.API.ReadyMaxRPCSilence)
		return r
	}
	// Negative when the endpoints' head is below the indexed block: a node behind, or one that
	// came back as another chain, is not "lag 0".
	r.LagBlocks = r.ChainHead - r.Indexed
	if r.LagBlocks < -r.MaxLag {
		r.Reason = fmt.Sprintf("the RPC endpoints' head %d is %d blocks below the indexed block %d: they are behind, or serve another chain",
			r.ChainHead, -r.LagBlocks, r.Indexed)
		return r
	}
	if a.standby {
		rep, reason := a.replication(ctx, head.Number)
		r.Replication = rep
		if reason != "" {
			r.Reason = reason
			return r
		}
	}
	if r.LagBlocks > r.MaxLag {
		r.Reason = fmt.Sprintf("indexed block %d is %d blocks behind the chain head %d (allowed %d)", r.Indexed, r.LagBlocks, r.ChainHead, r.MaxLag)
		return r
	}
	r.Ready = true
	return r
}

// statusHandler serves the follower's live status as JSON at /status of the metrics listener,
// for `echain-indexer status`.
func (a *app) statusHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fl := a.live.Load()
		if fl == nil {
			http.Error(w, "this process does not index", http.StatusNotFound)
			return
		}
		writeJSON(w, liveFromFollower(fl.Status()))
	})
}

func openStore(ctx context.Context, e *env, cfg *config.Config, sch *schema.Schema, reg prometheus.Registerer) (*store.Store, error) {
	url, err := cfg.RequireURL()
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, url, sch, store.Options{
		Logger:        e.log.With("component", "store"),
		Registerer:    reg,
		HistoryBlocks: int64(cfg.History.RetentionBlocks),
		MaxConns:      cfg.Database.MaxConns,
	})
	if err != nil {
		return nil, fmt.Errorf("database (database.url / ECHAIN_DATABASE_URL): %w", err)
	}
	return st, nil
}

func sourceConfig(cfg *config.Config) source.Config {
	sc := source.Config{RequestTimeout: cfg.RPC.Timeout, MaxAttempts: cfg.RPC.MaxAttempts, ChainID: cfg.ChainID}
	for i, h := range cfg.RPC.HTTPURLs {
		ep := source.Endpoint{HTTPURL: h, RequestsPerSecond: cfg.RPC.RequestsPerSecond, CallsPerSecond: cfg.RPC.CallsPerSecond}
		if i < len(cfg.RPC.WSURLs) {
			ep.WSURL = cfg.RPC.WSURLs[i]
		}
		sc.Endpoints = append(sc.Endpoints, ep)
	}
	// Two endpoints of one provider share a host: number them so that names stay unique.
	seen := map[string]int{}
	for i := range sc.Endpoints {
		name := config.Redact(sc.Endpoints[i].HTTPURL)
		seen[name]++
		if seen[name] > 1 {
			name = fmt.Sprintf("%s#%d", name, seen[name])
		}
		sc.Endpoints[i].Name = name
	}
	return sc
}

func indexerConfig(cfg *config.Config) indexer.Config {
	return indexer.Config{
		FinalityDepth:       int64(cfg.Finality.Depth),
		UseFinalizedTag:     cfg.Finality.Tag == "finalized",
		BackfillConcurrency: cfg.Backfill.Concurrency,
		BackfillLogSource:   cfg.Backfill.LogSource,
		Range: source.RangeSizerConfig{
			Initial: uint64(cfg.Backfill.RangeBlocks),
			Max:     uint64(cfg.Backfill.MaxRangeBlocks),
		},
	}
}

func echainConfig(cfg *config.Config, st *store.Store) echain.Config {
	cc := func(c config.Contract) echain.ContractConfig {
		return echain.ContractConfig{Address: c.Address, StartBlock: c.StartBlock.Number}
	}
	return echain.Config{
		EventFactory:     cc(cfg.Contracts.EventFactory),
		Marketplace:      cc(cfg.Contracts.Marketplace),
		POAPAttendance:   cc(cfg.Contracts.POAPAttendance),
		IncentiveManager: cc(cfg.Contracts.IncentiveManager),
		MetadataGateway:  cfg.Metadata.Gateway,
		MetadataTimeout:  cfg.Metadata.Timeout,
		MetadataStore:    st,
	}
}

func webhookConfig(cfg *config.Config) webhook.Config {
	return webhook.Config{
		Secrets:       cfg.Webhook.Secrets,
		LegacySecrets: cfg.Webhook.LegacySecrets,
		Networks:      cfg.Webhook.Networks,
		Tolerance:     cfg.Webhook.Tolerance,
		MaxBody:       cfg.Webhook.MaxBodyBytes,
		ClientIP:      api.ClientIP(cfg.API.TrustedProxies),
	}
}

func apiLimits(cfg *config.Config) api.Limits {
	return api.Limits{
		ReadHeaderTimeout: cfg.API.ReadHeaderTimeout,
		ReadBodyTimeout:   cfg.API.ReadBodyTimeout,
		IdleTimeout:       cfg.API.IdleTimeout,
		MaxHeaderBytes:    int(cfg.API.MaxHeaderBytes),
		MaxInFlightBytes:  cfg.API.MaxInFlightBytes,
		MaxConnsPerClient: cfg.API.MaxConnsPerClient,
		ClientRate:        cfg.API.ClientRate,
		ClientBurst:       cfg.API.ClientBurst,
		Exempt:            cfg.API.ClientLimitExempt,
		TrustedProxies:    cfg.API.TrustedProxies,
	}
}

func graphqlOptions(cfg *config.Config, e *env, reg prometheus.Registerer) graphql.Options {
	cors := cfg.API.CORSOrigins
	if cors == nil {
		cors = []string{} // none configured: no CORS headers (nil would mean any origin)
	}
	return graphql.Options{
		Logger:           e.log.With("component", "graphql"),
		Registerer:       reg,
		MaxFirst:         cfg.API.MaxFirst,
		MaxSkip:          cfg.API.MaxSkip,
		MaxDepth:         cfg.API.MaxDepth,
		MaxConcurrent:    cfg.API.MaxConcurrent,
		StatementTimeout: cfg.API.QueryTimeout,
		MaxBodyBytes:     cfg.API.MaxBodyBytes,
		CORSOrigins:      cors,

		MaxTokens:          cfg.API.MaxTokens,
		MaxFields:          cfg.API.MaxFields,
		MaxAliases:         cfg.API.MaxAliases,
		MaxFragmentSpreads: cfg.API.MaxFragmentSpreads,
		MaxCost:            cfg.API.MaxCost,
		MaxResponseBytes:   int(cfg.API.MaxResponseBytes),
		MaxErrors:          cfg.API.MaxErrors,
	}
}

func subscriptionOptions(cfg *config.Config, e *env, reg prometheus.Registerer) subscriptions.Options {
	return subscriptions.Options{
		Logger:                  e.log.With("component", "subscriptions"),
		Registerer:              reg,
		MaxConnections:          cfg.Subscriptions.MaxConnections,
		MaxSubscriptionsPerConn: cfg.Subscriptions.MaxPerConnection,
		MaxFirst:                cfg.API.MaxFirst,
		KeepAlive:               cfg.Subscriptions.KeepAlive,
		Workers:                 cfg.Subscriptions.Workers,
		MaxMessageBytes:         cfg.Subscriptions.MaxMessageBytes,
		HandshakeTimeout:        cfg.Subscriptions.HandshakeTimeout,
		MessageTimeout:          cfg.API.ReadBodyTimeout,
		ReplicaPoll:             cfg.Subscriptions.ReplicaPoll,
		CheckOrigin:             originChecker(cfg.API.CORSOrigins),
	}
}

// originChecker applies api.cors_origins to WebSocket upgrades: browsers send Origin, other
// clients do not and are let through (CORS protects browser users, not the server).
func originChecker(origins []string) func(*http.Request) bool {
	if slices.Contains(origins, "*") {
		return nil
	}
	return func(r *http.Request) bool {
		o := r.Header.Get("Origin")
		return o == "" || slices.Contains(origins, strings.TrimSuffix(o, "/"))
	}
}

// checkChain refuses endpoints of another chain: indexing the wrong chain into the database
// would need a resync to undo.
func checkChain(ctx context.Context, cfg *config.Config, e *env) error {
	var reached int
	for _, u := range cfg.RPC.HTTPURLs {
		id, err := chainID(ctx, u, min(cfg.RPC.Timeout, 5*time.Second))
		if err != nil {
			e.log.Warn("RPC endpoint unreachable at start", "endpoint", config.Redact(u), "err", err)
			continue
		}
		if id.Uint64() != cfg.ChainID {
			return cfg.KeyError("chain_id", fmt.Errorf("%d, but %s serves chain %d", cfg.ChainID, config.Redact(u), id))
		}
		reached++
	}
	if reached == 0 {
		e.log.Warn("no RPC endpoint answered at start; retrying in the background", "endpoints", len(cfg.RPC.HTTPURLs))
	}
	return nil
}

func chainID(ctx context.Context, url string, timeout time.Duration) (*big.Int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := ethclient.DialContext(ctx, url)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ChainID(ctx)
}

// resolveStartBlocks replaces `auto` start blocks with the blocks of the contracts' first logs,
// kept in the database from an earlier start or searched with eth_getLogs (any full node
// answers it) through the source: its failover, retries and chain checks.
func resolveStartBlocks(ctx context.Context, cfg *config.Config, e *env, src *source.Source, st *store.Store) error {
	auto := false
	for _, c := range cfg.Contracts.All() {
		auto = auto || c.StartBlock.Auto
	}
	if !auto {
		return nil
	}
	return cfg.ResolveStartBlocks(ctx, src, st, e.log)
}
