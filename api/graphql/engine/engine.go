// Package engine serves an entity schema as The Graph's GraphQL dialect over the versioned
// PostgreSQL store: the API schema derived from the entities (SDL), the executor that answers it
// with a bounded number of parameterised statements per query inside one read-only snapshot,
// and the HTTP handler. Resolvers are generated per schema (codegen) and call back into the
// executor through Node, Engine.One, Engine.List and Engine.Meta.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	gql "github.com/graph-gophers/graphql-go"
	gqlerrors "github.com/graph-gophers/graphql-go/errors"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/echain/echain-indexer/schema"
)

// Options configure the API. Zero values take the defaults in brackets.
type Options struct {
	Logger     *slog.Logger          // [slog.Default()]
	Registerer prometheus.Registerer // metrics echain_indexer_graphql_*; [none]

	Deployment string // _meta.deployment [echain]

	MaxFirst          int           // largest `first` [1000]
	DefaultFirst      int           // `first` when absent [100]
	MaxSkip           int           // largest `skip` [5000]
	MaxDepth          int           // deepest field nesting of a query [16]
	MaxQueryBytes     int           // longest query text [65536]
	MaxBodyBytes      int64         // largest HTTP request body [1 MiB]
	MaxResultEntities int           // entities one query may load, all levels together [50000]
	StatementTimeout  time.Duration // per SQL statement [10s]
	MaxConcurrent     int           // queries executing at once [64]
	QueueTimeout      time.Duration // wait for a free slot before refusing [1s]

	// QueryTimeout is the deadline of a whole request: the wait for a slot, validation and
	// execution [StatementTimeout + QueueTimeout].
	QueryTimeout time.Duration
	// The parse budget, checked in one linear pass before validation (front.go): tokens of the
	// text [15000]; fields, aliases and fragment spreads with every fragment expanded [1000,
	// 200, 500].
	MaxTokens          int
	MaxFields          int
	MaxAliases         int
	MaxFragmentSpreads int
	// MaxCost bounds the field values a query may produce: each selected field counted once
	// per row it can appear in, from `first` (its default when absent) along the nesting
	// [1000000].
	MaxCost int
	// MaxResponseBytes caps the JSON of one answer's data [16 MiB].
	MaxResponseBytes int
	// MaxErrors caps the errors of one answer, after identical ones are merged [100].
	MaxErrors int

	// CORSOrigins are the origins allowed to call the API from a browser. nil allows any ("*");
	// an empty, non-nil slice sends no CORS headers.
	CORSOrigins []string
	// DisableGraphiQL stops serving the GraphiQL page to browsers.
	DisableGraphiQL bool
	// AwaitBlock, for an API on a hot standby, is how long a query asking for a block the
	// replica has not replayed yet (`block: {number_gte: N}` or `{number: N}`) waits for replay
	// before failing with BLOCK_NOT_YET_INDEXED [0: fails at once].
	AwaitBlock time.Duration
	// Chain is the node asked for the blocks whose hash the store does not keep (block: {hash}
	// and _meta's hash below the unfinalized window); nil: only the window's blocks are known.
	Chain Chain
	// DisableFastPath answers every request with graphql-go's executor (fast.go explains the
	// fast path); for comparing the two.
	DisableFastPath bool
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Deployment == "" {
		o.Deployment = "echain"
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.MaxFirst, 1000)
	def(&o.DefaultFirst, 100)
	def(&o.MaxSkip, 5000)
	def(&o.MaxDepth, 16)
	def(&o.MaxQueryBytes, 64<<10)
	def(&o.MaxResultEntities, 50000)
	def(&o.MaxConcurrent, 64)
	def(&o.MaxTokens, 15000)
	def(&o.MaxFields, 1000)
	def(&o.MaxAliases, 200)
	def(&o.MaxFragmentSpreads, 500)
	def(&o.MaxCost, 1_000_000)
	def(&o.MaxResponseBytes, 16<<20)
	def(&o.MaxErrors, 100)
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 1 << 20
	}
	if o.StatementTimeout <= 0 {
		o.StatementTimeout = 10 * time.Second
	}
	if o.QueueTimeout <= 0 {
		o.QueueTimeout = time.Second
	}
	if o.QueryTimeout <= 0 {
		// A statement that alone takes the whole time reports its own limit first.
		o.QueryTimeout = o.StatementTimeout + o.QueueTimeout
	}
	if o.DefaultFirst > o.MaxFirst {
		o.DefaultFirst = o.MaxFirst
	}
}

