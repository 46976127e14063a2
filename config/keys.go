package config

import (
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// Key describes one configuration key: its name in config.yaml (dots for nesting), where else it
// can come from and what it means. Keys lists all of them; nothing else is accepted.
type Key struct {
	Name string
	Help string
	// Secret keys come from the environment only: a config file or flag that sets one is refused.
	Secret bool
	// Env are the environment variables read for the key, first found wins.
	Env   []string
	apply func(c *Config, raw any) error
}

// EnvName is the primary environment variable of a key: ECHAIN_ + the key in upper case with
// dots as underscores.
func EnvName(key string) string {
	return "ECHAIN_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// FlagName is the long flag of a key (with `--set key=value` every key has one anyway).
func FlagName(key string) string {
	return strings.NewReplacer(".", "-", "_", "-").Replace(key)
}

func key[T any](name, help string, parse func(any) (T, error), field func(*Config) *T) Key {
	return Key{
		Name: name,
		Help: help,
		Env:  []string{EnvName(name)},
		apply: func(c *Config, raw any) error {
			v, err := parse(raw)
			if err != nil {
				return err
			}
			*field(c) = v
			return nil
		},
	}
}

func secret(k Key, moreEnv ...string) Key {
	k.Secret = true
	k.Env = append(k.Env, moreEnv...)
	return k
}

// Keys are all configuration keys, in config.yaml's order.
func Keys() []Key {
	ks := []Key{
		key("chain_id", "chain id the RPC endpoints must report", parseUint(1, 1<<53),
			func(c *Config) *uint64 { return &c.ChainID }),
		key("rpc.ws_url", "WebSocket RPC endpoints for newHeads, in order; empty: poll over HTTP",
			parseURLs("ws", "wss"), func(c *Config) *[]string { return &c.RPC.WSURLs }),
		key("rpc.http_url", "HTTP RPC endpoints for logs, receipts and calls, in failover order",
			parseURLs("http", "https"), func(c *Config) *[]string { return &c.RPC.HTTPURLs }),
		key("rpc.timeout", "deadline of one attempt of one JSON-RPC request", parseDuration(time.Millisecond, time.Hour),
			func(c *Config) *time.Duration { return &c.RPC.Timeout }),
		key("rpc.max_attempts", "attempts of one call, across endpoints", parseInt(1, 100),
			func(c *Config) *int { return &c.RPC.MaxAttempts }),
		key("rpc.requests_per_second", "HTTP requests per second to each endpoint, a batch counting once (0: no cap)", parseFloat(0, 1e6),
			func(c *Config) *float64 { return &c.RPC.RequestsPerSecond }),
		key("rpc.calls_per_second", "JSON-RPC calls per second to each endpoint, each element of a batch counted; also caps a batch at half a second's calls (0: no cap)", parseFloat(0, 1e6),
			func(c *Config) *float64 { return &c.RPC.CallsPerSecond }),
	}
	for _, ct := range contractKeys {
		ks = append(ks,
			key("contracts."+ct.key+".address", ct.name+" address", parseAddress,
				func(c *Config) *common.Address { return &ct.field(c).Address }),
			key("contracts."+ct.key+".start_block", ct.name+" first block, or auto (its first log, found with eth_getLogs)",
				parseStartBlock, func(c *Config) *StartBlock { return &ct.field(c).StartBlock }),
		)
	}
	ks = append(ks,
		key("finality.tag", "finalized: the node says which blocks are final; none: depth does", parseEnum("finalized", "none"),
			func(c *Config) *string { return &c.Finality.Tag }),
		key("finality.depth", "blocks behind the head after which a block is final", parseUint(1, 1<<20),
			func(c *Config) *uint64 { return &c.Finality.Depth }),
		secret(key("database.url", "PostgreSQL connection string (default: the server on 127.0.0.1:5432)",
			parseDatabaseURL, func(c *Config) *string { return &c.Database.URL }), "DATABASE_URL"),
		secret(key("database.primary_url", "for `serve` on a hot standby: its primary, to report replication lag in blocks (optional)",
			parseDatabaseURL, func(c *Config) *string { return &c.Database.PrimaryURL })),
		key("database.max_conns", "connections in the pool", parseInt32(2, 1000),
			func(c *Config) *int32 { return &c.Database.MaxConns }),
		key("history.retention_blocks", "blocks of history kept for time travel (0: all)", parseUint(0, 1<<31-1),
			func(c *Config) *uint64 { return &c.History.RetentionBlocks }),
		key("backfill.range_blocks", "first eth_getLogs window in blocks", parseInt(1, 1_000_000),
			func(c *Config) *int { return &c.Backfill.RangeBlocks }),
		key("backfill.max_range_blocks", "largest eth_getLogs window in blocks", parseInt(1, 1_000_000),
			func(c *Config) *int { return &c.Backfill.MaxRangeBlocks }),
		key("backfill.concurrency", "block ranges fetched at once", parseInt(1, 64),
			func(c *Config) *int { return &c.Backfill.Concurrency }),
		key("backfill.log_source", "auto, logs (eth_getLogs) or receipts (every block's receipts)",
			parseEnum("auto", "logs", "receipts"), func(c *Config) *string { return &c.Backfill.LogSource }),
		key("api.listen", "GraphQL/webhook/health listen address (host:port)", parseListen(false),
			func(c *Config) *string { return &c.API.Listen }),
		key("api.cors_origins", "origins allowed by CORS (* for any)", parseOrigins,
			func(c *Config) *[]string { return &c.API.CORSOrigins }),
		key("api.max_first", "largest `first` argument", parseInt(1, 1_000_000),
			func(c *Config) *int { return &c.API.MaxFirst }),
		key("api.max_skip", "largest `skip` argument", parseInt(1, 100_000_000),
			func(c *Config) *int { return &c.API.MaxSkip }),
		key("api.query_timeout", "deadline of one GraphQL query", parseDuration(time.Millisecond, time.Hour),
			func(c *Config) *time.Duration { return &c.API.QueryTimeout }),
		key("api.max_depth", "deepest selection nesting of a query", parseInt(2, 1000),
			func(c *Config) *int { return &c.API.MaxDepth }),
		key("api.max_concurrent", "queries executed at once", parseInt(1, 100_000),
			func(c *Config) *int { return &c.API.MaxConcurrent }),
		key("api.max_tokens", "tokens of one query text, checked before it is parsed further", parseInt(100, 10_000_000),
			func(c *Config) *int { return &c.API.MaxTokens }),
		key("api.max_fields", "fields one query selects with its fragments expanded", parseInt(10, 10_000_000),
			func(c *Config) *int { return &c.API.MaxFields }),
		key("api.max_aliases", "aliases one query uses with its fragments expanded", parseInt(1, 10_000_000),
			func(c *Config) *int { return &c.API.MaxAliases }),
		key("api.max_fragment_spreads", "fragment spreads of one query once expanded", parseInt(1, 10_000_000),
			func(c *Config) *int { return &c.API.MaxFragmentSpreads }),
		key("api.max_cost", "field values one query may produce, estimated from `first` and nesting", parseInt(100, 1<<40),
			func(c *Config) *int { return &c.API.MaxCost }),
		key("api.max_response_bytes", "largest answer (its data JSON), e.g. 16MiB", parseBytes,
			func(c *Config) *int64 { return &c.API.MaxResponseBytes }),
		key("api.max_errors", "errors in one answer after identical ones are merged", parseInt(1, 100_000),
			func(c *Config) *int { return &c.API.MaxErrors }),
		key("api.ready_max_lag_blocks", "/readyz fails beyond this lag behind the head", parseUint(0, 1<<31-1),
			func(c *Config) *uint64 { return &c.API.ReadyMaxLagBlocks }),
		key("api.read_header_timeout", "deadline of a request's headers (WebSocket upgrades too)", parseDuration(100*time.Millisecond, time.Hour),
			func(c *Config) *time.Duration { return &c.API.ReadHeaderTimeout }),
		key("api.read_body_timeout", "deadline of a request body, or a WebSocket message, once started", parseDuration(100*time.Millisecond, time.Hour),
			func(c *Config) *time.Duration { return &c.API.ReadBodyTimeout }),
		key("api.idle_timeout", "keep-alive connections idle this long are closed", parseDuration(time.Second, time.Hour),
			func(c *Config) *time.Duration { return &c.API.IdleTimeout }),
		key("api.max_header_bytes", "largest request headers", parseSize(4<<10, 16<<20),
			func(c *Config) *int64 { return &c.API.MaxHeaderBytes }),
		key("api.max_body_bytes", "largest GraphQL request body", parseSize(1<<10, 1<<30),
			func(c *Config) *int64 { return &c.API.MaxBodyBytes }),
		key("api.max_inflight_bytes", "request bytes held by the whole process at once", parseSize(64<<10, 1<<40),
			func(c *Config) *int64 { return &c.API.MaxInFlightBytes }),
		key("api.max_conns_per_client", "open connections per client address (0: no limit)", parseInt(0, 10_000_000),
			func(c *Config) *int { return &c.API.MaxConnsPerClient }),
		key("api.client_rate", "GraphQL requests per second per client address (0: no limit)", parseFloat(0, 1e9),
			func(c *Config) *float64 { return &c.API.ClientRate }),
		key("api.client_burst", "requests a client address may send at once above client_rate", parseInt(1, 1_000_000_000),
			func(c *Config) *int { return &c.API.ClientBurst }),
		key("api.client_limit_exempt", "addresses/CIDRs without per-client limits", parsePrefixes,
			func(c *Config) *[]netip.Prefix { return &c.API.ClientLimitExempt }),
		key("api.trusted_proxies", "reverse proxies (addresses/CIDRs) whose X-Forwarded-For names the client", parsePrefixes,
			func(c *Config) *[]netip.Prefix { return &c.API.TrustedProxies }),
		key("api.ready_max_replication_lag", "/readyz fails on a hot standby whose replay trails its primary by more than this",
			parseDuration(time.Millisecond, 24*time.Hour), func(c *Config) *time.Duration { return &c.API.ReadyMaxReplicationLag }),
		key("api.replica_await_block", "on a hot standby: how long a query for a block not replayed yet waits for it",
			parseDuration(0, time.Minute), func(c *Config) *time.Duration { return &c.API.ReplicaAwaitBlock }),
		key("api.ready_max_rpc_silence", "/readyz fails when no RPC endpoint has answered for this long", parseDuration(time.Second, 24*time.Hour),
			func(c *Config) *time.Duration { return &c.API.ReadyMaxRPCSilence }),
		key("subscriptions.max_connections", "open subscription WebSockets", parseInt(1, 10_000_000),
			func(c *Config) *int { return &c.Subscriptions.MaxConnections }),
		key("subscriptions.max_per_connection", "subscriptions per WebSocket", parseInt(1, 100_000),
			func(c *Config) *int { return &c.Subscriptions.MaxPerConnection }),
		key("subscriptions.keepalive", "WebSocket ping interval", parseDuration(time.Second, time.Hour),
			func(c *Config) *time.Duration { return &c.Subscriptions.KeepAlive }),
		key("subscriptions.workers", "subscription operations executed at once per block", parseInt(1, 1000),
			func(c *Config) *int { return &c.Subscriptions.Workers }),
		key("subscriptions.max_message_bytes", "largest WebSocket client message", parseSize(1<<10, 1<<30),
			func(c *Config) *int64 { return &c.Subscriptions.MaxMessageBytes }),
		key("subscriptions.handshake_timeout", "deadline of answering a WebSocket upgrade", parseDuration(100*time.Millisecond, time.Hour),
			func(c *Config) *time.Duration { return &c.Subscriptions.HandshakeTimeout }),
		key("subscriptions.replica_poll", "on a hot standby: how often the replayed head is read for changes",
			parseDuration(time.Millisecond, time.Minute), func(c *Config) *time.Duration { return &c.Subscriptions.ReplicaPoll }),
		key("metrics.listen", "Prometheus /metrics listen address (empty: off)", parseListen(true),
			func(c *Config) *string { return &c.Metrics.Listen }),
		secret(key("webhook.secrets", "Coinbase CDP webhook subscription secrets, comma-separated",
			parseSecrets, func(c *Config) *[]string { return &c.Webhook.Secrets })),
		secret(key("webhook.legacy_secrets", "secrets of legacy X-Coinbase-Signature / X-CC-Webhook-Signature deliveries",
			parseSecrets, func(c *Config) *[]string { return &c.Webhook.LegacySecrets })),
		key("webhook.networks", "CDP network labels accepted as hints", parseNetworks,
			func(c *Config) *[]string { return &c.Webhook.Networks }),
		key("webhook.tolerance", "largest accepted age of a signed webhook delivery",
			parseDuration(time.Second, 24*time.Hour), func(c *Config) *time.Duration { return &c.Webhook.Tolerance }),
		key("webhook.max_body_bytes", "largest webhook delivery", parseSize(1<<10, 1<<30),
			func(c *Config) *int64 { return &c.Webhook.MaxBodyBytes }),
		key("metadata.gateway", "HTTP gateway for ipfs:// metadata URIs", parseGateway,
			func(c *Config) *string { return &c.Metadata.Gateway }),
		key("metadata.timeout", "deadline of one metadata fetch", parseDuration(time.Millisecond, time.Hour),
			func(c *Config) *time.Duration { return &c.Metadata.Timeout }),
		key("log.level", "debug, info, warn or error", parseLevel,
			func(c *Config) *slog.Level { return &c.Log.Level }),
		key("log.format", "text or json", parseEnum("text", "json"),
			func(c *Config) *string { return &c.Log.Format }),
		key("runtime.gc_percent", "heap growth between garbage collections, % of the live heap", parseInt(10, 10_000),
			func(c *Config) *int { return &c.Runtime.GCPercent }),
		key("runtime.memory_limit", "soft memory limit of the process, e.g. 384MiB (0: none)", parseBytes,
			func(c *Config) *int64 { return &c.Runtime.MemoryLimit }),
		key("shutdown_timeout", "deadline of a clean exit after SIGTERM/SIGINT", parseDuration(time.Second, time.Hour),
			func(c *Config) *time.Duration { return &c.ShutdownTimeout }),
		key("devchain.http_listen", "dev chain HTTP JSON-RPC address", parseListen(false),
			func(c *Config) *string { return &c.Devchain.HTTPListen }),
		key("devchain.ws_listen", "dev chain WebSocket JSON-RPC address", parseListen(false),
			func(c *Config) *string { return &c.Devchain.WSListen }),
		key("devchain.metadata_listen", "dev chain metadata server address", parseListen(false),
			func(c *Config) *string { return &c.Devchain.MetadataListen }),
		key("devchain.seed", "traffic generator seed", parseInt64,
			func(c *Config) *int64 { return &c.Devchain.Seed }),
		key("devchain.block_time", "dev chain block interval", parseDuration(10*time.Millisecond, time.Hour),
			func(c *Config) *time.Duration { return &c.Devchain.BlockTime }),
		key("devchain.txs_per_block", "transactions the traffic generator sends per block", parseInt(0, 10_000),
			func(c *Config) *int { return &c.Devchain.TxsPerBlock }),
		key("devchain.reorg_every", "blocks between injected reorganisations (0: never)", parseInt(0, 1_000_000),
			func(c *Config) *int { return &c.Devchain.ReorgEvery }),
		key("devchain.reorg_depth", "deepest injected reorganisation in blocks", parseInt(1, 1000),
			func(c *Config) *int { return &c.Devchain.ReorgDepth }),
	)
	return ks
}

// contractKeys name the contracts' keys, in the order of Contracts.All.
var contractKeys = []struct {
	key, name string
	field     func(*Config) *Contract
}{
	{"event_factory", "EventFactory", func(c *Config) *Contract { return &c.Contracts.EventFactory }},
	{"marketplace", "Marketplace", func(c *Config) *Contract { return &c.Contracts.Marketplace }},
	{"poap_attendance", "POAPAttendance", func(c *Config) *Contract { return &c.Contracts.POAPAttendance }},
	{"incentive_manager", "IncentiveManager", func(c *Config) *Contract { return &c.Contracts.IncentiveManager }},
}
