package config

import (
	"context"
	"fmt"
	"log/slog"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
)

// CodeReader is what FindDeploymentBlock needs from a node; *ethclient.Client has it.
type CodeReader interface {
	BlockNumber(ctx context.Context) (uint64, error)
	CodeAt(ctx context.Context, account common.Address, blockNumber *big.Int) ([]byte, error)
}

// FindDeploymentBlock returns the first block at which addr has code, by bisecting eth_getCode
// between genesis and the head: about log2(head) requests. It needs a node that serves state at
// old blocks (an archive node); a pruned node's refusal is returned with that advice.
func FindDeploymentBlock(ctx context.Context, node CodeReader, addr common.Address) (uint64, error) {
	head, err := node.BlockNumber(ctx)
	if err != nil {
		return 0, fmt.Errorf("deployment block of %s: eth_blockNumber: %w", addr, err)
	}
	has := func(n uint64) (bool, error) {
		code, err := node.CodeAt(ctx, addr, new(big.Int).SetUint64(n))
		if err != nil {
			return false, fmt.Errorf("deployment block of %s: eth_getCode at block %d: %w "+
				"(start_block auto needs a node with historical state, such as an archive node; or set the start block)",
				addr, n, err)
		}
		return len(code) > 0, nil
	}
	ok, err := has(head)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("deployment block of %s: no contract there at the head (block %d): wrong address or wrong chain", addr, head)
	}
	// Invariant: code at hi, none below lo.
	lo, hi := uint64(0), head
	for lo < hi {
		mid := lo + (hi-lo)/2
		ok, err := has(mid)
		if err != nil {
			return 0, err
		}
		if ok {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return hi, nil
}

// ResolveStartBlocks replaces every `auto` start block with the contract's deployment block.
func (c *Config) ResolveStartBlocks(ctx context.Context, node CodeReader, log *slog.Logger) error {
	for _, ct := range c.Contracts.All() {
		if !ct.StartBlock.Auto {
			continue
		}
		n, err := FindDeploymentBlock(ctx, node, ct.Address)
		if err != nil {
			return fmt.Errorf("%s start_block auto: %w", ct.Name, err)
		}
		log.Info("found deployment block", "contract", ct.Name, "address", ct.Address, "block", n)
		ct.StartBlock = StartBlock{Number: n}
	}
	return nil
}