// config is Options after defaults, as the executor reads them.
type config struct {
	Deployment       string
	MaxFirst         int
	MaxSkip          int
	MaxEntities      int
	StatementTimeout time.Duration
}

// Binding ties generated resolvers to the engine.
type Binding struct {
	// Fingerprint is the schema fingerprint the resolvers were generated from.
	Fingerprint string
	// Root returns the query resolver.
	Root func(*Engine) any
	// Resolver builds the resolver of an entity of type typ (index in the schema) from its row.
	Resolver func(typ int, n *Node, r *Row) any
}

// Request is one GraphQL request.
type Request struct {
	Query         string
	OperationName string
	Variables     map[string]any
}

// ExecOptions change how a request is answered.
type ExecOptions struct {
	// AtBlock answers fields without a block argument as of this committed block instead of
	// the latest one (0). A subscription re-runs its query at each block it is told about.
	AtBlock int64
	// AtHash, with AtBlock, requires block AtBlock to have this hash (0x hex): when the block was
	// reverted or replaced meanwhile, those fields fail with BLOCK_HASH_UNKNOWN.
	AtHash string
}

// Engine answers queries against one store.
type Engine struct {
	m      *model
	pool   *pgxpool.Pool
	cfg    config
	opts   Options
	log    *slog.Logger
	schema *gql.Schema
	met    *metrics
	slots  chan struct{}
	ops    opNames
	coll   collation
	bind   Binding
	plans  plans
	front  *front
	fast   *fastSchema // nil: no fast path
	final  *finalBlocks
	// stmtTimeout is StatementTimeout in milliseconds, as set_config takes it.
	stmtTimeout string
}

// New prepares the API of sch over the store reached through pool.
func New(pool *pgxpool.Pool, sch *schema.Schema, bind Binding, opts Options) (*Engine, error) {
	if pool == nil {
		return nil, errors.New("graphql: no database pool")
	}
	if sch == nil {
		return nil, errors.New("graphql: no schema")
	}
	if bind.Root == nil || bind.Resolver == nil {
		return nil, errors.New("graphql: no resolvers")
	}
	if bind.Fingerprint != sch.Fingerprint {
		return nil, fmt.Errorf("graphql: the resolvers were generated from another schema (fingerprint %.12s, schema %.12s): run `go generate ./...`",
			bind.Fingerprint, sch.Fingerprint)
	}
	opts.defaults()
	m, err := newModel(sch)
	if err != nil {
		return nil, fmt.Errorf("graphql: %w", err)
	}
	e := &Engine{
		m: m, pool: pool, opts: opts, log: opts.Logger, bind: bind,
		cfg: config{
			Deployment: opts.Deployment, MaxFirst: opts.MaxFirst, MaxSkip: opts.MaxSkip,
			MaxEntities: opts.MaxResultEntities, StatementTimeout: opts.StatementTimeout,
		},
		slots:       make(chan struct{}, opts.MaxConcurrent),
		ops:         opNames{names: map[string]bool{}},
		stmtTimeout: strconv.FormatInt(opts.StatementTimeout.Milliseconds(), 10),
		final:       newFinalBlocks(opts.Chain),
	}
	if e.met, err = newMetrics(opts.Registerer); err != nil {
		return nil, fmt.Errorf("graphql: metrics: %w", err)
	}
	e.schema, err = gql.ParseSchema(m.sdl(opts.DefaultFirst), bind.Root(e),
		gql.UseStringDescriptions(),
		gql.UseFieldResolvers(),
		gql.DisableFieldSelections(), // loads read the plan (plan.go), not graphql-go's selection helpers
		gql.MaxDepth(opts.MaxDepth),
		gql.MaxQueryLength(opts.MaxQueryBytes),
		gql.MaxParallelism(16),
		// The front end's budget comes first; these bound graphql-go's own quadratic steps
		// should a document reach them anyway.
		gql.MaxSelections(2*(opts.MaxFields+opts.MaxFragmentSpreads)),
		gql.OverlapValidationLimit(opts.MaxFields*opts.MaxFields/8),
		gql.Logger(panicLogger{opts.Logger}),
		gql.PanicHandler(panicHandler{}),
	)
	if err != nil {
		return nil, fmt.Errorf("graphql: the generated resolvers do not fit the API schema (run `go generate ./...`): %w", err)
	}
	e.front, err = newFront(m.sdl(opts.DefaultFirst), budget{
		tokens: opts.MaxTokens, fields: opts.MaxFields, aliases: opts.MaxAliases,
		spreads: opts.MaxFragmentSpreads, depth: opts.MaxDepth,
	})
	if err != nil {
		return nil, fmt.Errorf("graphql: the API schema does not load for the front end: %w", err)
	}
	if !opts.DisableFastPath {
		e.fast = &fastSchema{types: e.front.schema.Types}
	}
	return e, nil
}

