package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/echain/echain-indexer/api"
	"github.com/echain/echain-indexer/config"
	"github.com/echain/echain-indexer/indexer"
	"github.com/echain/echain-indexer/schema"
	"github.com/echain/echain-indexer/store"
)

// statusReport is what `status` prints: the database's view (always), each RPC endpoint's
// answer, and the running indexer's live view (backfill, reorgs) when its /status answers.
type statusReport struct {
	Time       time.Time `json:"time"`
	Profile    string    `json:"profile"`
	ChainID    uint64    `json:"chainId"`
	ChainHead  int64     `json:"chainHead"` // best head among the endpoints that answered
	Indexed    *blockRef `json:"indexed"`   // the cursor in the database; null before the first block
	Finalized  int64     `json:"finalized"`
	LagBlocks  int64     `json:"lagBlocks"`
	LagSeconds float64   `json:"lagSeconds"`
	// HistoryFrom is the lowest block time travel answers exactly (raised by pruning).
	HistoryFrom    int64            `json:"historyFrom"`
	IndexingErrors int              `json:"indexingErrors"`
	Endpoints      []endpointReport `json:"endpoints"`
	Indexer        *liveStatus      `json:"indexer"` // null when no indexer answered
	IndexerURL     string           `json:"indexerUrl"`
	IndexerError   string           `json:"indexerError,omitempty"`
	Entities       []entityReport   `json:"entities"`
	DatabaseBytes  int64            `json:"databaseBytes"`
	// Replication is set when the database is a hot standby.
	Replication *api.Replication `json:"replication,omitempty"`
}

type blockRef struct {
	Number    int64  `json:"number"`
	Hash      string `json:"hash"`
	Timestamp int64  `json:"timestamp"`
}

type endpointReport struct {
	URL       string  `json:"url"` // redacted: scheme://host
	Head      int64   `json:"head"`
	ChainID   uint64  `json:"chainId"`
	LatencyMS float64 `json:"latencyMs"`
	Error     string  `json:"error,omitempty"`
}

type entityReport struct {
	Type  string `json:"type"`
	Table string `json:"table"`
	// Versions is the number of stored versions (PostgreSQL's estimate unless --count).
	Versions int64 `json:"versions"`
	// Current is the number of entities as of the head; -1 unless --count.
	Current int64 `json:"current"`
	Bytes   int64 `json:"bytes"` // table, indexes and TOAST
	Exact   bool  `json:"exact"`
}

// liveStatus is the running follower's snapshot as served at /status of the metrics listener.
type liveStatus struct {
	Mode       string            `json:"mode"`
	Leader     bool              `json:"leader"`
	ChainHead  int64             `json:"chainHead"`
	Finalized  int64             `json:"finalized"`
	Indexed    int64             `json:"indexed"`
	LagBlocks  int64             `json:"lagBlocks"`
	LagSeconds float64           `json:"lagSeconds"`
	Backfill   *backfillStatus   `json:"backfill,omitempty"`
	Reorgs     int               `json:"reorgs"`
	LastReorg  *reorgStatus      `json:"lastReorg,omitempty"`
	Sources    []sourceEndpoints `json:"sources"`
	Err        string            `json:"error,omitempty"`
}

type backfillStatus struct {
	From         int64   `json:"from"`
	To           int64   `json:"to"`
	Done         int64   `json:"done"`
	Logs         int64   `json:"logs"`
	Progress     float64 `json:"progress"` // 0..1
	BlocksPerSec float64 `json:"blocksPerSec"`
	LogsPerSec   float64 `json:"logsPerSec"`
	ETASeconds   float64 `json:"etaSeconds"`
}

type reorgStatus struct {
	At    time.Time `json:"at"`
	Depth int64     `json:"depth"`
	From  int64     `json:"from"` // the old head
	To    int64     `json:"to"`   // the common ancestor
}

