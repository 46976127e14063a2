package source

import (
	"context"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
)

// TxRequest names transactions of one block.
type TxRequest struct {
	Block  common.Hash
	Hashes []common.Hash
	// MinBlockTxs is a lower bound of the block's transaction count (0: unknown), e.g. one
	// more than the highest transactionIndex of its logs. Where Hashes are at most half of
	// it, their receipts are fetched one by one rather than the block's: on a busy chain the
	// block's receipts are mostly other contracts', and what is downloaded would grow with them.
	MinBlockTxs int
}

// byTx reports whether r's receipts are fetched per transaction whatever the endpoint offers.
func (r TxRequest) byTx() bool { return r.MinBlockTxs > 0 && 2*len(r.Hashes) <= r.MinBlockTxs }

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
	out, _, err := s.TxsManyStats(ctx, reqs)
	return out, err
}

// TxStats tells how much of the blocks a TxsMany call wanted, where the node said how many
// transactions a block holds (the block-receipts mode) or the request bounded it
// (TxRequest.MinBlockTxs, for blocks read per transaction): Blocks such blocks held BlockTxs
// transactions (at least), of which Wanted were asked for.
type TxStats struct {
	Blocks, BlockTxs, Wanted int
}

func (a TxStats) plus(b TxStats) TxStats {
	return TxStats{a.Blocks + b.Blocks, a.BlockTxs + b.BlockTxs, a.Wanted + b.Wanted}
}

// TxsManyStats is TxsMany that also reports TxStats.
func (s *Source) TxsManyStats(ctx context.Context, reqs []TxRequest) (map[common.Hash]*Tx, TxStats, error) {
	// Group blocks into units of work that fill about one batch: a block read by its receipts
	// costs one call plus one per hash, or two from fullBlockMinTxs hashes on; one read per
	// transaction costs two calls per hash. A group holds at most maxBlocksPerBatch blocks of
	// receipts (those answers can be large). A group may need several batches where the
	// endpoint lacks block receipts; txBatch splits them.
	const maxBlocksPerBatch = 20
	cost := func(r TxRequest) int {
		n := len(r.Hashes)
		switch {
		case r.byTx():
			return 2 * n
		case n >= fullBlockMinTxs:
			return 2
		}
		return 1 + n
	}
	var groups [][]txUnit
	var cur []txUnit
	n, blockUnits, total := 0, 0, 0
	for _, r := range reqs {
		if len(r.Hashes) == 0 {
			continue
		}
		c := cost(r)
		if len(cur) > 0 && (n+c > s.cfg.BatchSize || (!r.byTx() && blockUnits >= maxBlocksPerBatch)) {
			groups = append(groups, cur)
			cur, n, blockUnits = nil, 0, 0
		}
		cur = append(cur, txUnit{r.Block, r.Hashes, r.byTx(), r.MinBlockTxs})
		n += c
		if !r.byTx() {
			blockUnits++
		}
		total += len(r.Hashes)
	}
	if len(cur) > 0 {
		groups = append(groups, cur)
	}
	results := make([]map[common.Hash]*Tx, len(groups))
	stats := make([]TxStats, len(groups))
	err := s.parallel(ctx, len(groups), 1, func(ctx context.Context, lo, _ int) error {
		m, st, err := s.txGroup(ctx, groups[lo])
		results[lo], stats[lo] = m, st
		return err
	})
	if err != nil {
		return nil, TxStats{}, err
	}
	out := make(map[common.Hash]*Tx, total)
	var st TxStats
	for i, m := range results {
		for h, tx := range m {
			out[h] = tx
		}
		st = st.plus(stats[i])
	}
	return out, st, nil
}

type txUnit struct {
	block  common.Hash
	hashes []common.Hash
	byTx   bool // receipts per transaction (TxRequest.byTx)
	minTxs int  // TxRequest.MinBlockTxs
}

