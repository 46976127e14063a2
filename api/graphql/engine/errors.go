package engine

import "fmt"

// Error codes sent in an error's extensions.code, so clients (and tests) can tell refusals apart.
const (
	codeBadFilter      = "BAD_FILTER"
	codeBadOrder       = "BAD_ORDER_BY"
	codeLimitFirst     = "LIMIT_FIRST"
	codeLimitSkip      = "LIMIT_SKIP"
	codeLimitEntities  = "LIMIT_RESULT_ENTITIES"
	codeLimitTimeout   = "LIMIT_STATEMENT_TIMEOUT"
	codeLimitBusy      = "LIMIT_CONCURRENT_QUERIES"
	codeLimitQuerySize = "LIMIT_QUERY_SIZE"
	codeLimitDepth     = "LIMIT_DEPTH"
	codeLimitCost      = "LIMIT_COST"
	codeLimitQueryTime = "LIMIT_QUERY_TIMEOUT"
	codeLimitRespSize  = "LIMIT_RESPONSE_SIZE"
	codeErrorsCapped   = "ERRORS_CAPPED"
	codeCanceled       = "CANCELED"
	codeBlockAhead     = "BLOCK_NOT_YET_INDEXED"
	codeBlockPruned    = "BLOCK_PRUNED"
	codeBlockUnknown   = "BLOCK_HASH_UNKNOWN"
	codeBadBlock       = "BAD_BLOCK"
	codeNotStarted     = "NOT_STARTED"
	codeIndexingError  = "INDEXING_ERROR"
	codeInternal       = "INTERNAL"
	codeBadRequest     = "BAD_REQUEST"
)

// Error is an error a client sees as a GraphQL error, with a stable code.
type Error struct {
	Code string
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Extensions puts the code into the GraphQL error (graphql-go asks resolver errors for it).
func (e *Error) Extensions() map[string]any { return map[string]any{"code": e.Code} }

func errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}