type sourceEndpoints struct {
	Name      string  `json:"name"`
	URL       string  `json:"url"`
	WebSocket bool    `json:"websocket"`
	Head      uint64  `json:"head"`
	Lagging   bool    `json:"lagging"`
	Requests  uint64  `json:"requests"`
	Errors    uint64  `json:"errors"`
	LastError string  `json:"lastError,omitempty"`
	LatencyMS float64 `json:"latencyMs"`
	Cooling   bool    `json:"coolingDown"`
}

func liveFromFollower(s indexer.Status) liveStatus {
	l := liveStatus{
		Mode: s.Mode, Leader: s.Leader, ChainHead: s.ChainHead, Finalized: s.Finalized,
		Indexed: s.Indexed.Number, LagBlocks: s.LagBlocks, LagSeconds: s.LagSeconds,
		Reorgs: s.Reorgs, Err: s.Err,
	}
	if b := s.Backfill; b != nil {
		l.Backfill = &backfillStatus{From: b.From, To: b.To, Done: b.Done, Logs: b.Logs,
			BlocksPerSec: b.BlocksPerSec, LogsPerSec: b.LogsPerSec, ETASeconds: b.ETA.Seconds()}
		if total := b.To - b.From + 1; total > 0 {
			l.Backfill.Progress = min(max(float64(b.Done-b.From+1)/float64(total), 0), 1)
		}
	}
	if r := s.LastReorg; r != nil {
		l.LastReorg = &reorgStatus{At: r.At, Depth: r.Depth, From: r.From.Number, To: r.To.Number}
	}
	for _, ep := range s.Sources {
		l.Sources = append(l.Sources, sourceEndpoints{
			Name: ep.Name, URL: ep.URL, WebSocket: ep.WebSocket, Head: ep.Head, Lagging: ep.Lagging,
			Requests: ep.Requests, Errors: ep.Errors, LastError: ep.LastError,
			LatencyMS: float64(ep.Latency.Microseconds()) / 1000, Cooling: ep.CoolingDown > 0,
		})
	}
	return l
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func newStatusCmd(e *env) *cobra.Command {
	var asJSON, count bool
	var indexerURL string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the chain head, the indexed block, lag, backfill, reorgs, endpoints and database size",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if indexerURL == "" {
				indexerURL = defaultIndexerURL(e.cfg.Metrics.Listen)
			}
			r, err := collectStatus(cmd.Context(), e, e.cfg, indexerURL, count)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(r)
			}
			printStatus(e.stdout, r)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&count, "count", false, "count entities exactly (reads every table) instead of PostgreSQL's estimates")
	cmd.Flags().StringVar(&indexerURL, "indexer-url", "", "the running indexer's metrics listener (default: from metrics.listen)")
	return cmd
}