func (s *Source) txGroup(ctx context.Context, g []txUnit) (map[common.Hash]*Tx, TxStats, error) {
	out, st, err := s.txGroupOnce(ctx, g)
	if err == nil {
		return out, st, nil
	}
	if kind, _, _ := classify(err); kind == kindTooLarge && len(g) > 1 {
		// The node's batch answer limit (geth: 25 MB) is about busy blocks: halve and retry.
		s.log.Debug("receipts batch too large; splitting", "blocks", len(g), "err", err)
		a, sa, err := s.txGroup(ctx, g[:len(g)/2])
		if err != nil {
			return nil, TxStats{}, err
		}
		b, sb, err := s.txGroup(ctx, g[len(g)/2:])
		if err != nil {
			return nil, TxStats{}, err
		}
		for h, tx := range b {
			a[h] = tx
		}
		return a, sa.plus(sb), nil
	}
	return out, st, err
}

func (s *Source) txGroupOnce(ctx context.Context, g []txUnit) (map[common.Hash]*Tx, TxStats, error) {
	var out map[common.Hash]*Tx
	var st TxStats
	err := s.do(ctx, "txs[batch]", 0, 0, func(ctx context.Context, ep *endpoint) error {
		useBlock := s.cfg.Receipts == ReceiptsBlock || (s.cfg.Receipts == ReceiptsAuto && ep.receiptsSupport() >= 0)
		m, bst, err := s.txBatch(ctx, ep, g, useBlock)
		if useBlock && s.cfg.Receipts == ReceiptsAuto {
			var re *RPCError
			switch {
			case errors.As(err, &re) && isUnsupported(re):
				ep.setReceiptsSupport(-1)
				s.log.Info("endpoint lacks eth_getBlockReceipts; fetching receipts one by one", "endpoint", ep.name, "err", err)
				m, bst, err = s.txBatch(ctx, ep, g, false)
			case err == nil:
				ep.setReceiptsSupport(1)
			}
		}
		out, st = m, bst
		return err
	})
	return out, st, err
}

// fullBlockMinTxs: from this many wanted transactions of one block on, the block mode reads
// them with eth_getBlockByHash(hash, true) instead of one eth_getTransactionByHash each.
const fullBlockMinTxs = 8

// rpcBlockTxs is a block object with its transactions (eth_getBlockByHash/Number(_, true)).
type rpcBlockTxs struct {
	WithInput    bool // set before decoding: keep the transactions' calldata
	Null         bool // the node does not have the block
	Hash         common.Hash
	ParentHash   common.Hash
	Number       uint64
	Timestamp    uint64
	Transactions []rpcTx
}

func (b *rpcBlockTxs) UnmarshalJSON(raw []byte) error { return unmarshalScan(raw, b) }

func (b *rpcBlockTxs) scan(s *scanner) error {
	*b = rpcBlockTxs{WithInput: b.WithInput}
	if s.null() {
		b.Null = true
		return nil
	}
	var haveHash, haveNumber bool
	err := s.object(func(key []byte) error {
		switch string(key) {
		case "hash":
			haveHash = true
			return s.hexInto(b.Hash[:], "block hash")
		case "number":
			haveNumber = true
			return s.optUint(&b.Number, "block number")
		case "parentHash":
			return s.hexInto(b.ParentHash[:], "block parentHash")
		case "timestamp":
			return s.optUint(&b.Timestamp, "block timestamp")
		case "transactions":
			b.Transactions = []rpcTx{}
			return s.array(func() error {
				if s.peek() == '"' {
					return s.fail("transaction hashes where transaction objects were asked for")
				}
				b.Transactions = append(b.Transactions, rpcTx{})
				return s.tx(&b.Transactions[len(b.Transactions)-1], b.WithInput)
			})
		default:
			return s.skip()
		}
	})
	if err != nil {
		return err
	}
	if !haveHash || !haveNumber || b.Transactions == nil {
		return fmt.Errorf("%w: block object without hash, number or transactions", errBadResponse)
	}
	return nil
}

