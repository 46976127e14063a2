package source

import (
	"context"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
)

// TxRequest names transactions of one block.
type TxRequest struct {
	Block  common.Hash
	Hashes []common.Hash
}

// Txs returns the Tx of each hash, all in the block with hash blockHash.
func (s *Source) Txs(ctx context.Context, blockHash common.Hash, hashes []common.Hash) (map[common.Hash]*Tx, error) {
	return s.TxsMany(ctx, []TxRequest{{Block: blockHash, Hashes: hashes}})
}

// TxsMany returns the Tx of every requested hash, fetched with JSON-RPC batches (a backfill asks
// for many blocks at once): per block eth_getBlockReceipts where the endpoint supports it, else
// eth_getTransactionReceipt per hash; from/to/value by eth_getTransactionByHash per hash, or, in
// the block-receipts mode for a block with at least fullBlockMinTxs wanted transactions, by one
// eth_getBlockByHash(hash, true). A batch the node finds too large is split and retried.
// Every receipt and transaction must belong to the stated block; an endpoint that places one
// elsewhere (or lacks it) is skipped, and when no endpoint agrees the error matches
// ethereum.NotFound: the block is probably no longer canonical.
func (s *Source) TxsMany(ctx context.Context, reqs []TxRequest) (map[common.Hash]*Tx, error) {
	// Group blocks into units of work that cost about one batch in the block mode (a block with
	// many wanted transactions costs two calls, else one plus one per hash), at most
	// maxBlocksPerBatch blocks of receipts (those can be large). The per-transaction mode may
	// need several batches for a group; txBatch splits them.
	const maxBlocksPerBatch = 20
	cost := func(n int) int {
		if n >= fullBlockMinTxs {
			return 2
		}
		return 1 + n
	}
	var groups [][]txUnit
	var cur []txUnit
	n, total := 0, 0
	for _, r := range reqs {
		if len(r.Hashes) == 0 {
			continue
		}
		c := cost(len(r.Hashes))
		if len(cur) > 0 && (n+c > s.cfg.BatchSize || len(cur) >= maxBlocksPerBatch) {
			groups = append(groups, cur)
			cur, n = nil, 0
		}
		cur = append(cur, txUnit{r.Block, r.Hashes})
		n += c
		total += len(r.Hashes)
	}
	if len(cur) > 0 {
		groups = append(groups, cur)
	}
	results := make([]map[common.Hash]*Tx, len(groups))
	err := s.parallel(ctx, len(groups), 1, func(ctx context.Context, lo, _ int) error {
		m, err := s.txGroup(ctx, groups[lo])
		results[lo] = m
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make(map[common.Hash]*Tx, total)
	for _, m := range results {
		for h, tx := range m {
			out[h] = tx
		}
	}
	return out, nil
}

type txUnit struct {
	block  common.Hash
	hashes []common.Hash
}

func (s *Source) txGroup(ctx context.Context, g []txUnit) (map[common.Hash]*Tx, error) {
	out, err := s.txGroupOnce(ctx, g)
	if err == nil {
		return out, nil
	}
	if kind, _, _ := classify(err); kind == kindTooLarge && len(g) > 1 {
		// The node's batch answer limit (geth: 25 MB) is about busy blocks: halve and retry.
		s.log.Debug("receipts batch too large; splitting", "blocks", len(g), "err", err)
		a, err := s.txGroup(ctx, g[:len(g)/2])
		if err != nil {
			return nil, err
		}
		b, err := s.txGroup(ctx, g[len(g)/2:])
		if err != nil {
			return nil, err
		}
		for h, tx := range b {
			a[h] = tx
		}
		return a, nil
	}
	return out, err
}

func (s *Source) txGroupOnce(ctx context.Context, g []txUnit) (map[common.Hash]*Tx, error) {
	var out map[common.Hash]*Tx
	err := s.do(ctx, "txs[batch]", 0, 0, func(ctx context.Context, ep *endpoint) error {
		useBlock := s.cfg.Receipts == ReceiptsBlock || (s.cfg.Receipts == ReceiptsAuto && ep.receiptsSupport() >= 0)
		m, err := s.txBatch(ctx, ep, g, useBlock)
		if useBlock && s.cfg.Receipts == ReceiptsAuto {
			var re *RPCError
			switch {
			case errors.As(err, &re) && isUnsupported(re):
				ep.setReceiptsSupport(-1)
				s.log.Info("endpoint lacks eth_getBlockReceipts; fetching receipts one by one", "endpoint", ep.name, "err", err)
				m, err = s.txBatch(ctx, ep, g, false)
			case err == nil:
				ep.setReceiptsSupport(1)
			}
		}
		out = m
		return err
	})
	return out, err
}

// fullBlockMinTxs: from this many wanted transactions of one block on, the block mode reads
// them with eth_getBlockByHash(hash, true) instead of one eth_getTransactionByHash each.
const fullBlockMinTxs = 8

type rpcBlockTxs struct {
	Hash         common.Hash `json:"hash"`
	Transactions []rpcTx     `json:"transactions"`
}

type rpcReceipt struct {
	TxHash            common.Hash    `json:"transactionHash"`
	BlockHash         common.Hash    `json:"blockHash"`
	BlockNumber       hexutil.Uint64 `json:"blockNumber"`
	GasUsed           hexutil.Uint64 `json:"gasUsed"`
	EffectiveGasPrice *hexutil.Big   `json:"effectiveGasPrice"`
}

// txBatch fetches one group in one JSON-RPC batch from ep.
func (s *Source) txBatch(ctx context.Context, ep *endpoint, g []txUnit, useBlock bool) (map[common.Hash]*Tx, error) {
	var (
		elems    []batchElem
		blockRcs = make([]*[]rpcReceipt, len(g))
		txRcs    = make([][]*rpcReceipt, len(g))
		txs      = make([][]*rpcTx, len(g))
		blocks   = make([]**rpcBlockTxs, len(g))
	)
	for i, u := range g {
		if useBlock {
			blockRcs[i] = new([]rpcReceipt)
			elems = append(elems, batchElem{Method: "eth_getBlockReceipts", Params: []any{u.block}, Result: blockRcs[i]})
		} else {
			txRcs[i] = make([]*rpcReceipt, len(u.hashes))
			for j, h := range u.hashes {
				elems = append(elems, batchElem{Method: "eth_getTransactionReceipt", Params: []any{h}, Result: &txRcs[i][j]})
			}
		}
		txs[i] = make([]*rpcTx, len(u.hashes))
		if useBlock && len(u.hashes) >= fullBlockMinTxs {
			// The whole block's transactions: the node has the block cached from the receipts
			// call (senders recovered), where each per-hash lookup decodes and recovers anew.
			// Worth it when we need a good part of the block.
			blocks[i] = new(*rpcBlockTxs)
			elems = append(elems, batchElem{Method: "eth_getBlockByHash", Params: []any{u.block, true}, Result: blocks[i]})
			continue
		}
		for j, h := range u.hashes {
			elems = append(elems, batchElem{Method: "eth_getTransactionByHash", Params: []any{h}, Result: &txs[i][j]})
		}
	}
	for _, e := range elems {
		s.m.batchItems.WithLabelValues(ep.name, e.Method).Inc()
	}
	for lo := 0; lo < len(elems); lo += s.cfg.BatchSize {
		if err := ep.rpc.batch(ctx, elems[lo:min(lo+s.cfg.BatchSize, len(elems))]); err != nil {
			return nil, err
		}
	}
	// A receipts-path error decides the path; report it before per-item troubles.
	for _, e := range elems {
		if e.Err != nil && e.Method == "eth_getBlockReceipts" {
			return nil, e.Err
		}
	}
	for _, e := range elems {
		if e.Err != nil {
			return nil, fmt.Errorf("%s: %w", e.Method, e.Err)
		}
	}
	out := make(map[common.Hash]*Tx)
	for i, u := range g {
		var byHash map[common.Hash]*rpcReceipt
		if useBlock {
			if *blockRcs[i] == nil {
				return nil, missing("receipts of block %s", u.block)
			}
			byHash = make(map[common.Hash]*rpcReceipt, len(*blockRcs[i]))
			for k := range *blockRcs[i] {
				r := &(*blockRcs[i])[k]
				if r.BlockHash != u.block {
					return nil, missing("receipts of block %s (node answered block %s)", u.block, r.BlockHash)
				}
				byHash[r.TxHash] = r
			}
		}
		if blocks[i] != nil {
			blk := *blocks[i]
			if blk == nil || blk.Hash != u.block {
				return nil, missing("block %s", u.block)
			}
			inBlock := make(map[common.Hash]*rpcTx, len(blk.Transactions))
			for k := range blk.Transactions {
				tx := &blk.Transactions[k]
				tx.BlockHash = &blk.Hash
				inBlock[tx.Hash] = tx
			}
			for j, h := range u.hashes {
				txs[i][j] = inBlock[h]
			}
		}
		for j, h := range u.hashes {
			var rc *rpcReceipt
			if useBlock {
				rc = byHash[h]
			} else {
				rc = txRcs[i][j]
			}
			if rc == nil || rc.BlockHash != u.block {
				return nil, missing("receipt of transaction %s in block %s", h, u.block)
			}
			tx := txs[i][j]
			if tx == nil || tx.BlockHash == nil || *tx.BlockHash != u.block || tx.Hash != h {
				return nil, missing("transaction %s in block %s", h, u.block)
			}
			out[h] = makeTx(tx, rc)
		}
		s.observeHead(ep, uint64(blockNumberOf(g[i], byHash, txRcs[i])), false)
	}
	return out, nil
}

func blockNumberOf(u txUnit, byHash map[common.Hash]*rpcReceipt, rcs []*rpcReceipt) hexutil.Uint64 {
	if len(u.hashes) == 0 {
		return 0
	}
	if byHash != nil {
		if r := byHash[u.hashes[0]]; r != nil {
			return r.BlockNumber
		}
	}
	if len(rcs) > 0 && rcs[0] != nil {
		return rcs[0].BlockNumber
	}
	return 0
}

func makeTx(tx *rpcTx, rc *rpcReceipt) *Tx {
	out := &Tx{Hash: tx.Hash, From: tx.From, To: tx.To, GasUsed: uint64(rc.GasUsed), Value: new(big.Int), GasPrice: new(big.Int)}
	if tx.Value != nil {
		out.Value = tx.Value.ToInt()
	}
	switch {
	case rc.EffectiveGasPrice != nil:
		out.GasPrice = rc.EffectiveGasPrice.ToInt()
	case tx.GasPrice != nil:
		out.GasPrice = tx.GasPrice.ToInt()
	}
	return out
}
