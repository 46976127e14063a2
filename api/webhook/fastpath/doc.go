// Package fastpath holds the end-to-end test of the webhook fast path (issue 7): with the node's
// WebSocket cut, a verified Coinbase-style webhook makes a purchase queryable over GraphQL within
// a second. It has no code of its own; the test wires the real parts the way the binary does.
package fastpath
