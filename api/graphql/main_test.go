package graphql

import (
	"os"
	"testing"

	"github.com/echain/echain-indexer/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Run(m)) }
