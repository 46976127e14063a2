package engine

import (
	"context"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/lru"
	"github.com/ethereum/go-ethereum/core/types"
)

// Chain is the node the API asks about blocks whose hash the store no longer keeps: the store
// keeps the hashes of the unfinalized window only, and keeping every block's hash forever would
// grow without bound for an answer the node already has. *source.Source (the indexer's RPC
// source) and *ethclient.Client both satisfy it.
type Chain interface {
	HeaderByHash(ctx context.Context, hash common.Hash) (*types.Header, error)
	HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error)
}

// blockCacheSize bounds each of the two caches below: a frontend asks about a few recent
// blocks again and again, not about the whole history.
const blockCacheSize = 2048

// finalBlocks answers questions about finalized blocks from the node, remembering the answers.
// Only finalized blocks are cached: their hash at a number can no longer change, so an answer
// never goes stale (a `resync --from-block` below finality replays the same canonical blocks).
type finalBlocks struct {
	chain    Chain
	byNumber *lru.Cache[int64, *blockInfo]
	byHash   *lru.Cache[common.Hash, int64] // the number of a canonical finalized block
}

func newFinalBlocks(chain Chain) *finalBlocks {
	return &finalBlocks{chain: chain, byNumber: lru.NewCache[int64, *blockInfo](blockCacheSize),
		byHash: lru.NewCache[common.Hash, int64](blockCacheSize)}
}

func hashUnknown(h common.Hash, why string) *Error {
	// graph-node's text, then why.
	return errorf(codeBlockUnknown, "Failed to decode `block.hash` value: `no block with that hash found` (%s: %s)", h.Hex(), why)
}

// errNoChain says why a block is not described: no node to ask.
var errNoChain = errors.New("this server has no RPC endpoint configured (rpc.http_url) to look blocks outside the unfinalized window up")

// at describes finalized block n, as the node's canonical chain has it.
func (f *finalBlocks) at(ctx context.Context, n int64) (*blockInfo, error) {
	if f.chain == nil {
		return nil, errNoChain
	}
	if bi, ok := f.byNumber.Get(n); ok {
		return bi, nil
	}
	hdr, err := f.chain.HeaderByNumber(ctx, big.NewInt(n))
	if err != nil {
		return nil, fmt.Errorf("ask the node for block %d: %w", n, err)
	}
	ts := int64(hdr.Time)
	h := hdr.Hash()
	bi := &blockInfo{Number: n, Hash: h.Bytes(), ParentHash: hdr.ParentHash.Bytes(), Timestamp: &ts}
	f.byNumber.Add(n, bi)
	f.byHash.Add(h, n)
	return bi, nil
}

// number finds the number of the block with hash h on the indexed chain, given that h is not
// in the store's window: the node knows the block's number, and the block counts only when it
// is finalized here (at or below finalized) and canonical at that number. Above finalized the
// window is complete, so a hash missing from it is on another branch (or not indexed yet: a
// number above head is returned for the caller to refuse as not yet available).
func (f *finalBlocks) number(ctx context.Context, h common.Hash, finalized, head int64) (int64, error) {
	if f.chain == nil {
		return 0, hashUnknown(h, "it is not among the unfinalized blocks the store keeps, and "+errNoChain.Error())
	}
	if n, ok := f.byHash.Get(h); ok {
		return n, nil
	}
	hdr, err := f.chain.HeaderByHash(ctx, h)
	switch {
	case errors.Is(err, ethereum.NotFound):
		return 0, hashUnknown(h, "the node does not know it")
	case err != nil:
		return 0, errorf(codeInternal, "block.hash %s: could not ask the node: %v", h.Hex(), err)
	}
	n := hdr.Number.Int64()
	switch {
	case n > head:
		return n, nil
	case n > finalized:
		return 0, hashUnknown(h, fmt.Sprintf("the node has it as block %d, which the indexed chain has with another hash (a reorganised branch)", n))
	}
	bi, err := f.at(ctx, n)
	if err != nil {
		return 0, errorf(codeInternal, "block.hash %s: %v", h.Hex(), err)
	}
	if common.BytesToHash(bi.Hash) != h {
		return 0, hashUnknown(h, fmt.Sprintf("block %d of the indexed chain is %s; this one is on a branch that was not kept", n, common.BytesToHash(bi.Hash).Hex()))
	}
	return n, nil
}
