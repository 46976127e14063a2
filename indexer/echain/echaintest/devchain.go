package echaintest

import (
	"context"
	"encoding/json"
	"time"

	"github.com/echain/echain-indexer/devchain"
)

// DevchainMetadata predicts what an indexer fetching through the dev chain's metadata gateway
// gets, without asking it: the gateway's answer is a pure function of the CID
// (devchain.Metadata). A document counts when it is usable and arrives within timeout (the
// indexer's metadata timeout); cfg must be the dev chain's metadata configuration.
func DevchainMetadata(cfg devchain.MetadataConfig, timeout time.Duration) MetadataFunc {
	return func(_ context.Context, uri string) (map[string]any, bool) {
		d, ok := devchain.Metadata(uri, cfg)
		if !ok || !d.Usable() || d.Delay >= timeout {
			return nil, false
		}
		var doc map[string]any
		if json.Unmarshal(d.Body, &doc) != nil || doc == nil {
			return nil, false
		}
		return doc, true
	}
}