// rpcReceipt is a receipt object; Logs only when decoded for them.
type rpcReceipt struct {
	TxHash            common.Hash
	BlockHash         common.Hash
	BlockNumber       uint64
	TxIndex           uint64
	GasUsed           uint64
	EffectiveGasPrice *big.Int
	From              common.Address
	To                *common.Address
	Logs              []types.Log
}

func (r *rpcReceipt) UnmarshalJSON(b []byte) error {
	*r = rpcReceipt{}
	s := &scanner{b: b}
	if err := s.receipt(r, nil); err != nil {
		return err
	}
	return s.end()
}

// receipt reads a receipt object. Its logs are appended to *logs (nil: skipped), and
// r.Logs is left for the caller to point at them.
func (s *scanner) receipt(r *rpcReceipt, logs *[]types.Log) error {
	var haveHash, haveBlock, haveGas bool
	err := s.object(func(key []byte) error {
		switch string(key) {
		case "transactionHash":
			haveHash = true
			return s.hexInto(r.TxHash[:], "transactionHash")
		case "blockHash":
			haveBlock = true
			return s.hexInto(r.BlockHash[:], "blockHash")
		case "blockNumber":
			return s.optUint(&r.BlockNumber, "blockNumber")
		case "transactionIndex":
			return s.optUint(&r.TxIndex, "transactionIndex")
		case "gasUsed":
			haveGas = true
			return s.optUint(&r.GasUsed, "gasUsed")
		case "effectiveGasPrice":
			return s.optBig(&r.EffectiveGasPrice, "effectiveGasPrice")
		case "from":
			return s.hexInto(r.From[:], "from")
		case "to":
			if s.null() {
				return nil
			}
			r.To = new(common.Address)
			return s.hexInto(r.To[:], "to")
		case "logs":
			if logs == nil {
				return s.skip()
			}
			if s.null() {
				return nil
			}
			var err error
			*logs, err = s.logsInto(*logs)
			return err
		default:
			return s.skip()
		}
	})
	if err == nil && (!haveHash || !haveBlock || !haveGas) {
		err = fmt.Errorf("%w: receipt without transactionHash, blockHash or gasUsed", errBadResponse)
	}
	return err
}

// receiptList is eth_getBlockReceipts' answer; the logs are decoded only when WithLogs.
type receiptList struct {
	WithLogs bool
	Null     bool // the node does not have the block
	List     []rpcReceipt
	Logs     []types.Log // every receipt's logs in order, when WithLogs
}

func (l *receiptList) UnmarshalJSON(b []byte) error { return unmarshalScan(b, l) }

func (l *receiptList) scan(s *scanner) error {
	l.Null, l.List, l.Logs = false, nil, nil
	if s.null() {
		l.Null = true
		return nil
	}
	l.List = []rpcReceipt{}
	// The block's logs go into one slice, each receipt's a window on it: one allocation
	// (amortised) per block rather than several per receipt.
	var all *[]types.Log
	if l.WithLogs {
		l.Logs = []types.Log{}
		all = &l.Logs
	}
	var ends []int
	n := 0
	err := s.array(func() error {
		l.List = append(l.List, rpcReceipt{})
		if err := s.receipt(&l.List[len(l.List)-1], all); err != nil {
			return fmt.Errorf("receipt %d: %w", n, err)
		}
		if all != nil {
			ends = append(ends, len(*all))
		}
		n++
		return nil
	})
	if err == nil && all != nil {
		start := 0
		for k, end := range ends {
			l.List[k].Logs = l.Logs[start:end:end]
			start = end
		}
	}
	return err
}

