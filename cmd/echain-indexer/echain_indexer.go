// Command echain-indexer indexes the Echain event-ticketing contracts from an Ethereum node into
// PostgreSQL and serves them over GraphQL. The commands are in internal/cli; the developer tools
// (dev chain, demo) are a separate binary, cmd/echain-dev, so that this one does not link a node.
package main

import (
	"os"

	"github.com/echain/echain-indexer/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
