package source

import (
	"context"

	"github.com/ethereum/go-ethereum/common"
)

// BlockContentsByHash is BlockContents for blocks named by hash (the head's blocks, which a
// reorganisation may replace), in the order given: every block's logs and transactions in one
// round trip per batch of about 20 blocks. A block no endpoint has (a reorganised head) makes
// the error match ethereum.NotFound; an endpoint without eth_getBlockReceipts makes it match
// ErrReceiptsUnsupported.
func (s *Source) BlockContentsByHash(ctx context.Context, hashes []common.Hash) ([]BlockContent, error) {
	if s.cfg.Receipts == ReceiptsTx {
		return nil, ErrReceiptsUnsupported
	}
	ids := make([]any, len(hashes))
	for i, h := range hashes {
		ids[i] = h
	}
	return s.contents(ctx, ids)
}