// txBatch fetches one group in one JSON-RPC batch from ep.
func (s *Source) txBatch(ctx context.Context, ep *endpoint, g []txUnit, useBlock bool) (map[common.Hash]*Tx, TxStats, error) {
	var (
		elems    []batchElem
		blockRcs = make([]*receiptList, len(g))
		txRcs    = make([][]*rpcReceipt, len(g))
		txs      = make([][]*rpcTx, len(g))
		blocks   = make([]*rpcBlockTxs, len(g))
		st       TxStats
	)
	for i, u := range g {
		useBlock := useBlock && !u.byTx
		if useBlock {
			blockRcs[i] = new(receiptList)
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
			// With calldata, as eth_getTransactionByHash answers carry it: the mappings decode
			// event details from it instead of asking the node again.
			blocks[i] = &rpcBlockTxs{WithInput: true}
			elems = append(elems, batchElem{Method: "eth_getBlockByHash", Params: []any{u.block, true}, Result: blocks[i]})
			continue
		}
		for j, h := range u.hashes {
			elems = append(elems, batchElem{Method: "eth_getTransactionByHash", Params: []any{h}, Result: &txs[i][j]})
		}
	}
	if err := s.sendBatches(ctx, ep, elems); err != nil {
		return nil, TxStats{}, err
	}
	out := make(map[common.Hash]*Tx)
	for i, u := range g {
		useBlock := useBlock && !u.byTx
		if u.byTx {
			st.Blocks++
			st.BlockTxs += max(u.minTxs, len(u.hashes))
			st.Wanted += len(u.hashes)
		}
		var byHash map[common.Hash]*rpcReceipt
		if useBlock {
			if blockRcs[i].Null {
				return nil, TxStats{}, missing("receipts of block %s", u.block)
			}
			rcs := blockRcs[i].List
			byHash = make(map[common.Hash]*rpcReceipt, len(rcs))
			for k := range rcs {
				r := &rcs[k]
				if r.BlockHash != u.block {
					return nil, TxStats{}, missing("receipts of block %s (node answered block %s)", u.block, r.BlockHash)
				}
				byHash[r.TxHash] = r
			}
			st.Blocks++
			st.BlockTxs += len(rcs)
			st.Wanted += len(u.hashes)
		}
		if blk := blocks[i]; blk != nil {
			if blk.Null || blk.Hash != u.block {
				return nil, TxStats{}, missing("block %s", u.block)
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
				return nil, TxStats{}, missing("receipt of transaction %s in block %s", h, u.block)
			}
			tx := txs[i][j]
			if tx == nil || tx.BlockHash == nil || *tx.BlockHash != u.block || tx.Hash != h {
				return nil, TxStats{}, missing("transaction %s in block %s", h, u.block)
			}
			out[h] = makeTx(tx, rc)
		}
		s.observeHead(ep, blockNumberOf(g[i], byHash, txRcs[i]), false)
	}
	return out, st, nil
}

// sendChunks sends elems in batches of at most BatchSize; the elements' own errors are in
// their Err.
func (s *Source) sendChunks(ctx context.Context, ep *endpoint, elems []batchElem) error {
	for _, e := range elems {
		s.m.batchItems.WithLabelValues(ep.name, e.Method).Inc()
	}
	for lo := 0; lo < len(elems); lo += s.cfg.BatchSize {
		if err := ep.rpc.batch(ctx, elems[lo:min(lo+s.cfg.BatchSize, len(elems))]); err != nil {
			return err
		}
	}
	return nil
}

// sendBatches sends elems in batches of at most BatchSize and returns the first error: the
// batch's own, an eth_getBlockReceipts error first (it decides the receipts path), then any
// other element's.
func (s *Source) sendBatches(ctx context.Context, ep *endpoint, elems []batchElem) error {
	if err := s.sendChunks(ctx, ep, elems); err != nil {
		return err
	}
	for _, e := range elems {
		if e.Err != nil && e.Method == "eth_getBlockReceipts" {
			return e.Err
		}
	}
	for _, e := range elems {
		if e.Err != nil {
			return fmt.Errorf("%s: %w", e.Method, e.Err)
		}
	}
	return nil
}

