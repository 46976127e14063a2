package devchain

import (
	"context"
	"fmt"
	"math/big"
	"math/rand"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// ReorgResult describes a reorganisation made by Reorg.
type ReorgResult struct {
	Depth        int // blocks removed from the canonical chain
	Ancestor     uint64
	AncestorHash common.Hash
	OldHead      uint64
	OldHeadHash  common.Hash
	NewHead      uint64
	NewHeadHash  common.Hash
	// Dropped are transactions of the removed blocks that the new branch does not include;
	// Moved are those it includes again (same hash, another block).
	Dropped []common.Hash
	Moved   []common.Hash
}

// Reorg replaces the last depth blocks (1..MaxReorgDepth) with a new branch of depth+1 blocks
// that includes a nonce-ordered prefix of each sender's removed transactions (chosen at random
// from the seed) plus a filler transfer, and drops the rest. Unmined transactions are discarded.
// Subscribers see it as geth reports reorgs: new heads of the new branch and removed logs.
func (c *Chain) Reorg(ctx context.Context, depth int) (ReorgResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	res, removed, err := c.forkLocked(depth)
	if err != nil {
		return res, err
	}
	rng := rand.New(rand.NewSource(c.cfg.Seed ^ int64(res.OldHead)<<20 ^ int64(depth)))
	if err := c.resendPrefixesLocked(ctx, rng, removed, &res); err != nil {
		return res, err
	}
	for i := 0; i < depth+1; i++ {
		if i == 0 {
			to := c.treasury.Address
			if _, err := c.sendLocked(ctx, c.deployer, &to, big.NewInt(int64(1+rng.Intn(1000))), nil, 21_000); err != nil {
				return res, err
			}
		}
		if _, err := c.commitLocked(); err != nil {
			return res, err
		}
	}
	c.finishReorg(&res)
	return res, nil
}

// unfrozenDepthLocked is the deepest reorganisation that replaces no frozen block. The simulated
// beacon marks every 32nd block final as it seals it, before holdFinalityLocked moves finality
// back down; a freezer run that falls in that window freezes blocks a random reorg could
// otherwise reach (seen under load), so random traffic draws its depths within this bound.
func (c *Chain) unfrozenDepthLocked() int {
	head := c.eth.BlockChain().CurrentBlock().Number.Uint64()
	frozen, err := c.eth.ChainDb().Ancients()
	if err != nil || frozen == 0 {
		return c.cfg.MaxReorgDepth
	}
	if head < frozen {
		return 0
	}
	return int(min(head-frozen+1, uint64(c.cfg.MaxReorgDepth)))
}

// forkLocked makes the block depth below the head the head again and empties the pool. It
// returns the removed blocks' transactions in chain order.
func (c *Chain) forkLocked(depth int) (ReorgResult, []*types.Transaction, error) {
	bc := c.eth.BlockChain()
	head := bc.CurrentBlock()
	n := head.Number.Uint64()
	res := ReorgResult{Depth: depth, OldHead: n, OldHeadHash: head.Hash()}
	if depth < 1 || depth > c.cfg.MaxReorgDepth {
		return res, nil, fmt.Errorf("devchain: reorg depth %d outside 1..%d", depth, c.cfg.MaxReorgDepth)
	}
	if n < uint64(depth) || n-uint64(depth) < c.Addresses.StartBlock {
		return res, nil, fmt.Errorf("devchain: reorg depth %d at head %d would remove the contracts' deployment", depth, n)
	}
	res.Ancestor = n - uint64(depth)
	// Blocks in the freezer cannot be replaced (see holdFinalityLocked, which keeps them deeper
	// than any reorg): refuse rather than leave a chain that can no longer seal.
	if frozen, err := c.eth.ChainDb().Ancients(); err == nil && frozen > 0 && res.Ancestor+1 < frozen {
		return res, nil, fmt.Errorf("devchain: reorg to block %d would replace frozen block %d", res.Ancestor, frozen-1)
	}
	ancestor := bc.GetBlockByNumber(res.Ancestor)
	res.AncestorHash = ancestor.Hash()
	var removed []*types.Transaction
	for b := res.Ancestor + 1; b <= n; b++ {
		removed = append(removed, bc.GetBlockByNumber(b).Transactions()...)
	}
	// Fork needs an empty pool; unmined transactions are given up.
	c.eth.TxPool().Clear()
	if err := c.beacon.Fork(ancestor.Hash()); err != nil {
		return res, nil, fmt.Errorf("devchain: fork at %d: %w", res.Ancestor, err)
	}
	// The pool received the new head synchronously; Sync waits for its reset to the ancestor,
	// which re-injects the removed transactions. Clear them so the caller decides which return.
	if err := c.eth.TxPool().Sync(); err != nil {
		return res, nil, fmt.Errorf("devchain: txpool sync: %w", err)
	}
	c.eth.TxPool().Clear()
	clear(c.nonces)
	return res, removed, nil
}

// resendPrefixesLocked re-submits, for each sender, a random prefix (in nonce order) of its
// removed transactions; a prefix keeps nonces contiguous, so every resent one is minable.
func (c *Chain) resendPrefixesLocked(ctx context.Context, rng *rand.Rand, removed []*types.Transaction, res *ReorgResult) error {
	bySender := map[common.Address][]*types.Transaction{}
	var order []common.Address
	for _, tx := range removed {
		from, err := types.Sender(c.signer, tx)
		if err != nil {
			return fmt.Errorf("devchain: sender of %s: %w", tx.Hash(), err)
		}
		if _, ok := bySender[from]; !ok {
			order = append(order, from)
		}
		bySender[from] = append(bySender[from], tx)
	}
	for _, from := range order {
		txs := bySender[from]
		keep := rng.Intn(len(txs) + 1)
		for i, tx := range txs {
			if i >= keep {
				res.Dropped = append(res.Dropped, tx.Hash())
				continue
			}
			if err := c.resendLocked(ctx, tx); err != nil {
				return fmt.Errorf("devchain: resend %s after reorg: %w", tx.Hash(), err)
			}
			res.Moved = append(res.Moved, tx.Hash())
		}
	}
	return nil
}

func (c *Chain) finishReorg(res *ReorgResult) {
	head := c.eth.BlockChain().CurrentBlock()
	res.NewHead, res.NewHeadHash = head.Number.Uint64(), head.Hash()
	c.log.Info("reorg", "depth", res.Depth, "ancestor", res.Ancestor, "old_head", res.OldHead,
		"new_head", res.NewHead, "moved", len(res.Moved), "dropped", len(res.Dropped))
}
