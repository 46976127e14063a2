package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/ethereum/go-ethereum/common"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/echain/echain-indexer/store"
)

// blockInfo describes a block for _meta; Hash is nil when the indexer no longer keeps it.
type blockInfo = store.ReadBlock

// session is one query's view of the store: a REPEATABLE READ READ ONLY transaction, so the
// cursor and every entity a response shows come from the same committed state, whatever the
// indexer commits or reverts meanwhile. It starts with the first statement a resolver needs
// (the BEGIN, the cursor read and that statement travel in one round trip) and ends when the
// response is complete. Statements run one at a time on its connection.
type session struct {
	e       *Engine
	ctx     context.Context // the request's, for loads resolvers start without one
	at      int64           // ExecOptions.AtBlock: the default block, 0 = the latest
	atHash  []byte          // ExecOptions.AtHash: the hash block `at` must have
	hashOK  bool            // atHash was checked
	collate string          // see collation
	plan    *plan           // the columns each load reads

	mu         sync.Mutex
	conn       *pgxpool.Conn
	tx         pgx.Tx
	begun      bool
	err        error        // sticky: the transaction is unusable after a failed statement
	head       *blockInfo   // nil before the indexer applied its first block
	historyN   int64        // time travel reaches back to this block
	finalized  int64        // blocks at or below are final and outside the window (-1: none)
	errorBlock *int64       // lowest block with a recorded indexing error
	entities   atomic.Int64 // entities loaded so far
	statements int
	roundTrips int
}

type sessionKey struct{}

func withSession(ctx context.Context, s *session) context.Context {
	return context.WithValue(ctx, sessionKey{}, s)
}

func sessionFrom(ctx context.Context) (*session, error) {
	s, ok := ctx.Value(sessionKey{}).(*session)
	if !ok {
		return nil, errorf(codeInternal, "no query session in context")
	}
	return s, nil
}

// headSQL reads the cursor at the start of the snapshot and sets the transaction's limits.
// Statements are prepared once per connection and their values are parameters; with the default
// plan cache mode PostgreSQL keeps planning a fresh custom plan on every execution for most of
// them (planning a query over a table with fifteen indexes costs 0.2-1 ms, more than running it),
// so the API's transactions use the generic plan: one plan per statement and connection.
// Assigned once here and never changed.
var headSQL = store.CursorQuery("set_config('statement_timeout', $1, true)", "set_config('plan_cache_mode', 'force_generic_plan', true)")

func (s *session) builder(b bound) *builder {
	return &builder{m: s.e.m, b: b, collate: s.collate}
}

// tentative is the bound a statement sent together with BEGIN reads at, before the cursor is
// known; resolve checks it once the cursor has been read.
func (s *session) tentative(spec *BlockHeight) bound {
	switch {
	case spec != nil && spec.Number != nil:
		return bound{at: int64(*spec.Number)}
	case s.at > 0:
		return bound{at: s.at}
	}
	return bound{current: true}
}

// read runs one statement of a root field at the block spec asks for.
func (s *session) read(ctx context.Context, spec *BlockHeight, build func(bound) (string, []any, error), scan func(bound, pgx.Rows) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	// The first statement travels with BEGIN unless the block must first be looked up.
	if !s.begun && (spec == nil || spec.Hash == nil) && s.atHash == nil {
		tb := s.tentative(spec)
		q, args, err := build(tb)
		if err != nil {
			return err
		}
		return s.begin(ctx, spec, q, args, func(r pgx.Rows) error { return scan(tb, r) })
	}
	if err := s.begin(ctx, nil, "", nil, nil); err != nil {
		return err
	}
	b, err := s.resolve(ctx, spec)
	if err != nil {
		return err
	}
	q, args, err := build(b)
	if err != nil {
		return err
	}
	return s.run(ctx, q, args, func(r pgx.Rows) error { return scan(b, r) })
}

// readAt runs a statement of a nested field; the snapshot has begun.
func (s *session) readAt(ctx context.Context, q string, args []any, scan func(pgx.Rows) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	return s.run(ctx, q, args, scan)
}

