package config

import (
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// LogSearcher is what FindFirstLogBlock needs from a node: eth_getLogs and the head, which a full
// node answers for any block (eth_getCode at an old block needs an archive node).
type LogSearcher interface {
	BlockNumber(ctx context.Context) (uint64, error)
	// CodeAt is the contract code at addr as of block (nil: the head), as ethclient's.
	CodeAt(ctx context.Context, addr common.Address, block *big.Int) ([]byte, error)
	FilterLogs(ctx context.Context, q ethereum.FilterQuery) ([]types.Log, error)
	// RangeTooLarge tells whether err refuses a range as too large (too many blocks or too large
	// an answer), and the largest range length the provider suggested (0: none).
	RangeTooLarge(err error) (suggested uint64, ok bool)
}

// FindFirstLogBlock returns the block of addr's first log between from and the head, and whether
// there is one. It asks for the whole range first and halves the window whenever the provider
// refuses it (a range cap, or an answer too large because the window holds many logs), walking
// forward window by window: the first window that holds a log names the block. On a provider
// without a range cap that is a bisection of a handful of requests; with a cap of C blocks, about
// (first block - from)/C requests. progress, when set, is told the block reached now and then.
func FindFirstLogBlock(ctx context.Context, node LogSearcher, addr common.Address, from uint64, progress func(at, head uint64)) (block uint64, found bool, head uint64, err error) {
	head, err = node.BlockNumber(ctx)
	if err != nil {
		return 0, false, 0, fmt.Errorf("first log of %s: eth_blockNumber: %w", addr, err)
	}
	window := head - from + 1
	lastReport := time.Now()
	for lo := from; lo <= head; {
		hi := min(head, lo+window-1)
		logs, err := node.FilterLogs(ctx, ethereum.FilterQuery{
			FromBlock: new(big.Int).SetUint64(lo), ToBlock: new(big.Int).SetUint64(hi), Addresses: []common.Address{addr},
		})
		if err != nil {
			suggested, tooLarge := node.RangeTooLarge(err)
			if !tooLarge || hi == lo {
				return 0, false, head, fmt.Errorf("first log of %s: eth_getLogs %d..%d: %w", addr, lo, hi, err)
			}
			if suggested > 0 && suggested < hi-lo+1 {
				window = suggested
			} else {
				window = max((hi-lo+1)/2, 1)
			}
			continue
		}
		first := uint64(0)
		for _, l := range logs {
			if !l.Removed && (!found || l.BlockNumber < first) {
				first, found = l.BlockNumber, true
			}
		}
		if found {
			return first, true, head, nil
		}
		lo = hi + 1
		if progress != nil && time.Since(lastReport) > 15*time.Second {
			progress(lo, head)
			lastReport = time.Now()
		}
	}
	return 0, false, head, nil
}

// StartBlockStore keeps the start blocks found, so that a restart does not search again.
type StartBlockStore interface {
	StartBlocks(ctx context.Context) (map[common.Address]uint64, error)
	SaveStartBlock(ctx context.Context, contract string, addr common.Address, block uint64) error
}

// ResolveStartBlocks replaces every `auto` start block: the one kept from an earlier search,
// else the block of the contract's first log (FindFirstLogBlock; the head when it has none yet:
// nothing before it needs indexing), which is then kept. Each block found is logged with the
// environment variable that pins it.
func (c *Config) ResolveStartBlocks(ctx context.Context, node LogSearcher, kept StartBlockStore, log *slog.Logger) error {
	known, err := kept.StartBlocks(ctx)
	if err != nil {
		return fmt.Errorf("start_block auto: %w", err)
	}
	for i, ct := range c.Contracts.All() {
		if !ct.StartBlock.Auto {
			continue
		}
		env := EnvName("contracts." + contractKeys[i].key + ".start_block")
		if n, ok := known[ct.Address]; ok {
			log.Info("start block from an earlier search", "contract", ct.Name, "address", ct.Address, "block", n, "pin", fmt.Sprintf("%s=%d", env, n))
			ct.StartBlock = StartBlock{Number: n}
			continue
		}
		// An address with no code at the head is a wrong address or a wrong chain: no restart
		// fixes that, so it is the configuration's error (exit status 2), not a start at the head.
		code, err := node.CodeAt(ctx, ct.Address, nil)
		if err != nil {
			return fmt.Errorf("%s start_block auto: eth_getCode: %w", ct.Name, err)
		}
		if len(code) == 0 {
			return c.KeyError("contracts."+contractKeys[i].key+".start_block",
				fmt.Errorf("auto: no contract at %s on this chain (check %s)", ct.Address, EnvName("contracts."+contractKeys[i].key+".address")))
		}
		t0 := time.Now()
		log.Info("searching the start block: the first log of the contract (eth_getLogs)", "contract", ct.Name, "address", ct.Address)
		n, found, head, err := FindFirstLogBlock(ctx, node, ct.Address, 0, func(at, head uint64) {
			log.Info("still searching the start block", "contract", ct.Name, "at_block", at, "head", head)
		})
		if err != nil {
			return fmt.Errorf("%s start_block auto: %w (or set it: %s=<block>)", ct.Name, err, env)
		}
		if !found {
			n = head
		}
		if err := kept.SaveStartBlock(ctx, ct.Name, ct.Address, n); err != nil {
			return fmt.Errorf("%s start_block auto: keep block %d: %w", ct.Name, n, err)
		}
		log.Info("start block found", "contract", ct.Name, "address", ct.Address, "block", n, "has_logs", found,
			"took", time.Since(t0).Round(time.Millisecond), "pin", fmt.Sprintf("%s=%d", env, n))
		ct.StartBlock = StartBlock{Number: n}
	}
	return nil
}
