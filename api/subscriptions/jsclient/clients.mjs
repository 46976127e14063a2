// Subscribes with two real npm clients at once and prints what each receives, one JSON line per
// event: {"client": "graphql-ws" | "subscriptions-transport-ws", "kind": "next" | "error" |
// "complete" | "closed", "payload": ...}. Driven by TestJSClients (api/subscriptions); it runs
// until its stdin closes.
//
//   node clients.mjs <ws-url> <query> <variables-json>
import WebSocket from 'ws';
import { createClient } from 'graphql-ws';
import transport from 'subscriptions-transport-ws';

const [url, query, varsJSON] = process.argv.slice(2);
const variables = JSON.parse(varsJSON || '{}');

function out(client, kind, payload) {
  process.stdout.write(JSON.stringify({ client, kind, payload: payload ?? null }) + '\n');
}

function describe(err) {
  if (err && typeof err.code === 'number') return { code: err.code, reason: err.reason };
  if (Array.isArray(err)) return err.map((e) => e.message);
  return String(err && err.message ? err.message : err);
}

// graphql-ws: the graphql-transport-ws protocol (what Apollo Client's GraphQLWsLink uses).
const modern = createClient({
  url,
  webSocketImpl: WebSocket,
  retryAttempts: 0,
  lazy: false,
  onNonLazyError: (err) => out('graphql-ws', 'closed', describe(err)),
});
modern.subscribe({ query, variables }, {
  next: (v) => out('graphql-ws', 'next', v),
  error: (err) => out('graphql-ws', 'error', describe(err)),
  complete: () => out('graphql-ws', 'complete'),
});

// subscriptions-transport-ws: the legacy graphql-ws protocol (Apollo's WebSocketLink).
const legacy = new transport.SubscriptionClient(url, { reconnect: false, lazy: false }, WebSocket);
legacy.onDisconnected(() => out('subscriptions-transport-ws', 'closed'));
legacy.request({ query, variables }).subscribe({
  next: (v) => out('subscriptions-transport-ws', 'next', v),
  error: (err) => out('subscriptions-transport-ws', 'error', describe(err)),
  complete: () => out('subscriptions-transport-ws', 'complete'),
});

process.stdin.on('end', async () => {
  legacy.close();
  await modern.dispose();
  process.exit(0);
});
process.stdin.resume();
