package source

import (
	"bytes"
	"context"
	"errors"
	"math/big"
	"reflect"
	"testing"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/echain/echain-indexer/indexer/source/rpcproxy"
)

func TestMethodsAgainstNode(t *testing.T) {
	c := startChain(t)
	tr := makeTraffic(t, c, 4, 3)
	s := newSource(t, Config{Endpoints: []Endpoint{{Name: "node", HTTPURL: c.HTTPURL}}}, nil)
	ctx := context.Background()
	ec := c.Client()

	head, err := ec.HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.BlockNumber(ctx)
	if err != nil || n != head.Number.Uint64() {
		t.Fatalf("BlockNumber = %d, %v; want %d", n, err, head.Number)
	}
	latest, err := s.HeaderByNumber(ctx, nil)
	if err != nil || latest.Hash() != head.Hash() {
		t.Fatalf("latest header %v, %v", latest, err)
	}
	blk := tr.Blocks[1]
	byNum, err := s.HeaderByNumber(ctx, new(big.Int).SetUint64(blk.Number))
	if err != nil || byNum.Hash() != blk.Hash {
		t.Fatalf("HeaderByNumber(%d) = %v, %v", blk.Number, byNum, err)
	}
	byHash, err := s.HeaderByHash(ctx, blk.Hash)
	if err != nil || byHash.Number.Uint64() != blk.Number {
		t.Fatalf("HeaderByHash = %v, %v", byHash, err)
	}
	if _, err := s.HeaderByNumber(ctx, new(big.Int).SetUint64(head.Number.Uint64()+50)); !errors.Is(err, ErrBeyondHead) {
		t.Fatalf("header beyond head: %v, want ErrBeyondHead", err)
	}
	if _, err := s.HeaderByHash(ctx, common.HexToHash("0x1234")); !errors.Is(err, ethereum.NotFound) {
		t.Fatalf("unknown hash: %v, want ethereum.NotFound", err)
	}
	nums := []uint64{tr.Blocks[3].Number, 0, tr.Blocks[0].Number}
	hs, err := s.HeadersByNumber(ctx, nums)
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range hs {
		want, _ := ec.HeaderByNumber(ctx, new(big.Int).SetUint64(nums[i]))
		if h.Hash() != want.Hash() {
			t.Fatalf("HeadersByNumber[%d] = block %s, want %s", i, h.Hash(), want.Hash())
		}
	}
	fin, err := s.Finalized(ctx)
	if err != nil || fin.Number.Uint64() > head.Number.Uint64() {
		t.Fatalf("Finalized = %v, %v", fin, err)
	}

	// Logs over a range and by block hash equal what the node's own client returns.
	q := ethereum.FilterQuery{Addresses: []common.Address{tr.Ticket}, FromBlock: big.NewInt(0), ToBlock: head.Number}
	want, err := ec.FilterLogs(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Logs(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) == 0 || !reflect.DeepEqual(got, want) {
		t.Fatalf("range logs: got %d, want %d equal logs", len(got), len(want))
	}
	// LogsAndHeader: the same logs, and the header of ToBlock from the same batch.
	q.ToBlock = new(big.Int).SetUint64(blk.Number)
	wantTo, _ := ec.FilterLogs(ctx, q)
	gotTo, lastH, err := s.LogsAndHeader(ctx, q)
	if err != nil || !reflect.DeepEqual(gotTo, wantTo) || lastH == nil || lastH.Hash() != blk.Hash {
		t.Fatalf("LogsAndHeader to %d: %d logs (want %d), header %v, %v; want block %s", blk.Number, len(gotTo), len(wantTo), lastH, err, blk.Hash)
	}
	if _, _, err := s.LogsAndHeader(ctx, ethereum.FilterQuery{BlockHash: &blk.Hash}); err == nil {
		t.Fatal("LogsAndHeader by block hash: want an error, it has no range")
	}
	bh := blk.Hash
	gotB, err := s.Logs(ctx, ethereum.FilterQuery{BlockHash: &bh})
	if err != nil {
		t.Fatal(err)
	}
	wantB, _ := ec.FilterLogs(ctx, ethereum.FilterQuery{BlockHash: &bh})
	if len(wantB) == 0 || !reflect.DeepEqual(gotB, wantB) {
		t.Fatalf("block logs: got %d, want %d", len(gotB), len(wantB))
	}
	unknown := common.HexToHash("0xdead")
	if _, err := s.Logs(ctx, ethereum.FilterQuery{BlockHash: &unknown}); !errors.Is(err, ethereum.NotFound) {
		t.Fatalf("logs of an unknown block: %v, want ethereum.NotFound", err)
	}
	if _, err := s.Logs(ctx, ethereum.FilterQuery{FromBlock: big.NewInt(0), ToBlock: big.NewInt(int64(head.Number.Uint64() + 10))}); !errors.Is(err, ErrBeyondHead) {
		t.Fatalf("range beyond head: %v, want ErrBeyondHead", err)
	}

	// eth_call: ticketPrice() at a number and at a hash.
	msg := ethereum.CallMsg{To: &tr.Ticket, Data: crypto.Keccak256([]byte("ticketPrice()"))[:4]}
	out, err := s.CallContract(ctx, msg, head.Number)
	if err != nil || new(big.Int).SetBytes(out).Int64() != 1000 {
		t.Fatalf("CallContract = %x, %v", out, err)
	}
	out, err = s.CallContractAtHash(ctx, msg, blk.Hash)
	if err != nil || new(big.Int).SetBytes(out).Int64() != 1000 {
		t.Fatalf("CallContractAtHash = %x, %v", out, err)
	}
	bad := ethereum.CallMsg{To: &tr.Ticket, Data: []byte{1, 2, 3, 4}}
	if _, err := s.CallContract(ctx, bad, nil); err == nil || errors.Is(err, ErrRetriesExhausted) {
		t.Fatalf("a revert must come back at once, got %v", err)
	}

	info, err := s.TransactionByHash(ctx, blk.Txs[0])
	if err != nil {
		t.Fatal(err)
	}
	wantTx, _, _ := ec.TransactionByHash(ctx, blk.Txs[0])
	wantFrom, _ := types.Sender(types.LatestSignerForChainID(big.NewInt(1337)), wantTx)
	if info.BlockHash == nil || *info.BlockHash != blk.Hash || *info.BlockNumber != blk.Number ||
		info.Value.Cmp(wantTx.Value()) != 0 || *info.To != *wantTx.To() || info.From != wantFrom {
		t.Fatalf("TransactionByHash = %+v", info)
	}
	if _, err := s.TransactionByHash(ctx, common.HexToHash("0xbeef")); !errors.Is(err, ethereum.NotFound) {
		t.Fatalf("unknown tx: %v", err)
	}
	st := s.Endpoints()
	if len(st) != 1 || st[0].Head < head.Number.Uint64() || st[0].Requests == 0 || st[0].URL != "http://"+hostPort(t, c.HTTPURL) {
		t.Fatalf("status %+v", st)
	}
}

// txsTruth is what per-transaction calls of the node's own client say.
func txsTruth(t *testing.T, c interface {
	TransactionReceipt(context.Context, common.Hash) (*types.Receipt, error)
	TransactionByHash(context.Context, common.Hash) (*types.Transaction, bool, error)
}, signer types.Signer, hashes []common.Hash) map[common.Hash]*Tx {
	t.Helper()
	out := map[common.Hash]*Tx{}
	for _, h := range hashes {
		r, err := c.TransactionReceipt(context.Background(), h)
		if err != nil {
			t.Fatal(err)
		}
		tx, _, err := c.TransactionByHash(context.Background(), h)
		if err != nil {
			t.Fatal(err)
		}
		from, err := types.Sender(signer, tx)
		if err != nil {
			t.Fatal(err)
		}
		out[h] = &Tx{Hash: h, From: from, To: tx.To(), Value: tx.Value(), GasUsed: r.GasUsed, GasPrice: r.EffectiveGasPrice, Input: tx.Data()}
	}
	return out
}

func TestTxsBatchEqualsPerTx(t *testing.T) {
	c := startChain(t)
	tr := makeTraffic(t, c, 5, fullBlockMinTxs+1)
	ctx := context.Background()
	signer := types.LatestSignerForChainID(big.NewInt(1337))
	var reqs []TxRequest
	var all []common.Hash
	for _, b := range tr.Blocks {
		reqs = append(reqs, TxRequest{Block: b.Hash, Hashes: b.Txs})
		all = append(all, b.Txs...)
	}
	truth := txsTruth(t, c.Client(), signer, all)

	check := func(t *testing.T, got map[common.Hash]*Tx) {
		t.Helper()
		if len(got) != len(truth) {
			t.Fatalf("got %d txs, want %d", len(got), len(truth))
		}
		for h, w := range truth {
			g := got[h]
			if g == nil || g.From != w.From || *g.To != *w.To || g.Value.Cmp(w.Value) != 0 || g.GasUsed != w.GasUsed || g.GasPrice.Cmp(w.GasPrice) != 0 ||
				!bytes.Equal(g.Input, w.Input) {
				t.Fatalf("tx %s: got %+v, want %+v", h, g, w)
			}
		}
	}

	t.Run("block receipts", func(t *testing.T) {
		p, err := rpcproxy.New(c.HTTPURL)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		s := newSource(t, Config{Endpoints: []Endpoint{{HTTPURL: p.URL()}}, BatchSize: 10}, nil)
		got, err := s.TxsMany(ctx, reqs)
		if err != nil {
			t.Fatal(err)
		}
		check(t, got)
		if p.Calls("eth_getBlockReceipts") == 0 || p.Calls("eth_getTransactionReceipt") != 0 {
			t.Fatalf("receipts path not used: %d block, %d tx", p.Calls("eth_getBlockReceipts"), p.Calls("eth_getTransactionReceipt"))
		}
		if st := s.Endpoints()[0]; st.BlockReceipts != "supported" {
			t.Fatalf("support %q", st.BlockReceipts)
		}
		if p.Calls("eth_getBlockByHash") == 0 || p.Calls("eth_getTransactionByHash") != 0 {
			t.Fatalf("full blocks not used for blocks with many wanted txs: %d by block, %d by hash",
				p.Calls("eth_getBlockByHash"), p.Calls("eth_getTransactionByHash"))
		}
		// A few transactions of a block are looked up one by one.
		one, err := s.Txs(ctx, tr.Blocks[2].Hash, tr.Blocks[2].Txs[:2])
		if err != nil || len(one) != 2 || p.Calls("eth_getTransactionByHash") != 2 {
			t.Fatalf("Txs of one block: %d, %v, %d lookups", len(one), err, p.Calls("eth_getTransactionByHash"))
		}
		for h, tx := range one {
			if w := truth[h]; tx.From != w.From || tx.Value.Cmp(w.Value) != 0 || tx.GasUsed != w.GasUsed {
				t.Fatalf("tx %s: %+v, want %+v", h, tx, w)
			}
		}
	})
	t.Run("fallback when eth_getBlockReceipts is missing", func(t *testing.T) {
		p, err := rpcproxy.New(c.HTTPURL)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		p.Add(rpcproxy.Rule{Method: "eth_getBlockReceipts", Error: rpcproxy.MethodNotFound("eth_getBlockReceipts")})
		s := newSource(t, Config{Endpoints: []Endpoint{{HTTPURL: p.URL()}}, BatchSize: 10}, nil)
		got, err := s.TxsMany(ctx, reqs)
		if err != nil {
			t.Fatal(err)
		}
		check(t, got)
		if p.Calls("eth_getTransactionReceipt") != len(all) {
			t.Fatalf("fallback fetched %d receipts, want %d", p.Calls("eth_getTransactionReceipt"), len(all))
		}
		if st := s.Endpoints()[0]; st.BlockReceipts != "unsupported" {
			t.Fatalf("support %q", st.BlockReceipts)
		}
	})
	t.Run("a small share of a block by transaction, one batch", func(t *testing.T) {
		p, err := rpcproxy.New(c.HTTPURL)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		// Each block said to hold at least twice the wanted transactions (a busy chain's):
		// their receipts one by one, never the blocks', even though the endpoint has them; all
		// in as few batches as BatchSize allows.
		s := newSource(t, Config{Endpoints: []Endpoint{{HTTPURL: p.URL()}}}, nil)
		busy := make([]TxRequest, len(reqs))
		elems := 0
		for i, r := range reqs {
			busy[i] = TxRequest{Block: r.Block, Hashes: r.Hashes, MinBlockTxs: 2 * len(r.Hashes)}
			elems += 2 * len(r.Hashes)
		}
		p.SetProvider(rpcproxy.Provider{}) // counts requests
		got, st, err := s.TxsManyStats(ctx, busy)
		if err != nil {
			t.Fatal(err)
		}
		requests := p.Usage().Requests
		check(t, got)
		if p.Calls("eth_getBlockReceipts") != 0 || p.Calls("eth_getTransactionReceipt") != len(all) {
			t.Fatalf("block receipts %d, receipts %d: want 0 and %d", p.Calls("eth_getBlockReceipts"), p.Calls("eth_getTransactionReceipt"), len(all))
		}
		// One more for a health poll of the source that may fall in between.
		if want := (elems + 99) / 100; requests > int64(want)+1 {
			t.Fatalf("%d requests for %d calls: want %d batches of 100", requests, elems, want)
		}
		if st.Blocks != len(busy) || st.Wanted != len(all) || st.BlockTxs != 2*len(all) {
			t.Fatalf("stats %+v: want %d blocks of at least %d transactions, %d wanted", st, len(busy), 2*len(all), len(all))
		}
	})
	t.Run("tx mode, with indexing-in-progress answers", func(t *testing.T) {
		p, err := rpcproxy.New(c.HTTPURL)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		p.Add(rpcproxy.Rule{Method: "eth_getTransactionReceipt", Times: 2, Error: rpcproxy.TxIndexing()})
		s := newSource(t, Config{Endpoints: []Endpoint{{HTTPURL: p.URL()}}, Receipts: ReceiptsTx}, nil)
		got, err := s.TxsMany(ctx, reqs)
		if err != nil {
			t.Fatal(err)
		}
		check(t, got)
		if p.Calls("eth_getBlockReceipts") != 0 || p.Faults("eth_getTransactionReceipt") != 2 {
			t.Fatalf("block receipts %d, faults %d", p.Calls("eth_getBlockReceipts"), p.Faults("eth_getTransactionReceipt"))
		}
	})
	t.Run("batches split when the answer is too large", func(t *testing.T) {
		p, err := rpcproxy.New(c.HTTPURL)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		// Refuse any batch holding more than one block's receipts, as geth does past 25 MB.
		p.Add(rpcproxy.Rule{Method: "eth_getBlockReceipts", Times: 3, Error: rpcproxy.ResponseTooLarge()})
		s := newSource(t, Config{Endpoints: []Endpoint{{HTTPURL: p.URL()}}}, nil)
		got, err := s.TxsMany(ctx, reqs)
		if err != nil {
			t.Fatal(err)
		}
		check(t, got)
		if p.Faults("eth_getBlockReceipts") != 3 {
			t.Fatalf("faults %d", p.Faults("eth_getBlockReceipts"))
		}
	})
	t.Run("a transaction claimed in the wrong block is not found", func(t *testing.T) {
		s := newSource(t, Config{Endpoints: []Endpoint{{HTTPURL: c.HTTPURL}}}, nil)
		_, err := s.Txs(ctx, tr.Blocks[0].Hash, tr.Blocks[1].Txs[:1])
		if !errors.Is(err, ethereum.NotFound) {
			t.Fatalf("got %v, want ethereum.NotFound", err)
		}
	})
}
