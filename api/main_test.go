package api

import (
	"os"
	"testing"

	"github.com/echain/echain-indexer/store/storetest"
)

// The hostile-client tests drive the real engine over a real store.
func TestMain(m *testing.M) { os.Exit(storetest.Run(m)) }