// defaultIndexerURL is where a local indexer's /status is, from its metrics.listen.
func defaultIndexerURL(listen string) string {
	if listen == "" {
		return ""
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return ""
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

func collectStatus(ctx context.Context, e *env, cfg *config.Config, indexerURL string, count bool) (*statusReport, error) {
	r := &statusReport{Time: time.Now().UTC(), Profile: cfg.Profile, ChainID: cfg.ChainID, IndexerURL: indexerURL, Finalized: -1}
	sch, err := schema.Load()
	if err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	st, err := openStore(ctx, e, cfg, sch, prometheus.NewRegistry())
	if err != nil {
		return nil, err
	}
	defer st.Close()
	ss, err := st.Status(ctx)
	if err != nil {
		// The store's error says what to do (ErrNotMigrated: run migrate); say which database.
		return nil, fmt.Errorf("status: database %s: %w", databaseName(st), err)
	}
	r.Finalized, r.HistoryFrom = ss.Finalized, ss.HistoryFrom
	if h := ss.Head; h != nil {
		r.Indexed = &blockRef{Number: h.Number, Hash: h.Hash.Hex(), Timestamp: h.Timestamp}
		if h.Timestamp > 0 {
			r.LagSeconds = max(time.Since(time.Unix(h.Timestamp, 0)).Seconds(), 0)
		}
	}
	if standby, err := st.InRecovery(ctx); err != nil {
		return nil, fmt.Errorf("status: %w", err)
	} else if standby {
		if r.Replication, err = statusReplication(ctx, st, cfg, r.Indexed); err != nil {
			return nil, fmt.Errorf("status: %w", err)
		}
	}
	if errs, err := st.IndexingErrors(ctx); err == nil {
		r.IndexingErrors = len(errs)
	}
	if r.Entities, r.DatabaseBytes, err = entitySizes(ctx, st, count); err != nil {
		return nil, err
	}

	r.Endpoints = probeEndpoints(ctx, cfg)
	for _, ep := range r.Endpoints {
		r.ChainHead = max(r.ChainHead, ep.Head)
	}
	if r.Indexed != nil && r.ChainHead > 0 {
		r.LagBlocks = max(r.ChainHead-r.Indexed.Number, 0)
	}
	if indexerURL != "" {
		r.Indexer, err = fetchLive(ctx, indexerURL)
		if err != nil {
			r.IndexerError = err.Error()
		}
	}
	return r, nil
}

// databaseName names the store's database as host:port/name (no user or password).
func databaseName(st *store.Store) string {
	c := st.Pool().Config().ConnConfig
	return fmt.Sprintf("%s on %s:%d", c.Database, c.Host, c.Port)
}

func entitySizes(ctx context.Context, st *store.Store, count bool) ([]entityReport, int64, error) {
	pool := st.Pool()
	var out []entityReport
	for _, t := range st.Layout().Tables {
		er := entityReport{Type: t.Type.Name, Table: t.Name, Current: -1}
		err := pool.QueryRow(ctx, `SELECT pg_total_relation_size($1::regclass)`, t.Name).Scan(&er.Bytes)
		if err != nil {
			return nil, 0, fmt.Errorf("status: size of %s: %w", t.Name, err)
		}
		if !count {
			if er.Versions, err = st.EstimatedRows(ctx, t.Name); err != nil {
				return nil, 0, fmt.Errorf("status: %w", err)
			}
		} else {
			if er.Versions, er.Current, err = store.CountVersions(ctx, pool, t); err != nil {
				return nil, 0, fmt.Errorf("status: %w", err)
			}
			er.Exact = true
		}
		out = append(out, er)
	}
	var dbBytes int64
	if err := pool.QueryRow(ctx, `SELECT pg_database_size(current_database())`).Scan(&dbBytes); err != nil {
		return nil, 0, fmt.Errorf("status: database size: %w", err)
	}
	return out, dbBytes, nil
}

// probeEndpoints asks every configured endpoint for its chain id and head, concurrently.
func probeEndpoints(ctx context.Context, cfg *config.Config) []endpointReport {
	out := make([]endpointReport, len(cfg.RPC.HTTPURLs))
	done := make(chan struct{})
	for i, u := range cfg.RPC.HTTPURLs {
		go func() {
			defer func() { done <- struct{}{} }()
			ep := endpointReport{URL: config.Redact(u)}
			defer func() { out[i] = ep }()
			ctx, cancel := context.WithTimeout(ctx, min(cfg.RPC.Timeout, 10*time.Second))
			defer cancel()
			c, err := ethclient.DialContext(ctx, u)
			if err != nil {
				ep.Error = err.Error()
				return
			}
			defer c.Close()
			start := time.Now()
			n, err := c.BlockNumber(ctx)
			if err != nil {
				ep.Error = err.Error()
				return
			}
			ep.LatencyMS = float64(time.Since(start).Microseconds()) / 1000
			ep.Head = int64(n)
			if id, err := c.ChainID(ctx); err == nil {
				ep.ChainID = id.Uint64()
				if ep.ChainID != cfg.ChainID {
					ep.Error = fmt.Sprintf("serves chain %d, configured chain_id is %d", ep.ChainID, cfg.ChainID)
				}
			}
		}()
	}
	for range cfg.RPC.HTTPURLs {
		<-done
	}
	return out
}

func fetchLive(ctx context.Context, base string) (*liveStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/status", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("no indexer answered at %s: %w", base, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("%s/status: %s: %s", base, resp.Status, strings.TrimSpace(string(b)))
	}
	var l liveStatus
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&l); err != nil {
		return nil, fmt.Errorf("%s/status: %w", base, err)
	}
	return &l, nil
}