func blockNumberOf(u txUnit, byHash map[common.Hash]*rpcReceipt, rcs []*rpcReceipt) uint64 {
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
	out := &Tx{Hash: tx.Hash, From: tx.From, To: tx.To, GasUsed: rc.GasUsed, Value: new(big.Int), GasPrice: new(big.Int), Input: tx.Input}
	if tx.Value != nil {
		out.Value = tx.Value
	}
	switch {
	case rc.EffectiveGasPrice != nil:
		out.GasPrice = rc.EffectiveGasPrice
	case tx.GasPrice != nil:
		out.GasPrice = tx.GasPrice
	}
	return out
}

// ErrReceiptsUnsupported: the endpoint does not offer eth_getBlockReceipts (or Config.Receipts
// says not to use it), so BlockContents cannot work; fetch logs with eth_getLogs instead.
var ErrReceiptsUnsupported = errors.New("eth_getBlockReceipts unavailable")

// BlockContent is one block as eth_getBlockReceipts and eth_getBlockByNumber(n, true) report it:
// every log and every transaction.
type BlockContent struct {
	Number     uint64
	Hash       common.Hash
	ParentHash common.Hash
	Timestamp  uint64
	Logs       []types.Log         // every log of the block, logIndex order, none removed
	Txs        map[common.Hash]*Tx // every transaction of the block
}

// BlockContents returns blocks from..to with all their logs and transactions, in order: per
// block eth_getBlockReceipts (logs, gas used, sender) and eth_getBlockByNumber with full
// transactions (value), in JSON-RPC batches. Where most transactions of most blocks emit logs
// the caller handles, this replaces eth_getLogs plus the transaction lookups: the receipts
// already carry every log, and the node's log search and second encoding of the logs are saved.
// On a chain where the blocks hold mostly other transactions it costs far more than eth_getLogs.
// It only asks endpoints whose head has reached `to`; the error matches ErrReceiptsUnsupported
// when the endpoint lacks eth_getBlockReceipts.
func (s *Source) BlockContents(ctx context.Context, from, to uint64) ([]BlockContent, error) {
	if to < from {
		return nil, nil
	}
	if s.cfg.Receipts == ReceiptsTx {
		return nil, ErrReceiptsUnsupported
	}
	ids := make([]any, to-from+1)
	for i := range ids {
		ids[i] = hexutil.Uint64(from + uint64(i))
	}
	return s.contents(ctx, ids)
}

