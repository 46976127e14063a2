package devchain

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"math/rand"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// BusyConfig asks for a busy chain, like a public L2: every block carries many transactions of
// other contracts (ERC-20 and ERC-721 transfers), and Echain's traffic is sparse among them.
type BusyConfig struct {
	// Unrelated is the number of unrelated token transfers per block, each emitting one Transfer
	// log (half ERC-20, half ERC-721, the same topic0 as EventTicket's Transfer). Default 40.
	Unrelated int
	// EchainEvery: one block in EchainEvery carries Echain traffic. Default 50.
	EchainEvery int
	// EchainTxs is the number of Echain transactions in such a block. Default 4.
	EchainTxs int
	// BlockInterval is Run's pause between blocks. Default 2s (Base's block time).
	BlockInterval time.Duration
}

func (b *BusyConfig) withDefaults() {
	if b.Unrelated <= 0 {
		b.Unrelated = 40
	}
	if b.EchainEvery <= 0 {
		b.EchainEvery = 50
	}
	if b.EchainTxs <= 0 {
		b.EchainTxs = 4
	}
	if b.BlockInterval <= 0 {
		b.BlockInterval = 2 * time.Second
	}
}

// The unrelated tokens are hand-written EVM code (no solc needed), which only emit the event a
// token's transfer would, with the caller as the sender. Calldata: 32 bytes recipient, 32 bytes
// amount (ERC-20) or token id (ERC-721).
//
// ERC-20, Transfer(address indexed from, address indexed to, uint256 value):
//
//	PUSH1 0x20 CALLDATALOAD PUSH1 0 MSTORE          ; memory[0:32] = amount
//	PUSH1 0 CALLDATALOAD CALLER PUSH32 <Transfer>   ; topics: Transfer, caller, recipient
//	PUSH1 0x20 PUSH1 0 LOG3 STOP
//
// ERC-721, Transfer(address indexed from, address indexed to, uint256 indexed tokenId):
//
//	PUSH1 0x20 CALLDATALOAD PUSH1 0 CALLDATALOAD CALLER PUSH32 <Transfer>
//	PUSH1 0 PUSH1 0 LOG4 STOP
//
// Each creation code is the 12-byte prefix PUSH1 len PUSH1 12 PUSH1 0 CODECOPY PUSH1 len
// PUSH1 0 RETURN followed by the runtime code.
const transferTopic = "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"

var (
	erc20Runtime  = "602035600052600035337f" + transferTopic + "60206000a300"
	erc721Runtime = "602035600035337f" + transferTopic + "60006000a400"
)

func creationCode(runtime string) []byte {
	code, err := hex.DecodeString(runtime)
	if err != nil {
		panic(err) // a constant above
	}
	n := byte(len(code))
	return append([]byte{0x60, n, 0x60, 12, 0x60, 0, 0x39, 0x60, n, 0x60, 0, 0xf3}, code...)
}

// gasTokenTransfer covers a transfer call: 21,000, calldata and a LOG3/LOG4 (~24,000 in all).
const gasTokenTransfer = 40_000

// Busy drives busy-chain traffic: the Echain generator (Traffic) in one block of EchainEvery,
// unrelated token transfers in every block. It injects no reorganisations.
type Busy struct {
	t             *Traffic
	cfg           BusyConfig
	rng           *rand.Rand
	erc20, erc721 common.Address
	tokenID       uint64
	blocks        int
}

// NewBusy deploys the two unrelated tokens (in one block) and returns the generator.
func NewBusy(ctx context.Context, c *Chain, tcfg TrafficConfig, cfg BusyConfig, log *slog.Logger) (*Busy, error) {
	cfg.withDefaults()
	t := NewTraffic(c, tcfg, log)
	b := &Busy{t: t, cfg: cfg, rng: rand.New(rand.NewSource(t.cfg.Seed ^ 0x5eed))}
	c.mu.Lock()
	defer c.mu.Unlock()
	issuer := c.users[len(c.users)-1]
	var hashes []common.Hash
	for _, rt := range []string{erc20Runtime, erc721Runtime} {
		tx, err := c.sendLocked(ctx, issuer, nil, nil, creationCode(rt), 200_000)
		if err != nil {
			return nil, fmt.Errorf("devchain: deploy unrelated token: %w", err)
		}
		hashes = append(hashes, tx.Hash())
	}
	sealed, err := c.commitLocked()
	if err != nil {
		return nil, err
	}
	rs, err := c.receiptsLocked(ctx, sealed, hashes)
	if err != nil {
		return nil, fmt.Errorf("devchain: deploy unrelated tokens: %w", err)
	}
	b.erc20, b.erc721 = rs[0].ContractAddress, rs[1].ContractAddress
	return b, nil
}

