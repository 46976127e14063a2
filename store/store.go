// Package store keeps the entities in PostgreSQL: versioned tables generated from the schema,
// batched COPY writes in one transaction with the cursor, exact reverts, pruning, change
// notifications and the analyst views. See docs/ARCHITECTURE.md ("Storage layout", "store").
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/echain/echain-indexer/schema"
	"github.com/echain/echain-indexer/store/ddl"
)

// Options tune a Store. The zero value keeps full history with the default cache.
type Options struct {
	Logger     *slog.Logger          // nil: discard
	Registerer prometheus.Registerer // nil: metrics are kept but not exported
	// HistoryBlocks, when above zero, keeps only the versions of the last HistoryBlocks blocks
	// (older ones are pruned in the background after commits) and collapses the versions a batch
	// writes below finality to one per entity. Zero keeps every version: time travel to any block.
	HistoryBlocks int64
	// CacheEntities bounds the cross-batch cache of current rows (default 20,000; negative
	// disables it).
	CacheEntities int
	// MaxConns bounds the connection pool (default: pgxpool's, 4 or the number of CPUs).
	MaxConns int32
	// FilterMaxIDs bounds the in-memory filter of existing ids (about 1.25 bytes per id) that
	// spares new entities a lookup (default 50,000,000; negative disables it).
	FilterMaxIDs int
}

// defaultCacheEntities is the cache's default size. A cached row is about 600 bytes of live
// heap (a boxed value per field), which the garbage collector lets grow threefold at
// runtime.gc_percent 200: 100,000 rows held a backfill's RSS at its 384 MiB memory limit
// (issue 21). The hot entities (events counted on every mint, organizers) are a few thousand;
// the tickets a range touches again are read back by one Prefetch query per range.
const defaultCacheEntities = 20_000

// Store is the entity store of one database.
type Store struct {
	pool   *pgxpool.Pool
	sch    *schema.Schema
	layout *ddl.Layout
	tables []*table // schema order
	// sizeHint[i] is the entity count of table i in the last batch committed: a new batch's
	// maps start that large rather than rehashing their way up (backfill batches are alike).
	sizeHint []atomic.Int64
	byType   map[string]*table
	opts     Options
	log      *slog.Logger
	m        *metrics
	cache    *lru
	know     knowledge

	ctx        context.Context // the store's lifetime: background pruning stops with it
	cancel     context.CancelFunc
	bg         sync.WaitGroup
	pruneMu    sync.Mutex // guards pruning and lastPruned
	pruning    bool
	lastPruned int64
}

// table is what the store needs of one entity type.
type table struct {
	idx      int
	typ      *schema.EntityType
	layout   *ddl.Table
	name     string   // entities."ticket"
	codecs   []*codec // aligned with typ.Columns
	copyCols []string // vid, block_range|block, columns
	getSQL   string   // current version by id: vid, lower block, columns
	manySQL  string   // the same for many ids
	findSQL  string   // current versions of ids: id, vid, lower block
	clampSQL string   // close versions: vids, upper blocks
	insSQL   string   // one version: vid, block_range|block, columns
}

// Open connects to the database at url for the schema. It does not change the database: call
// Migrate before using the store for writes.
func Open(ctx context.Context, url string, sch *schema.Schema, opts Options) (*Store, error) {
	layout, err := ddl.Build(sch)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("store: database url: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: connect %s: %w", cfg.ConnConfig.Host, err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	size := opts.CacheEntities
	if size == 0 {
		size = defaultCacheEntities
	}
	s := &Store{pool: pool, sch: sch, layout: layout, byType: map[string]*table{}, opts: opts, log: log,
		m: newMetrics(opts.Registerer), cache: newLRU(size)}
	s.know.nextVid, s.know.maxFilterIDs = -1, opts.FilterMaxIDs
	if opts.FilterMaxIDs == 0 {
		s.know.maxFilterIDs = 50_000_000
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	for i, lt := range layout.Tables {
		t := &table{idx: i, typ: lt.Type, layout: lt, name: lt.Name}
		lower := ddl.VersionStart(t.typ, "")
		current := ""
		if c := ddl.Visible(t.typ, "", ""); c != "" {
			current = " AND " + c
		}
		t.copyCols = ddl.SystemColumns(t.typ)
		sel := []string{ddl.Quote(ddl.ColVid), lower}
		for _, c := range t.typ.Columns {
			cd := newCodec(c)
			t.codecs = append(t.codecs, cd)
			t.copyCols = append(t.copyCols, c.Column)
			sel = append(sel, cd.sel)
		}
		t.getSQL = fmt.Sprintf("SELECT %s FROM %s WHERE id = $1%s", strings.Join(sel, ", "), t.name, current)
		t.manySQL = fmt.Sprintf("SELECT %s FROM %s WHERE id = ANY($1::text[])%s", strings.Join(sel, ", "), t.name, current)
		t.findSQL = fmt.Sprintf("SELECT id, %s, %s FROM %s WHERE id = ANY($1::text[])%s", ddl.Quote(ddl.ColVid), lower, t.name, current)
		ph := make([]string, len(t.copyCols))
		qc := make([]string, len(t.copyCols))
		for i, c := range t.copyCols {
			ph[i], qc[i] = fmt.Sprintf("$%d", i+1), ddl.Quote(c)
		}
		t.insSQL = fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", t.name, strings.Join(qc, ", "), strings.Join(ph, ", "))
		t.clampSQL = fmt.Sprintf(`UPDATE %s AS t SET %s
FROM unnest($1::int8[], $2::int4[]) AS c(vid, upper) WHERE t.vid = c.vid`, t.name, ddl.EndAt("t", "c.upper"))
		s.tables = append(s.tables, t)
		s.byType[t.typ.Name] = t
	}
	s.sizeHint = make([]atomic.Int64, len(s.tables))
	return s, nil
}

// Pool is the connection pool, for readers (the API) and tests.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Schema is the entity schema the store was opened with.
func (s *Store) Schema() *schema.Schema { return s.sch }

// Layout is the table layout derived from the schema.
func (s *Store) Layout() *ddl.Layout { return s.layout }

// rowEstimateSQL is PostgreSQL's estimate of the rows of table $1: the larger of two counts that
// each fall short in their own way. reltuples moves only when (auto)vacuum, ANALYZE or CREATE
// INDEX runs, a minute or more behind a backfill. The statistics' live-row count follows every
// commit within seconds, but restarts from zero after a crash (or pg_stat_reset) and then counts
// only the rows written since: preferring it whenever it was non-zero made estimates 25-27x too
// low after a crash restart. Entity tables grow by appends, so both err low and the larger is
// nearer; after a prune or a revert it errs high until the next ANALYZE, which costs a larger id
// filter, where erring low costs filter misses. (reltuples is -1 before the first ANALYZE.)
const rowEstimateSQL = `SELECT greatest(coalesce(s.n_live_tup, 0), c.reltuples::int8, 0)
FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.oid = $1::regclass`

// EstimatedRows is PostgreSQL's estimate of the rows (entity versions) of a layout table,
// without reading it.
func (s *Store) EstimatedRows(ctx context.Context, table string) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, rowEstimateSQL, table).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: estimate rows of %s: %w", table, err)
	}
	return n, nil
}