// contents reads the blocks that ids name, all by number (hexutil.Uint64) or all by hash
// (common.Hash), in the order given, about 20 blocks per batch like the receipts groups of
// TxsMany.
func (s *Source) contents(ctx context.Context, ids []any) ([]BlockContent, error) {
	const blocksPerBatch = 20
	out := make([]BlockContent, len(ids))
	err := s.parallel(ctx, len(ids), blocksPerBatch, func(ctx context.Context, lo, hi int) error {
		return s.contentGroup(ctx, ids[lo:hi], out[lo:hi])
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// contentGroup fills out with the blocks ids name, halving the group when the node finds the
// answer too large.
func (s *Source) contentGroup(ctx context.Context, ids []any, out []BlockContent) error {
	var atLeast uint64 // blocks asked by number: only endpoints whose head reached the last one
	if n, ok := ids[len(ids)-1].(hexutil.Uint64); ok {
		atLeast = uint64(n)
	}
	err := s.do(ctx, "blocks[batch]", atLeast, 0, func(ctx context.Context, ep *endpoint) error {
		if s.cfg.Receipts == ReceiptsAuto && ep.receiptsSupport() < 0 {
			return ErrReceiptsUnsupported
		}
		err := s.contentBatch(ctx, ep, ids, out)
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
	if kind, _, _ := classify(err); kind == kindTooLarge && len(ids) > 1 {
		mid := len(ids) / 2
		if err := s.contentGroup(ctx, ids[:mid], out[:mid]); err != nil {
			return err
		}
		return s.contentGroup(ctx, ids[mid:], out[mid:])
	}
	return err
}

// contentBatch asks in one batch for the receipts and the block with its transactions of each
// block that ids name, checks that each answer is the block asked for, and joins them.
func (s *Source) contentBatch(ctx context.Context, ep *endpoint, ids []any, out []BlockContent) error {
	blockMethod := "eth_getBlockByNumber"
	if _, byHash := ids[0].(common.Hash); byHash {
		blockMethod = "eth_getBlockByHash"
	}
	rcs := make([]receiptList, len(ids))
	blocks := make([]rpcBlockTxs, len(ids))
	elems := make([]batchElem, 0, 2*len(ids))
	for i, id := range ids {
		rcs[i].WithLogs = true
		blocks[i].WithInput = true // the mappings may need a call's arguments (event details)
		elems = append(elems,
			batchElem{Method: "eth_getBlockReceipts", Params: []any{id}, Result: &rcs[i]},
			batchElem{Method: blockMethod, Params: []any{id, true}, Result: &blocks[i]})
	}
	if err := s.sendBatches(ctx, ep, elems); err != nil {
		return err
	}
	for i, id := range ids {
		blk, list := &blocks[i], &rcs[i]
		switch id := id.(type) {
		case hexutil.Uint64:
			if blk.Null || list.Null {
				return missing("block %d", uint64(id))
			}
			if blk.Number != uint64(id) {
				return fmt.Errorf("%w: asked block %d, got %d", errBadResponse, uint64(id), blk.Number)
			}
		case common.Hash:
			if blk.Null || list.Null {
				return missing("block %s", id)
			}
			if blk.Hash != id {
				return fmt.Errorf("%w: asked block %s, got %s", errBadResponse, id, blk.Hash)
			}
		}
		c, err := blockContent(blk, list)
		if err != nil {
			return err
		}
		out[i] = c
	}
	return nil
}

// blockContent joins a block's transactions and its receipts, which must describe the same
// block (a reorg between the two calls would not).
func blockContent(blk *rpcBlockTxs, list *receiptList) (BlockContent, error) {
	num := blk.Number
	if len(list.List) != len(blk.Transactions) {
		return BlockContent{}, missing("block %d: %d receipts for %d transactions", num, len(list.List), len(blk.Transactions))
	}
	c := BlockContent{Number: num, Hash: blk.Hash, ParentHash: blk.ParentHash, Timestamp: blk.Timestamp, Txs: make(map[common.Hash]*Tx, len(list.List))}
	var prev *types.Log
	for k := range list.List {
		rc, tx := &list.List[k], &blk.Transactions[k]
		if rc.BlockHash != blk.Hash || rc.TxHash != tx.Hash {
			return BlockContent{}, missing("block %d: receipt %d (%s of block %s) does not match transaction %s of block %s", num, k, rc.TxHash, rc.BlockHash, tx.Hash, blk.Hash)
		}
		c.Txs[tx.Hash] = makeTx(tx, rc)
		for j := range rc.Logs {
			l := &rc.Logs[j]
			if l.BlockHash != blk.Hash || l.TxHash != tx.Hash || l.BlockNumber != num || l.Removed {
				return BlockContent{}, fmt.Errorf("%w: block %d: receipt of %s holds a log of transaction %s, block %s", errBadResponse, num, tx.Hash, l.TxHash, l.BlockHash)
			}
			if l.BlockTimestamp == 0 {
				l.BlockTimestamp = blk.Timestamp
			}
			if prev != nil && l.Index <= prev.Index {
				return BlockContent{}, fmt.Errorf("%w: block %d: log index %d after %d", errBadResponse, num, l.Index, prev.Index)
			}
			prev = l
		}
	}
	c.Logs = list.Logs // the receipts' logs are windows on it, in block order
	return c, nil
}