// SDL is the API schema the engine serves.
func (e *Engine) SDL() string { return e.m.sdl(e.opts.DefaultFirst) }

// Result is the outcome of one request.
type Result struct {
	Data   []byte // the JSON value of "data"; nil when absent
	Errors []*gqlerrors.QueryError
	// Statements is the number of SQL statements the query ran (BEGIN and the cursor read included).
	Statements int
	// RoundTrips is the number of exchanges with PostgreSQL it took (COMMIT included).
	RoundTrips int
}

// JSON renders the response body.
func (r *Result) JSON() []byte {
	return encodeResponse(r.Data, r.Errors)
}

// Execute answers a request. It never fails: every problem is a GraphQL error in the result.
func (e *Engine) Execute(ctx context.Context, req Request, eo ExecOptions) *Result {
	return e.execute(ctx, req, eo, false)
}

// execute runs a request through the front end and one executor; overHTTP refuses
// subscription operations (they need a WebSocket). Every step that costs more than reading
// the text runs under a concurrency slot and the request's deadline.
func (e *Engine) execute(ctx context.Context, req Request, eo ExecOptions, overHTTP bool) *Result {
	ctx, cancel := context.WithTimeout(ctx, e.opts.QueryTimeout)
	defer cancel()
	if res := e.admit(ctx, req); res != nil {
		return res
	}
	defer e.release()
	p := e.plans.get(e.front, req.Query)
	if p.refused != nil {
		return e.refuse(p.refused)
	}
	if overHTTP && p.subscription(req.OperationName) {
		return &Result{Errors: []*gqlerrors.QueryError{queryError(&Error{Code: codeBadRequest,
			Msg: "subscriptions need a WebSocket connection to this endpoint (graphql-transport-ws or graphql-ws); over HTTP send a query"})}}
	}
	p.validate(e) // once per text; graphql-go reports what it finds (the fallback validates again)
	if r := e.interrupted(ctx); r != nil {
		return e.refuse(r)
	}
	if errs := e.checkVariables(p.declared(), req.OperationName, req.Variables); len(errs) > 0 {
		return &Result{Errors: errs}
	}
	vars, errs := e.bindVariables(p.relax, req.OperationName, req.Variables)
	if len(errs) > 0 {
		return &Result{Errors: errs}
	}
	req.Variables = vars
	// Priced even when the front end found it invalid: graphql-go answers such a document with
	// its own rules, and they let through some the front end refuses (an introspection query
	// nested through types and fields, which it would execute in full).
	if r := e.checkCost(p.doc, req.OperationName, req.Variables); r != nil {
		return e.refuse(r)
	}
	res := e.run(ctx, p, req, eo)
	if r := e.interrupted(ctx); r != nil && !hasCode(res.Errors, codeLimitTimeout) {
		// A deadline or a client gone mid-run leaves an error per unfinished field: one says
		// it (unless a statement's own timeout, the same setting, said it first).
		return e.refuse(r)
	}
	if len(res.Data) > e.opts.MaxResponseBytes {
		return e.refuse(responseTooBig(len(res.Data), e.opts.MaxResponseBytes))
	}
	res.Errors = capErrors(res.Errors, e.opts.MaxErrors)
	return res
}

func hasCode(errs []*gqlerrors.QueryError, code string) bool {
	for _, qe := range errs {
		if codeOf(qe) == code {
			return true
		}
	}
	return false
}