func printStatus(w io.Writer, r *statusReport) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	profile := r.Profile
	if profile == "" {
		profile = "default"
	}
	fmt.Fprintf(tw, "chain\t%d (profile %s)\n", r.ChainID, profile)
	fmt.Fprintf(tw, "chain head\t%s\n", orDash(r.ChainHead))
	if r.Indexed == nil {
		fmt.Fprintf(tw, "indexed\tnothing yet\n")
	} else {
		fmt.Fprintf(tw, "indexed\t%d %s (%d blocks, %s behind)\n", r.Indexed.Number, short(r.Indexed.Hash), r.LagBlocks,
			(time.Duration(r.LagSeconds) * time.Second).String())
	}
	if rp := r.Replication; rp != nil {
		blocks := "primary unknown (database.primary_url)"
		if rp.LagBlocks != nil {
			blocks = fmt.Sprintf("%d blocks behind the primary's %d", *rp.LagBlocks, *rp.PrimaryHead)
		}
		paused := ""
		if rp.ReplayPaused {
			paused = ", replay paused"
		}
		fmt.Fprintf(tw, "replica\thot standby: replay %.1fs behind, %s%s\n", rp.LagSeconds, blocks, paused)
	}
	fmt.Fprintf(tw, "finalized\t%s\n", orDash(r.Finalized))
	fmt.Fprintf(tw, "history from\t%d\n", r.HistoryFrom)
	fmt.Fprintf(tw, "indexing errors\t%d\n", r.IndexingErrors)
	if l := r.Indexer; l != nil {
		role := "standby"
		if l.Leader {
			role = "leader"
		}
		fmt.Fprintf(tw, "indexer\t%s, %s (%s)\n", l.Mode, role, r.IndexerURL)
		if l.Err != "" {
			fmt.Fprintf(tw, "last error\t%s\n", l.Err)
		}
		if b := l.Backfill; b != nil {
			fmt.Fprintf(tw, "backfill\t%d..%d at %d (%.1f%%), %.0f blocks/s, %.0f logs/s, ETA %s\n", b.From, b.To, b.Done,
				100*b.Progress, b.BlocksPerSec, b.LogsPerSec, (time.Duration(b.ETASeconds) * time.Second).String())
		}
		if rg := l.LastReorg; rg != nil {
			fmt.Fprintf(tw, "last reorg\t%s ago: depth %d, head %d back to %d (%d in all)\n",
				time.Since(rg.At).Round(time.Second), rg.Depth, rg.From, rg.To, l.Reorgs)
		} else {
			fmt.Fprintf(tw, "last reorg\tnone since start\n")
		}
	} else if r.IndexerError != "" {
		fmt.Fprintf(tw, "indexer\t%s\n", r.IndexerError)
	}
	tw.Flush()

	fmt.Fprintln(w, "\nRPC endpoints")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  URL\tHEAD\tLATENCY\tSTATUS")
	for _, ep := range r.Endpoints {
		state := "ok"
		if ep.Error != "" {
			state = ep.Error
		}
		fmt.Fprintf(tw, "  %s\t%s\t%.1fms\t%s\n", ep.URL, orDash(ep.Head), ep.LatencyMS, state)
	}
	tw.Flush()

	fmt.Fprintln(w, "\nEntities")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "  TYPE\tVERSIONS\tCURRENT\tSIZE\t")
	for _, er := range r.Entities {
		cur := "-"
		if er.Current >= 0 {
			cur = fmt.Sprint(er.Current)
		}
		versions := fmt.Sprint(er.Versions)
		if !er.Exact {
			versions = "~" + versions
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t\n", er.Type, versions, cur, bytesText(er.Bytes))
	}
	tw.Flush()
	fmt.Fprintf(w, "\ndatabase size %s\n", bytesText(r.DatabaseBytes))
}

func orDash(n int64) string {
	if n <= 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

func short(h string) string {
	if len(h) > 12 {
		return h[:10] + "…"
	}
	return h
}

func bytesText(b int64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := int64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTPE"[exp])
}
