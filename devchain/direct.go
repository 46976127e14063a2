package devchain

import (
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth/catalyst"
	"github.com/ethereum/go-ethereum/miner"
	"github.com/ethereum/go-ethereum/params"
)

// A long pre-build does not go through the transaction pool and the simulated beacon. Each
// transaction sent through them is validated and its sender recovered by the pool, the block is
// built from the pool, serialised into an engine-API payload, decoded and executed again, and
// the pool's reset recovers every sender once more: about 33 ms a block of 40 transfers on a
// shared 2-core machine, over an hour and a half for 200,000 blocks. Building directly, the
// miner executes exactly the given transactions once (recovering each sender once, cached in
// the transaction) and the block is inserted as a peer's block would be. The blocks are the
// same kind of blocks (same header fields, system calls and requests); only their timestamps
// follow each other by one second instead of the wall clock.

// directBuild collects the transactions of the block being built.
type directBuild struct {
	txs []*types.Transaction
}

// add takes a transaction that the chain signed for from. Its sender is known, so it is put in
// the transaction's sender cache (types.Sender) rather than recovered from the signature when
// the block executes: recovery was a quarter of the pre-build's CPU. The history is still
// checked: an import of it (a cached history) recovers every sender.
func (d *directBuild) add(cfg *params.ChainConfig, head *types.Header, from common.Address, tx *types.Transaction) {
	blockSigner := types.MakeSigner(cfg, new(big.Int).Add(head.Number, big.NewInt(1)), head.Time+1)
	_, _ = types.Sender(knownSender{Signer: blockSigner, from: from}, tx) // cannot fail
	d.txs = append(d.txs, tx)
}

// knownSender answers Sender with the address that signed, and is Equal to the signer it wraps,
// so types.Sender's cache serves the block's signer.
type knownSender struct {
	types.Signer
	from common.Address
}

func (k knownSender) Sender(*types.Transaction) (common.Address, error) { return k.from, nil }
func (k knownSender) Equal(s types.Signer) bool                         { return k.Signer.Equal(s) }

// beginDirectLocked starts building blocks directly; endDirectLocked must follow.
func (c *Chain) beginDirectLocked() error {
	if pending, queued := c.eth.TxPool().Stats(); pending+queued > 0 {
		return fmt.Errorf("devchain: direct build with %d transactions in the pool", pending+queued)
	}
	c.direct = &directBuild{}
	return nil
}

// endDirectLocked goes back to the pool and the beacon. The beacon keeps the time of the last
// block it sealed and would seal the next one before the directly built head: a new beacon
// starts from the head, as one does on a node that synced from peers.
func (c *Chain) endDirectLocked() error {
	if c.direct == nil {
		return nil
	}
	left := len(c.direct.txs)
	c.direct = nil
	if left > 0 {
		return fmt.Errorf("devchain: direct build ended with %d transactions not in a block", left)
	}
	if err := c.beacon.Stop(); err != nil {
		return fmt.Errorf("devchain: stop beacon: %w", err)
	}
	beacon, err := catalyst.NewSimulatedBeacon(0, common.Address{}, c.eth)
	if err != nil {
		return fmt.Errorf("devchain: restart beacon: %w", err)
	}
	c.beacon = beacon
	// The next transactions go to the pool, which must have its state at the head first (the
	// nonces kept in c.nonces are right: every transaction sent went into a block).
	if err := c.eth.TxPool().Sync(); err != nil {
		return fmt.Errorf("devchain: txpool sync: %w", err)
	}
	return nil
}

// nextNonceLocked is the nonce of from's next transaction: the pool's view, or, while
// building directly, the head state's.
func (c *Chain) nextNonceLocked(from common.Address) (uint64, error) {
	if c.direct == nil {
		return c.eth.TxPool().Nonce(from), nil
	}
	st, err := c.eth.BlockChain().State()
	if err != nil {
		return 0, fmt.Errorf("devchain: head state: %w", err)
	}
	return st.GetNonce(from), nil
}

// buildDirectLocked builds a block of the collected transactions on the head and inserts it.
// Every transaction must be valid for the block (a reverting one is, as on any chain).
func (c *Chain) buildDirectLocked() (common.Hash, error) {
	bc := c.eth.BlockChain()
	parent := bc.CurrentBlock()
	txs := c.direct.txs
	c.direct.txs = nil
	args := &miner.BuildPayloadArgs{
		Parent:       parent.Hash(),
		Timestamp:    parent.Time + 1,
		FeeRecipient: common.Address{}, // the beacon's
		// The beacon draws it at random; derived here, a rebuild makes the same blocks.
		Random:      crypto.Keccak256Hash(parent.Hash().Bytes()),
		Withdrawals: types.Withdrawals{},
		BeaconRoot:  &common.Hash{},
	}
	next := parent.Number.Uint64() + 1
	if bc.Config().IsAmsterdam(new(big.Int).SetUint64(next), args.Timestamp) {
		slot := uint64(0)
		args.SlotNum = &slot
	}
	block, _, err := c.eth.Miner().BuildTestingPayload(args, txs, len(txs) == 0, nil)
	if err != nil {
		return common.Hash{}, fmt.Errorf("devchain: build block %d: %w", next, err)
	}
	if got := len(block.Transactions()); got != len(txs) {
		return common.Hash{}, fmt.Errorf("devchain: block %d holds %d of %d transactions", next, got, len(txs))
	}
	if _, err := bc.InsertChain(types.Blocks{block}); err != nil {
		return common.Hash{}, fmt.Errorf("devchain: insert block %d: %w", next, err)
	}
	if head := bc.CurrentBlock(); head.Hash() != block.Hash() {
		return common.Hash{}, fmt.Errorf("devchain: inserted block %d is not the head (%d)", next, head.Number)
	}
	// The pool's reset reads each new block back from the database (a copy without the
	// senders) and recovers every sender; reading it first puts it in the chain's block cache,
	// where the pool finds it, with its senders known.
	if stored := bc.GetBlock(block.Hash(), next); stored != nil {
		signer := types.MakeSigner(bc.Config(), block.Number(), block.Time())
		for i, tx := range stored.Transactions() {
			if from, err := types.Sender(signer, txs[i]); err == nil {
				_, _ = types.Sender(knownSender{Signer: signer, from: from}, tx)
			}
		}
	}
	c.holdFinalityLocked()
	return block.Hash(), nil
}