// run executes a request the front end let through: the fast path when it serves it, else
// graphql-go.
func (e *Engine) run(ctx context.Context, p *plan, req Request, eo ExecOptions) *Result {
	var atHash []byte
	if eo.AtHash != "" {
		h, err := coerceBytes(eo.AtHash)
		if err != nil || eo.AtBlock <= 0 {
			return &Result{Errors: []*gqlerrors.QueryError{queryError(errorf(codeBadBlock, "ExecOptions.AtHash needs AtBlock and a 0x hex hash, got %q", eo.AtHash))}}
		}
		atHash = h
	}
	newSession := func() *session {
		return &session{e: e, ctx: ctx, at: eo.AtBlock, atHash: atHash, collate: e.textCollation(ctx), plan: p}
	}
	query := req.Query
	if p.relaxed != "" {
		query = p.relaxed
	}
	if p.asQuery != "" {
		// A subscription is answered like the query with the same selection; the caller (the
		// subscription server) decides when to run it again.
		query = p.asQuery
	}
	if op := e.fastOperation(p, query, req.OperationName); op != nil {
		if res, ok := e.fastExecute(ctx, newSession(), op, req.Variables); ok {
			return res
		}
		// Not a plain success: graphql-go answers it from the start, errors and all.
	}
	s := newSession()
	resp := e.schema.Exec(withSession(ctx, s), query, req.OperationName, req.Variables)
	s.close(ctx)
	res := &Result{Data: resp.Data, Errors: resp.Errors, Statements: s.statements, RoundTrips: s.roundTrips}
	for _, qe := range res.Errors {
		annotate(qe)
	}
	if p.relax != nil {
		p.relax.locate(res.Errors)
	}
	return res
}

// admit checks the text's length and takes a concurrency slot (release gives it back); a
// non-nil result is the refusal.
func (e *Engine) admit(ctx context.Context, req Request) *Result {
	if len(req.Query) > e.opts.MaxQueryBytes {
		return e.refuse(&refusal{reasonQueryBytes, errorf(codeLimitQuerySize,
			"the query is %d bytes long, more than the limit of %d bytes (limit max_query_bytes)", len(req.Query), e.opts.MaxQueryBytes)})
	}
	if !e.acquire(ctx) {
		if r := e.interrupted(ctx); r != nil {
			return e.refuse(r)
		}
		return e.refuse(&refusal{reasonBusy, errorf(codeLimitBusy,
			"too many concurrent queries (limit max_concurrent = %d); retry shortly", cap(e.slots))})
	}
	return nil
}

func (e *Engine) release() { <-e.slots }

func (e *Engine) acquire(ctx context.Context) bool {
	select {
	case e.slots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(e.opts.QueueTimeout)
	defer t.Stop()
	select {
	case e.slots <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

// queryError wraps an executor error as a GraphQL error.
func queryError(err *Error) *gqlerrors.QueryError {
	return &gqlerrors.QueryError{Message: err.Msg, Extensions: err.Extensions(), Err: err}
}

// annotate gives graphql-go's own refusals a code, so every limit is recognisable.
func annotate(qe *gqlerrors.QueryError) {
	if qe.Extensions != nil {
		return
	}
	switch {
	case qe.Rule == "MaxDepthExceeded" || containsAll(qe.Message, "exceeds", "depth"):
		qe.Message += " (limit max_depth)"
		qe.Extensions = map[string]any{"code": codeLimitDepth}
	case containsAll(qe.Message, "query length", "exceeds"):
		qe.Message += " (limit max_query_bytes)"
		qe.Extensions = map[string]any{"code": codeLimitQuerySize}
	case errors.Is(qe, gql.ErrTooManySelections):
		qe.Extensions = map[string]any{"code": codeLimitQuerySize}
	}
}

// opNames bounds the operation label of the metrics: clients choose operation names.
type opNames struct {
	mu    sync.Mutex
	names map[string]bool
}

const maxOpNames = 100

func (o *opNames) label(name string) string {
	if name == "" {
		return "anonymous"
	}
	if !validName(name) {
		return "invalid"
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.names[name] {
		return name
	}
	if len(o.names) >= maxOpNames {
		return "other"
	}
	o.names[name] = true
	return name
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// panicLogger reports resolver panics (graphql-go recovers them into errors); a LoadFailure is
// an error report, not a bug.
type panicLogger struct{ log *slog.Logger }

func (l panicLogger) LogPanic(_ context.Context, value any) {
	if _, ok := value.(LoadFailure); ok {
		return
	}
	l.log.Error("graphql: resolver panic", "panic", fmt.Sprint(value), "stack", string(debug.Stack()))
}

// panicHandler turns a recovered panic into the field's error.
type panicHandler struct{}

func (panicHandler) MakePanicError(_ context.Context, value any) *gqlerrors.QueryError {
	if lf, ok := value.(LoadFailure); ok {
		var ce *Error
		if errors.As(lf.Err, &ce) {
			return queryError(ce)
		}
		return &gqlerrors.QueryError{Message: lf.Err.Error(), Err: lf.Err, Extensions: map[string]any{"code": codeInternal}}
	}
	return &gqlerrors.QueryError{Message: "internal error while resolving the field", Extensions: map[string]any{"code": codeInternal}}
}