// Close stops background work and closes the pool.
func (s *Store) Close() {
	s.cancel()
	s.bg.Wait()
	s.pool.Close()
}

func (s *Store) table(typ string) (*table, error) {
	t := s.byType[typ]
	if t == nil {
		return nil, fmt.Errorf("unknown entity type %q", typ)
	}
	return t, nil
}

// Head returns the last applied block, nil before the first.
func (s *Store) Head(ctx context.Context) (*BlockPtr, error) {
	st, err := s.Status(ctx)
	if err != nil {
		return nil, err
	}
	return st.Head, nil
}

// Status is the cursor and what bounds it.
type Status struct {
	Head *BlockPtr // nil before the first block
	// Finalized: blocks at or below cannot be reverted (-1 when none is).
	Finalized int64
	// HistoryFrom: time travel is exact at this block and above (raised by pruning).
	HistoryFrom int64
	// NextVid is the version id the next commit starts at.
	NextVid int64
}

// Status reads the cursor row.
func (s *Store) Status(ctx context.Context) (*Status, error) {
	var num, ts *int64
	var hash, parent []byte
	st := &Status{}
	err := s.pool.QueryRow(ctx, `SELECT number, hash, parent_hash, "timestamp", finalized, history_from, next_vid FROM `+ddl.HeadTable).
		Scan(&num, &hash, &parent, &ts, &st.Finalized, &st.HistoryFrom, &st.NextVid)
	if err != nil {
		return nil, fmt.Errorf("store: read head: %w", notMigrated(err))
	}
	if num != nil {
		st.Head = &BlockPtr{Number: *num, Hash: common.BytesToHash(hash), ParentHash: common.BytesToHash(parent)}
		if ts != nil {
			st.Head.Timestamp = *ts
		}
	}
	return st, nil
}

// Window returns the unfinalized blocks kept for reorgs, ascending.
func (s *Store) Window(ctx context.Context) ([]BlockPtr, error) {
	rows, err := s.pool.Query(ctx, `SELECT number, hash, parent_hash, "timestamp" FROM `+ddl.BlocksTable+` ORDER BY number`)
	if err != nil {
		return nil, fmt.Errorf("store: read window: %w", notMigrated(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (BlockPtr, error) {
		var p BlockPtr
		var h, ph []byte
		err := r.Scan(&p.Number, &h, &ph, &p.Timestamp)
		p.Hash, p.ParentHash = common.BytesToHash(h), common.BytesToHash(ph)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: read window: %w", err)
	}
	return out, nil
}

// DataSources returns the contracts learned from logs, by block.
func (s *Store) DataSources(ctx context.Context) ([]DataSource, error) {
	rows, err := s.pool.Query(ctx, `SELECT template, address, block, key FROM `+ddl.DataSourcesTable+` ORDER BY block, template, address`)
	if err != nil {
		return nil, fmt.Errorf("store: read data sources: %w", notMigrated(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DataSource, error) {
		var d DataSource
		var a []byte
		err := r.Scan(&d.Template, &a, &d.Block, &d.Key)
		d.Address = common.BytesToAddress(a)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: read data sources: %w", err)
	}
	return out, nil
}

// ErrNotMigrated is returned when the system tables are missing.
var ErrNotMigrated = errors.New("the database has no indexer tables: run `echain-indexer migrate` (or start the indexer) first")

func notMigrated(err error) error {
	if isUndefinedTable(err) {
		return fmt.Errorf("%w (%v)", ErrNotMigrated, err)
	}
	return err
}

func since(t time.Time) float64 { return time.Since(t).Seconds() }

// customPlans makes the transaction plan each statement with its parameter values. pgx
// prepares and caches statements, and after five runs PostgreSQL may switch one to a generic
// plan, estimated without them: for `vid >= $1` on a million rows that is a sequential scan (a
// 10-block revert took half a second). Scoped to the writer's transactions: readers of the pool
// keep their cached plans.
func customPlans(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, "SET LOCAL plan_cache_mode = force_custom_plan")
	return err
}
