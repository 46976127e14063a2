// Package subscriptions serves GraphQL subscriptions over WebSocket on the query API's paths,
// pushed by committed blocks.
//
// # Protocols
//
// The subprotocol is chosen by Sec-WebSocket-Protocol (graphql-transport-ws preferred when a
// client offers both; none of them closes the socket with 4406):
//
//   - graphql-transport-ws, graphql-ws's protocol (npm `graphql-ws`, Apollo Client's
//     GraphQLWsLink): connection_init → connection_ack, ping/pong, subscribe → next… /
//     error / complete. Violations close the socket: 4400 invalid or unexpected message,
//     4401 subscribe before connection_ack, 4403 connection_init refused by Options.Authorize,
//     4408 no connection_init within Options.InitTimeout, 4409 an id already in use,
//     4429 a second connection_init, 4500 internal error.
//   - graphql-ws, the legacy subscriptions-transport-ws protocol (Apollo's WebSocketLink):
//     connection_init → connection_ack + ka, start → data… / error, stop → complete,
//     connection_terminate. Bad messages get an error message, as its reference server does;
//     a missing connection_init still closes with 4408.
//
// Both: the server sends WebSocket pings every Options.KeepAlive (and "ka" on the legacy
// protocol) and drops a connection silent for 2.5 times that; 1001 on shutdown; 1013 when the
// connection limit is reached or the client reads too slowly (its send queue is full): clients
// reconnect and resubscribe, getting the current state. Refusals of one subscription (invalid
// document, limits on subscriptions per connection, depth, `first` and cost) are that
// subscription's error message with extensions.code (GRAPHQL_VALIDATION, LIMIT_SUBSCRIPTIONS,
// LIMIT_DEPTH, LIMIT_FIRST, LIMIT_COST, LIMIT_QUERY_SIZE, NOT_A_SUBSCRIPTION).
//
// # Schema and semantics
//
// Every Query field is a Subscription field with the same arguments, e.g.
//
//	subscription { event(id: "1") { ticketsSold } }
//	subscription($me: Bytes!) { tickets(where: {owner: $me}) { id isUsed } }
//
// The first message carries the current result; then one message each time a committed block,
// or a reorg's revert, changes the result, and none when it does not. Every next/data payload
// names the block it reflects:
//
//	{"data": {...}, "extensions": {"block": {"number": 1234, "hash": "0x…"}}}
//
// (block is null before the indexer's first block). After a revert the block is the common
// ancestor the store went back to, and the result is the state there.
//
// # Engine
//
// A subscribe message's document goes through the query API's front end (Engine.Prepare): one
// parse, the same parse budget (tokens, fields, aliases, fragment spreads), validation against
// the one API schema, the cost estimate, under a slot and the query deadline; each re-run is an
// Engine.Execute with every limit of a query (deadline, answer size, errors).
// One connection per server LISTENs on store.NotifyChannel (outside the pool; reconnected with
// backoff, and each (re)connection re-runs every operation once, since notifications may have
// been missed). A notification names the entity types and ids a block changed; an operation
// runs again only if it reads one of them: the types of its selection at every level, of
// nested filters (`owner_: {...}`) and of nested orderBy (`event__title`); a root lookup by id
// depends on that id only; _meta depends on every block. Identical subscriptions (same
// document, operation name and variables, whatever the client) share one operation, executed
// once per block as of that block (graphql.ExecOptions.AtBlock), so every client sees the
// same state; its result is hashed and pushed only when it changed. Notifications that queue
// up while a block is processed are merged into one execution at the latest block.
//
// On a PostgreSQL hot standby, which refuses LISTEN, the feed instead reads the cursor the
// standby replayed every Options.ReplicaPoll (store.PollHead): a change is seen only once the
// standby holds it, so no push reflects a block the replica lacks (the primary's notifications,
// which arrive before the standby replays the commit, would). Without the ids, each new head
// re-runs every operation. When the standby is promoted the feed reconnects and LISTENs.
//
// Each connection has a bounded send queue written by a goroutine that exists only while
// there is something to send; a full queue closes that connection (1013) without delaying
// anyone else. Nothing is kept in process between servers: several `serve` replicas follow
// the same PostgreSQL.
package subscriptions
