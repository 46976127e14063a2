package engine

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/echain/echain-indexer/schema"
)

// The fast path answers the common request (a query over entity fields and _meta that
// graphql-go has validated once for its text) without graphql-go's reflective executor, which
// costs more CPU than the SQL: it compiles the operation once per query text into a tree of
// loads, runs them one pipelined round trip per level of the tree (the COMMIT travelling with
// the last one) and writes the response bytes straight from the result rows, as graphql-go
// would write them.
//
// It only ever answers successes. Anything else (a variable or argument graphql-go would
// refuse or coerce, a limit, a block that is not answerable, a null where the schema says
// non-null, a database error, introspection, directives, an operation it does not know) makes
// it step aside and the request runs through graphql-go from the start, so errors, partial
// data and their paths stay exactly graphql-go's. The differential test runs every query of
// the test suites both ways.

// fastKind is what a compiled field resolves to.
type fastKind uint8

const (
	fkTypename fastKind = iota
	fkScalar
	fkRef     // a reference column: the entity it names
	fkDerived // entities whose back reference points here
	fkOne     // root foo(id)
	fkList    // root foos(...)
	fkMeta
	fkMetaBlock
	fkMetaDeployment
	fkMetaErrors
	fkBlockNumber
	fkBlockHash
	fkBlockParent
	fkBlockTimestamp
)

// fastField is one response key of a compiled operation, its selection merged over fragments.
type fastField struct {
	key      string
	kind     fastKind
	typename string        // fkTypename: the value
	f        *schema.Field // fkScalar, fkRef, fkDerived: the field of the parent entity
	col      int           // fkScalar, fkRef: its column in the parent
	ent      *entity       // loads: the entity type they read
	derived  *derivedInfo  // fkDerived
	args     ast.ArgumentList
	children []*fastField
	lc       *loadCols // loads: the columns their children read
	level    int       // loads: 0 for root fields, +1 per nesting
}

// fastOp is one compiled operation.
type fastOp struct {
	root     []*fastField
	vars     ast.VariableDefinitionList
	maxLevel int // deepest load level
	hasMeta  *fastField
	// size is the length of the last response, to allocate the next one at once.
	size atomic.Int64
}

// fastPlans is the per-query-text state of the fast path, kept in the plan.
type fastPlans struct {
	once  sync.Once
	valid bool               // the front end validated the document (variables aside)
	mu    sync.Mutex         // guards ops
	ops   map[string]*fastOp // by operation name ("" = the only operation); nil: not served
}

const maxFastOps = 16

// fastSchema is what the fast path needs from the API schema beyond the entity model: input
// and enum types, to check variable values the way graphql-go's validation does.
type fastSchema struct {
	types map[string]*ast.Definition
}

// fastOperation returns the compiled operation a request names, nil when the fast path does
// not serve it.
func (e *Engine) fastOperation(p *plan, text, opName string) *fastOp {
	if e.fast == nil || p.doc == nil || len(text) > maxPlannedQuery {
		return nil // unplanned texts are not cached: compiling them each time would not pay
	}
	fp := &p.fast
	fp.once.Do(func() {
		// Validation does not depend on variables except for their values' types, which
		// varsOK checks per request the same way.
		if len(p.validate(e)) > 0 {
			return
		}
		// graphql-go unquotes string literals its own way; leave escapes to it.
		if strings.ContainsRune(text, '\\') {
			return
		}
		fp.valid = true
		fp.ops = map[string]*fastOp{}
	})
	if !fp.valid {
		return nil
	}
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if op, ok := fp.ops[opName]; ok {
		return op
	}
	op := e.compileFast(p.doc, opName)
	if len(fp.ops) < maxFastOps { // clients choose operation names: bound what one text keeps
		fp.ops[opName] = op
	}
	return op
}

// errFast makes the fast path step aside.
type errFast struct{ why string }

func (e errFast) Error() string { return "fast path: " + e.why }

func notFast(why string) error { return errFast{why} }