// Tokens returns the unrelated ERC-20 and ERC-721 contracts' addresses.
func (b *Busy) Tokens() (erc20, erc721 common.Address) { return b.erc20, b.erc721 }

// Traffic is the Echain generator inside (for its Stats).
func (b *Busy) Traffic() *Traffic { return b.t }

// Step seals one busy block.
func (b *Busy) Step(ctx context.Context) (StepResult, error) {
	if err := ctx.Err(); err != nil {
		return StepResult{}, err
	}
	b.t.c.mu.Lock()
	defer b.t.c.mu.Unlock()
	return b.blockLocked(ctx)
}

func (b *Busy) blockLocked(ctx context.Context) (StepResult, error) {
	c := b.t.c
	if err := b.t.syncLocked(); err != nil {
		return StepResult{}, err
	}
	for i := 0; i < b.cfg.Unrelated; i++ {
		from := c.users[b.rng.Intn(len(c.users))]
		to := c.users[b.rng.Intn(len(c.users))].Address
		token := b.erc20
		var arg *big.Int
		if i%2 == 0 {
			arg = big.NewInt(1 + b.rng.Int63n(1e12))
		} else {
			token = b.erc721
			b.tokenID++
			arg = new(big.Int).SetUint64(b.tokenID)
		}
		data := make([]byte, 64)
		copy(data[12:32], to.Bytes())
		arg.FillBytes(data[32:])
		if _, err := c.sendLocked(ctx, from, &token, nil, data, gasTokenTransfer); err != nil {
			return StepResult{}, fmt.Errorf("devchain: unrelated transfer: %w", err)
		}
	}
	n := 0
	if b.blocks%b.cfg.EchainEvery == b.cfg.EchainEvery-1 {
		n = b.cfg.EchainTxs
	}
	b.blocks++
	r, err := b.t.blockLocked(ctx, n, false)
	if err != nil {
		return r, err
	}
	r.Txs += b.cfg.Unrelated
	return r, nil
}

// Run seals a busy block every BlockInterval until ctx is done.
func (b *Busy) Run(ctx context.Context) error {
	return every(ctx, b.cfg.BlockInterval, func(ctx context.Context) error {
		_, err := b.Step(ctx)
		return err
	})
}

// Prebuild seals the given number of busy blocks as fast as the node allows, with the
// pre-build profile of Echain operations (mostly events and purchases). It builds the blocks
// directly (direct.go), one second apart.
func (b *Busy) Prebuild(ctx context.Context, blocks int) error {
	b.t.c.mu.Lock()
	defer b.t.c.mu.Unlock()
	b.t.bulk = true
	defer func() { b.t.bulk = false }()
	if err := b.t.c.beginDirectLocked(); err != nil {
		return err
	}
	start := time.Now()
	for i := 0; i < blocks; i++ {
		if err := ctx.Err(); err != nil {
			return errors.Join(err, b.t.c.endDirectLocked())
		}
		if _, err := b.blockLocked(ctx); err != nil {
			return errors.Join(err, b.t.c.endDirectLocked())
		}
		if (i+1)%1000 == 0 {
			b.t.log.Info("pre-building busy history", "blocks", i+1, "of", blocks, "events", len(b.t.m.events),
				"elapsed", time.Since(start).Round(time.Millisecond))
		}
	}
	return b.t.c.endDirectLocked()
}

func prebuildBusy(ctx context.Context, c *Chain, cfg Config, h HistoryConfig, log *slog.Logger) error {
	b, err := NewBusy(ctx, c, TrafficConfig{Seed: cfg.Seed}, *h.Busy, log)
	if err != nil {
		return err
	}
	return b.Prebuild(ctx, h.Blocks)
}
