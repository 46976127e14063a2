// Package config loads echain-indexer's configuration: the built-in config.yaml, an optional
// profile laid over it, an optional file of the operator's, ECHAIN_* environment variables and
// flags, in that order of precedence (sources.resolve; a file's value equal to the built-in one
// is the repository's default and does not override the profile). Every value is parsed
// strictly; a bad one fails with a single line that names the key, the problem and where the
// value came from, and keys nobody reads are reported instead of being silently ignored.
package config

//go:generate go run ./internal/embedgen ../config.yaml default.gen.yaml

import (
	"errors"
	"log/slog"
	"net/netip"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// Config is the validated configuration. Zero values never mean "unset": Load fills every field.
type Config struct {
	// Profile is the profile laid over the top level ("" for none).
	Profile string
	// File is the operator's config file that was read ("" when only the built-in one was).
	File string

	ChainID       uint64
	RPC           RPC
	Contracts     Contracts
	Finality      Finality
	Database      Database
	History       History
	Backfill      Backfill
	API           API
	Subscriptions Subscriptions
	Metrics       Metrics
	Webhook       Webhook
	Metadata      Metadata
	Log           Log
	Runtime       Runtime
	// ShutdownTimeout bounds a clean exit after SIGTERM/SIGINT.
	ShutdownTimeout time.Duration
	Devchain        Devchain

	// sources say where each key's value came from, for errors found after Load.
	sources map[string]string
}

// Source names where key's value came from: "$ECHAIN_CHAIN_ID", "--set api.listen",
// "./config.yaml", "profile base-sepolia", "built-in config.yaml" ("" for an unknown key).
func (c *Config) Source(key string) string { return c.sources[key] }

// KeyError is err about key's value, naming where the value came from.
func (c *Config) KeyError(key string, err error) *Error {
	return &Error{Key: key, Source: c.Source(key), Err: err}
}

// RPC is how the indexer reaches the chain.
type RPC struct {
	WSURLs      []string // ws:// or wss://; WSURLs[i] and HTTPURLs[i] are endpoint i
	HTTPURLs    []string // http:// or https://, at least one, in order of preference
	Timeout     time.Duration
	MaxAttempts int
	// RequestsPerSecond caps HTTP requests to each endpoint, CallsPerSecond the JSON-RPC calls
	// in them (0: none).
	RequestsPerSecond float64
	CallsPerSecond    float64
}

// StartBlock is a contract's first block: a number, or Auto to find the deployment block on the
// chain (the block of its first log: FindFirstLogBlock).
type StartBlock struct {
	Auto   bool
	Number uint64
}

func (s StartBlock) String() string {
	if s.Auto {
		return "auto"
	}
	return uitoa(s.Number)
}

// Contract is a fixed-address contract to follow.
type Contract struct {
	Name       string // the contract's name in the ABIs: "EventFactory"
	Address    common.Address
	StartBlock StartBlock
}

// Contracts are the Echain contracts at fixed addresses. EventTicket clones are discovered from
// EventFactory's logs.
type Contracts struct {
	EventFactory     Contract
	Marketplace      Contract
	POAPAttendance   Contract
	IncentiveManager Contract
}

// All lists the contracts in a fixed order.
func (c *Contracts) All() []*Contract {
	return []*Contract{&c.EventFactory, &c.Marketplace, &c.POAPAttendance, &c.IncentiveManager}
}

// Finality says when a block can no longer be reorganised away.
type Finality struct {
	Tag   string // "finalized" or "none"
	Depth uint64 // blocks behind the head, when Tag is none or the node has no finalized block
}

// Database is the PostgreSQL the indexer writes and the API reads.
type Database struct {
	// URL is from ECHAIN_DATABASE_URL or DATABASE_URL only; empty until one is set (see
	// RequireURL).
	URL string
	// PrimaryURL (ECHAIN_DATABASE_PRIMARY_URL only), for `serve` reading a hot standby: the
	// primary it replicates, whose cursor gives the replication lag in blocks. Optional.
	PrimaryURL string
	MaxConns   int32
}

// RequireURL is the database URL, or the error that says how to name one. There is no default:
// the one a server always has is `postgres`, the maintenance database, where the indexer's
// tables do not belong.
func (c *Config) RequireURL() (string, error) {
	if c.Database.URL == "" {
		return "", c.KeyError("database.url", errors.New("no database named: create one for the indexer "+
			"(createuser echain; createdb -O echain echain) and set ECHAIN_DATABASE_URL=postgres://echain@127.0.0.1:5432/echain"))
	}
	return c.Database.URL, nil
}

// History bounds the versions kept for time travel.
type History struct {
	RetentionBlocks uint64 // 0: keep everything
}

// Backfill tunes catching up with the chain.
type Backfill struct {
	RangeBlocks    int    // first eth_getLogs window
	MaxRangeBlocks int    // largest eth_getLogs window
	Concurrency    int    // block ranges fetched at once
	LogSource      string // auto, logs or receipts: where ranges get their logs
}

// API is the HTTP server of GraphQL, webhooks and health.
type API struct {
	Listen            string
	CORSOrigins       []string
	MaxFirst          int
	MaxSkip           int
	QueryTimeout      time.Duration
	MaxDepth          int
	MaxConcurrent     int
	ReadyMaxLagBlocks uint64
	// ReadyMaxReplicationLag: /readyz fails on a hot standby replaying this far behind.
	ReadyMaxReplicationLag time.Duration
	// ReplicaAwaitBlock: on a hot standby, a query for a block not replayed yet waits this long.
	ReplicaAwaitBlock time.Duration

	// Bounds on one request's work (api/graphql/engine Options): the parse budget, the cost
	// estimate, the answer's size and its errors.
	MaxTokens          int
	MaxFields          int
	MaxAliases         int
	MaxFragmentSpreads int
	MaxCost            int
	MaxResponseBytes   int64
	MaxErrors          int

	// Connection and request limits (api.Limits).
	ReadHeaderTimeout time.Duration
	ReadBodyTimeout   time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int64
	MaxBodyBytes      int64
	MaxInFlightBytes  int64
	MaxConnsPerClient int     // 0: no limit
	ClientRate        float64 // requests/s per client address; 0: no limit
	ClientBurst       int
	ClientLimitExempt []netip.Prefix
	TrustedProxies    []netip.Prefix
	// ReadyMaxRPCSilence: longer than the endpoints' health checks (every 15 s) so that a quiet
	// chain does not look like a dead endpoint.
	ReadyMaxRPCSilence time.Duration
}

// Subscriptions tunes GraphQL subscriptions over WebSocket.
type Subscriptions struct {
	MaxConnections   int
	MaxPerConnection int
	KeepAlive        time.Duration
	Workers          int
	MaxMessageBytes  int64
	HandshakeTimeout time.Duration
	ReplicaPoll      time.Duration // on a hot standby: how often the replayed head is read
}

// Metrics is the Prometheus listener.
type Metrics struct {
	Listen string // empty: off
}

// Webhook configures the Coinbase CDP webhook receiver.
type Webhook struct {
	Secrets       []string // CDP v2 (X-Hook0-Signature); from ECHAIN_WEBHOOK_SECRETS only
	LegacySecrets []string // X-Coinbase-Signature / X-CC-Webhook-Signature; ECHAIN_WEBHOOK_LEGACY_SECRETS only
	Networks      []string // CDP network labels accepted, e.g. base-sepolia
	Tolerance     time.Duration
	MaxBodyBytes  int64
}

// Metadata is how event metadata documents are fetched.
type Metadata struct {
	Gateway string // base URL for ipfs:// URIs, ends with "/"
	Timeout time.Duration
}

// Runtime tunes the Go runtime's garbage collector (see Runtime.Apply).
type Runtime struct {
	GCPercent   int   // heap growth between collections, % of the live heap
	MemoryLimit int64 // soft limit in bytes; 0: none
}

// Log configures the process logger.
type Log struct {
	Level  slog.Level
	Format string // "text" or "json"
}

// Devchain configures the dev chain of `devchain` and `demo`.
type Devchain struct {
	HTTPListen     string
	WSListen       string
	MetadataListen string
	Seed           int64
	BlockTime      time.Duration
	TxsPerBlock    int
	ReorgEvery     int // blocks between reorganisations; 0: never
	ReorgDepth     int
}
