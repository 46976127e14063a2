// Package loadtest holds the subscription server's load benchmark (bench_test.go): many
// concurrent WebSocket clients, in a separate process, each subscribed to one of a few
// distinct operations, and blocks committed through the real store that change every
// operation's result. It reports block commit to first and last delivery latencies and the
// server's memory per idle subscribed connection. Run it once with:
//
//	go test -run '^$' -bench SubscriptionFanout -benchtime 1x ./api/subscriptions/loadtest/
//
// Environment: ECHAIN_BENCH_CLIENTS (10000), ECHAIN_BENCH_OPS (distinct subscriptions, 100),
// ECHAIN_BENCH_BLOCKS (20), ECHAIN_BENCH_INTERVAL (pause between blocks, 500ms),
// ECHAIN_BENCH_PROTO (graphql-transport-ws or graphql-ws).
package loadtest
