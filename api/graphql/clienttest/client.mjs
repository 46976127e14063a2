// Runs query shapes through Apollo Client (the client Echain's frontend uses) against the server
// at argv[2]. argv[3] is a JSON file {"queries": {name: text}, "variables": {name: {...}}}. Prints
// one JSON object with every answer, over POST and over GET, on stdout;
// api/graphql/jsclient_test.go compares them with the server's direct answers.
import { readFileSync } from "node:fs";
import { ApolloClient, InMemoryCache, HttpLink, gql } from "@apollo/client/core/index.js";

const [url, specFile] = process.argv.slice(2);
const spec = JSON.parse(readFileSync(specFile, "utf8"));

function client(useGET) {
  return new ApolloClient({
    link: new HttpLink({ uri: url, fetch, useGETForQueries: useGET }),
    cache: new InMemoryCache(),
    defaultOptions: { query: { fetchPolicy: "no-cache", errorPolicy: "none" } },
  });
}

const out = {};
for (const [mode, c] of [["post", client(false)], ["get", client(true)]]) {
  out[mode] = {};
  for (const [name, q] of Object.entries(spec.queries)) {
    const { data } = await c.query({ query: gql(q), variables: spec.variables[name] ?? {} });
    out[mode][name] = data;
  }
  // A refused query surfaces as an ApolloError carrying the server's GraphQL error.
  try {
    await c.query({ query: gql`query TooMany { events(first: 5000) { id } }` });
    out[mode].limitError = null;
  } catch (e) {
    out[mode].limitError = { message: e.graphQLErrors?.[0]?.message ?? String(e), code: e.graphQLErrors?.[0]?.extensions?.code ?? null };
  }
}
process.stdout.write(JSON.stringify(out));
