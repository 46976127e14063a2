package source

import (
	"context"
	"errors"
	"fmt"

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
	const blocksPerBatch = 20
	out := make([]BlockContent, len(hashes))
	err := s.parallel(ctx, len(hashes), blocksPerBatch, func(ctx context.Context, lo, hi int) error {
		return s.contentHashGroup(ctx, hashes[lo:hi], out[lo:hi])
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// contentHashGroup fills out with the blocks of hashes, halving the group when the node finds
// the answer too large.
func (s *Source) contentHashGroup(ctx context.Context, hashes []common.Hash, out []BlockContent) error {
	err := s.do(ctx, "blocks[batch]", 0, 0, func(ctx context.Context, ep *endpoint) error {
		if s.cfg.Receipts == ReceiptsAuto && ep.receiptsSupport() < 0 {
			return ErrReceiptsUnsupported
		}
		err := s.contentHashBatch(ctx, ep, hashes, out)
		var re *RPCError
		switch {
		case errors.As(err, &re) && isUnsupported(re):
			if s.cfg.Receipts == ReceiptsAuto {
				ep.setReceiptsSupport(-1)
			}
			return fmt.Errorf("%w: %w", ErrReceiptsUnsupported, err)
		case err == nil:
			ep.setReceiptsSupport(1)
			s.observeHead(ep, out[len(out)-1].Number, false)
		}
		return err
	})
	if err == nil {
		return nil
	}
	if kind, _, _ := classify(err); kind == kindTooLarge && len(hashes) > 1 {
		mid := len(hashes) / 2
		if err := s.contentHashGroup(ctx, hashes[:mid], out[:mid]); err != nil {
			return err
		}
		return s.contentHashGroup(ctx, hashes[mid:], out[mid:])
	}
	return err
}

func (s *Source) contentHashBatch(ctx context.Context, ep *endpoint, hashes []common.Hash, out []BlockContent) error {
	ids := make([]any, len(hashes))
	for i, h := range hashes {
		ids[i] = h
	}
	return s.blockContents(ctx, ep, "eth_getBlockByHash", ids, out, func(i int, blk *rpcBlockTxs) error {
		if blk.Hash != hashes[i] {
			return fmt.Errorf("%w: asked block %s, got %s", errBadResponse, hashes[i], blk.Hash)
		}
		return nil
	})
}
