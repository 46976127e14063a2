// Command echain-dev holds the developer tools: `devchain` (go-ethereum's simulated chain with the
// Echain contracts and traffic) and `demo` (that chain, PostgreSQL, the indexer and the API in
// one process). They are apart from echain-indexer so that the production binary does not link
// a node (the simulated backend, pebble, p2p). Configuration, logging, signals and exit status
// are echain-indexer's (internal/cli).
package main

import (
	"os"

	"github.com/echain/echain-indexer/internal/cli"
)

func main() {
	os.Exit(devMain(os.Args[1:]))
}

func devMain(args []string) int {
	return cli.MainWith("echain-dev",
		"Developer tools for echain-indexer: the dev chain and the demo",
		"echain-dev runs the dev chain (a go-ethereum simulated chain with the Echain contracts and\n"+
			"generated traffic) and the demo (that chain, PostgreSQL, the indexer and the API in one\n"+
			"process). Configuration is echain-indexer's: config.yaml's devchain.* keys, ECHAIN_* and flags.",
		args, os.Stdout, os.Stderr,
		newDevchainCmd,
		newDemoCmd,
	)
}
