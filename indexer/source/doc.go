// Package source is the indexer's JSON-RPC access to one or more endpoints of a chain.
//
// Every call retries transient failures (timeouts, HTTP 429 honouring Retry-After, 5xx,
// connection resets, "transaction indexing is in progress") with exponential backoff, failing
// over between endpoints in configuration order, within a per-call attempt and time budget; a
// call that exhausts it is logged, counted (echain_indexer_rpc_giveups_total) and returns an
// error matching ErrRetriesExhausted. Permanent answers (a revert, a range too large, invalid
// parameters) return at once. An endpoint with a plan's limits (Endpoint.RequestsPerSecond,
// CallsPerSecond) gets requests no faster than they allow: waiting before sending is cheaper than
// the 429 and the Retry-After that follow the excess.
//
// A lagging endpoint must never make a block look empty or absent: requests about a block
// number go only to endpoints whose head has reached it, and a "not found"/null answer moves on
// to the next endpoint; only when every endpoint misses does the caller see an error matching
// ethereum.NotFound (or ErrBeyondHead).
//
// eth_getLogs failures caused by the size of the request become *RangeTooLargeError (with the
// provider's suggested range, when it gave one) or *AddressLimitError; RangeSizer turns them,
// and the size and speed of good answers, into the next range size.
//
// SubscribeNewHeads follows the head over WebSocket with reconnection, silent-subscription
// detection and HTTP polling while the WebSocket is down. Its heads may skip numbers: the
// reader fills gaps from its own cursor.
package source
