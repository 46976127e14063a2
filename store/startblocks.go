package store

import (
	"context"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
)

// StartBlocks returns the start blocks kept by SaveStartBlock, by contract address.
func (s *Store) StartBlocks(ctx context.Context) (map[common.Address]uint64, error) {
	rows, err := s.pool.Query(ctx, `SELECT address, block FROM indexer.start_blocks`)
	if err != nil {
		return nil, fmt.Errorf("read start blocks: %w", err)
	}
	defer rows.Close()
	out := map[common.Address]uint64{}
	for rows.Next() {
		var addr []byte
		var block int64
		if err := rows.Scan(&addr, &block); err != nil {
			return nil, fmt.Errorf("read start blocks: %w", err)
		}
		out[common.BytesToAddress(addr)] = uint64(block)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read start blocks: %w", err)
	}
	return out, nil
}

// SaveStartBlock keeps the start block found for a contract (`start_block: auto`).
func (s *Store) SaveStartBlock(ctx context.Context, contract string, addr common.Address, block uint64) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO indexer.start_blocks (address, contract, block) VALUES ($1, $2, $3)
		ON CONFLICT (address) DO UPDATE SET contract = excluded.contract, block = excluded.block, found_at = now()`,
		addr.Bytes(), contract, int64(block))
	if err != nil {
		return fmt.Errorf("keep start block of %s: %w", contract, err)
	}
	return nil
}