// begin starts the snapshot (when it has not) and reads the cursor; q, when given, is sent in the
// same round trip and scanned only when spec turns out to be answerable.
func (s *session) begin(ctx context.Context, spec *BlockHeight, q string, args []any, scan func(pgx.Rows) error) error {
	if s.begun {
		if q == "" {
			return nil
		}
		return s.run(ctx, q, args, scan)
	}
	sctx, cancel := s.stmtCtx(ctx)
	defer cancel()
	conn, err := s.e.pool.Acquire(sctx)
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			s.err = errorf(codeLimitBusy, "no database connection became free within %s (the pool is busy; limit max_concurrent)", s.e.cfg.StatementTimeout)
			return s.err
		}
		return s.fail(ctx, fmt.Errorf("acquire a database connection: %w", err))
	}
	s.conn = conn
	s.begun = true
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	b.Queue(headSQL, s.e.stmtTimeout)
	if q != "" {
		b.Queue(q, args...)
	}
	s.statements += b.Len()
	s.roundTrips++
	br := conn.SendBatch(sctx, b)
	if _, err := br.Exec(); err != nil {
		br.Close()
		return s.fail(ctx, fmt.Errorf("begin: %w", err))
	}
	s.tx = br.Tx()
	var setting string
	cur, err := store.ScanCursor(br.QueryRow(), &setting, &setting)
	if err != nil {
		br.Close()
		return s.fail(ctx, err)
	}
	s.head, s.historyN, s.errorBlock, s.finalized = cur.Head, cur.HistoryFrom, cur.ErrorBlock, cur.Finalized
	if q == "" {
		if err := br.Close(); err != nil {
			return s.fail(ctx, err)
		}
		return nil
	}
	rows, qerr := br.Query()
	if qerr == nil {
		// The statement read at a tentative block; it stands only if that block is answerable.
		if _, err := s.resolve(ctx, spec); err != nil {
			rows.Close()
			br.Close()
			return err
		}
		qerr = scan(rows)
		rows.Close()
		if qerr == nil {
			qerr = rows.Err()
		}
	}
	cerr := br.Close()
	if qerr != nil {
		return s.fail(ctx, qerr)
	}
	if cerr != nil {
		return s.fail(ctx, cerr)
	}
	return nil
}

func (s *session) run(ctx context.Context, q string, args []any, scan func(pgx.Rows) error) error {
	s.statements++
	s.roundTrips++
	sctx, cancel := s.stmtCtx(ctx)
	defer cancel()
	rows, err := s.conn.Query(sctx, q, args...)
	if err != nil {
		return s.fail(ctx, err)
	}
	err = scan(rows)
	rows.Close()
	if err == nil {
		err = rows.Err()
	}
	if err != nil {
		return s.fail(ctx, err)
	}
	return nil
}

// stmtCtx bounds one statement (or the round trip that starts the snapshot) by the statement
// timeout on the client side too: PostgreSQL's statement_timeout is set only once the
// transaction has begun, and a statement can wait before that (a lock while it is prepared).
func (s *session) stmtCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.e.cfg.StatementTimeout)
}

// fail records a database error. Errors for the client (limits, bad input) pass through and
// leave the snapshot usable. ctx is the request's.
func (s *session) fail(ctx context.Context, err error) error {
	var ce *Error
	if errors.As(err, &ce) {
		return ce
	}
	var pe *pgconn.PgError
	switch {
	case ctx.Err() != nil:
		err = fmt.Errorf("query cancelled: %w", ctx.Err())
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &pe) && pe.Code == "57014":
		err = errorf(codeLimitTimeout, "the query exceeded the statement timeout of %s (limit statement_timeout)", s.e.cfg.StatementTimeout)
	default:
		s.e.log.Error("graphql: database statement failed", "err", err)
		err = errorf(codeInternal, "database error: %v", err)
	}
	s.err = err
	return err
}

// resolve turns a block argument into the bound it reads at, checking it against the cursor.
func (s *session) resolve(ctx context.Context, spec *BlockHeight) (bound, error) {
	if s.head == nil {
		return bound{}, errorf(codeNotStarted, "the indexer has not indexed any block yet")
	}
	head := s.head.Number
	ahead := func(field string, n int64) error {
		return errorf(codeBlockAhead, "Failed to decode `%s` value: `subgraph %s has only indexed up to block number %d and data for block number %d is therefore not yet available`",
			field, s.e.cfg.Deployment, head, n)
	}
	at := func(field string, n int64) (bound, error) {
		switch {
		case n < 0:
			return bound{}, errorf(codeBadBlock, "Failed to decode `%s` value: block numbers are not negative, got %d", field, n)
		case n > head:
			return bound{}, ahead(field, n)
		case n == head:
			return bound{current: true}, nil
		case n < s.historyN:
			return bound{}, errorf(codeBlockPruned, "Failed to decode `%s` value: `subgraph %s only has data starting at block number %d and data for block number %d is therefore not available`",
				field, s.e.cfg.Deployment, s.historyN, n)
		}
		return bound{at: n}, nil
	}
	def := func() (bound, error) {
		if s.at > 0 {
			if err := s.checkAtHash(ctx); err != nil {
				return bound{}, err
			}
			return at("block.number", s.at)
		}
		return bound{current: true}, nil
	}
	switch {
	case spec == nil:
		return def()
	case spec.Hash != nil:
		n, err := s.numberOfHash(ctx, *spec.Hash)
		if err != nil {
			return bound{}, err
		}
		if spec.Number != nil && int64(*spec.Number) != n {
			return bound{}, errorf(codeBadBlock, "block.hash %s is block number %d, not %d", *spec.Hash, n, *spec.Number)
		}
		return at("block.hash", n)
	case spec.Number != nil:
		return at("block.number", int64(*spec.Number))
	case spec.NumberGte != nil:
		n := int64(*spec.NumberGte)
		if n > head {
			return bound{}, ahead("block.number_gte", n)
		}
		b, err := def()
		if err == nil && !b.current && b.at < n {
			return bound{}, ahead("block.number_gte", n)
		}
		return b, err
	}
	return def()
}

// checkAtHash makes sure block `at` is still the block ExecOptions.AtHash names: a subscription
// told about a block must not label another branch's state with that block's hash.
func (s *session) checkAtHash(ctx context.Context) error {
	if s.atHash == nil || s.hashOK {
		return nil
	}
	var have []byte
	if s.head != nil && s.head.Number == s.at {
		have = s.head.Hash
	} else if s.head != nil && s.at < s.head.Number {
		bi, err := s.blockAt(ctx, s.at)
		if err != nil {
			return err
		}
		have = bi.Hash
	}
	if s.head != nil && s.at <= s.head.Number && string(have) != string(s.atHash) {
		return errorf(codeBlockUnknown, "block %d is no longer 0x%x (the chain was reorganised, or the block is older than the kept window)", s.at, s.atHash)
	}
	s.hashOK = s.head != nil && s.at <= s.head.Number
	return nil
}

// numberOfHash finds a block by hash: the head and the unfinalized window from the store, older
// blocks from the node (finalBlocks).
func (s *session) numberOfHash(ctx context.Context, h Bytes) (int64, error) {
	raw, err := coerceBytes(string(h))
	if err != nil {
		return 0, errorf(codeBadBlock, "Failed to decode `block.hash` value: %v", err)
	}
	if len(raw) != common.HashLength {
		return 0, errorf(codeBlockUnknown, "Failed to decode `block.hash` value: `no block with that hash found` (%s is not 32 bytes long)", h)
	}
	if s.head != nil && string(s.head.Hash) == string(raw) {
		return s.head.Number, nil
	}
	s.statements++
	s.roundTrips++
	sctx, cancel := s.stmtCtx(ctx)
	defer cancel()
	n, ok, err := store.WindowBlockByHash(sctx, s.conn, raw)
	if err != nil {
		return 0, s.fail(ctx, err)
	}
	if !ok {
		return s.e.final.number(sctx, common.BytesToHash(raw), s.finalized, s.head.Number)
	}
	return n, nil
}

// blockAt describes block n for _meta: from the cursor or the unfinalized window when kept there,
// else (finalized) from the node; without an answer from the node the hash stays null, as
// graph-node leaves it.
func (s *session) blockAt(ctx context.Context, n int64) (*blockInfo, error) {
	if s.head != nil && n == s.head.Number {
		return s.head, nil
	}
	s.statements++
	s.roundTrips++
	sctx, cancel := s.stmtCtx(ctx)
	defer cancel()
	bi, err := store.WindowBlock(sctx, s.conn, n)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	if bi != nil {
		return bi, nil
	}
	if n > s.finalized {
		return &blockInfo{Number: n}, nil
	}
	fb, err := s.e.final.at(sctx, n)
	if err != nil {
		if !errors.Is(err, errNoChain) {
			s.e.log.Warn("graphql: no hash for _meta", "block", n, "err", err)
		}
		return &blockInfo{Number: n}, nil
	}
	return fb, nil
}

// checkErrors applies the subgraphError policy: with deny, data at or after a block with a
// recorded indexing error is refused.
func (s *session) checkErrors(policy string, b bound) error {
	if policy == "allow" || s.errorBlock == nil || s.head == nil {
		return nil
	}
	n := s.head.Number
	if !b.current {
		n = b.at
	}
	if *s.errorBlock <= n {
		return errorf(codeIndexingError, "indexing_error: the indexer recorded an indexing error at block %d; pass subgraphError: allow to read the data anyway", *s.errorBlock)
	}
	return nil
}

// close ends the snapshot and returns the connection.
func (s *session) close(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return
	}
	var err error
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.e.cfg.StatementTimeout)
	defer cancel()
	if s.tx != nil {
		s.roundTrips++
		if s.err == nil && ctx.Err() == nil {
			err = s.tx.Commit(cctx)
		} else {
			err = s.tx.Rollback(cctx)
		}
	}
	if err != nil {
		// The connection's state is unknown: do not hand it to the next query.
		_ = s.conn.Conn().Close(cctx)
	}
	s.conn.Release()
	s.conn = nil
}
