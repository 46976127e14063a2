package source

import (
	"context"
	"errors"
	"math/big"
	"reflect"
	"testing"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/echain/echain-indexer/indexer/source/rpcproxy"
)

// TestBlockContentsEqualLogsAndTxs checks that a block's contents from its receipts equal what
// eth_getLogs and the transaction lookups say (every log, every transaction, the value transfer
// without logs included), and how BlockContents fails.
func TestBlockContentsEqualLogsAndTxs(t *testing.T) {
	c := startChain(t)
	tr := makeTraffic(t, c, 4, 3)
	ctx := context.Background()
	signer := types.LatestSignerForChainID(big.NewInt(1337))
	from, to := tr.Blocks[0].Number, tr.Blocks[len(tr.Blocks)-1].Number

	p, err := rpcproxy.New(c.HTTPURL)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	s := newSource(t, Config{Endpoints: []Endpoint{{HTTPURL: p.URL()}}}, nil)
	if _, err := s.BlockNumber(ctx); err != nil { // learn the head: range calls need it
		t.Fatal(err)
	}
	got, err := s.BlockContents(ctx, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != int(to-from+1) {
		t.Fatalf("got %d blocks for %d..%d", len(got), from, to)
	}
	txsSeen := 0
	for i, b := range got {
		hdr, err := c.Client().HeaderByNumber(ctx, new(big.Int).SetUint64(from+uint64(i)))
		if err != nil {
			t.Fatal(err)
		}
		if b.Number != hdr.Number.Uint64() || b.Hash != hdr.Hash() || b.ParentHash != hdr.ParentHash || b.Timestamp != hdr.Time {
			t.Fatalf("block %d: got %d %s (parent %s) %d, header %d %s (parent %s) %d", i, b.Number, b.Hash, b.ParentHash, b.Timestamp,
				hdr.Number, hdr.Hash(), hdr.ParentHash, hdr.Time)
		}
		h := b.Hash
		want, err := s.Logs(ctx, ethereum.FilterQuery{BlockHash: &h})
		if err != nil {
			t.Fatal(err)
		}
		if len(want) == 0 || !reflect.DeepEqual(b.Logs, want) {
			t.Fatalf("block %d: logs from receipts differ from eth_getLogs (%d vs %d)", b.Number, len(b.Logs), len(want))
		}
		blk, err := c.Client().BlockByHash(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		var hashes []common.Hash
		for _, tx := range blk.Transactions() {
			hashes = append(hashes, tx.Hash())
		}
		truth := txsTruth(t, c.Client(), signer, hashes)
		if len(b.Txs) != len(truth) || len(truth) < 2 {
			t.Fatalf("block %d: %d transactions, want %d (purchases and a transfer)", b.Number, len(b.Txs), len(truth))
		}
		for th, w := range truth {
			g := b.Txs[th]
			if g == nil || g.Hash != th || g.From != w.From || *g.To != *w.To || g.Value.Cmp(w.Value) != 0 || g.GasUsed != w.GasUsed || g.GasPrice.Cmp(w.GasPrice) != 0 {
				t.Fatalf("tx %s: got %+v, want %+v", th, g, w)
			}
		}
		txsSeen += len(truth)
	}
	if p.Calls("eth_getBlockReceipts") != len(got) || p.Calls("eth_getBlockByNumber") < len(got) {
		t.Fatalf("calls: %d receipts, %d blocks for %d blocks", p.Calls("eth_getBlockReceipts"), p.Calls("eth_getBlockByNumber"), len(got))
	}

	// TxsManyStats says how much of its blocks a request was.
	var reqs []TxRequest
	wanted := 0
	for _, b := range tr.Blocks {
		reqs = append(reqs, TxRequest{Block: b.Hash, Hashes: b.Txs})
		wanted += len(b.Txs)
	}
	_, st, err := s.TxsManyStats(ctx, reqs)
	if err != nil {
		t.Fatal(err)
	}
	if st.Blocks != len(tr.Blocks) || st.Wanted != wanted || st.BlockTxs != txsSeen {
		t.Fatalf("stats %+v, want %d blocks holding %d transactions, %d wanted", st, len(tr.Blocks), txsSeen, wanted)
	}

	t.Run("split when the answer is too large", func(t *testing.T) {
		undo := p.Add(rpcproxy.Rule{Method: "eth_getBlockReceipts", Times: 2, Error: rpcproxy.ResponseTooLarge()})
		defer undo()
		again, err := s.BlockContents(ctx, from, to)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(again, got) || p.Faults("eth_getBlockReceipts") != 2 {
			t.Fatalf("after splits: equal %v, faults %d", reflect.DeepEqual(again, got), p.Faults("eth_getBlockReceipts"))
		}
	})
	t.Run("by hash", func(t *testing.T) {
		// In the order asked, not the chain's.
		var hashes []common.Hash
		var want []BlockContent
		for i := len(got) - 1; i >= 0; i-- {
			hashes = append(hashes, got[i].Hash)
			want = append(want, got[i])
		}
		byHash, err := s.BlockContentsByHash(ctx, hashes)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(byHash, want) {
			t.Fatal("contents by hash differ from contents by number")
		}
		if _, err := s.BlockContentsByHash(ctx, []common.Hash{hashes[0], {1}}); !errors.Is(err, ethereum.NotFound) {
			t.Fatalf("a block the node does not have: got %v, want NotFound", err)
		}
	})
	t.Run("beyond the head", func(t *testing.T) {
		head := c.Head().Number.Uint64()
		if _, err := s.BlockContents(ctx, head, head+2); !errors.Is(err, ErrBeyondHead) {
			t.Fatalf("got %v, want ErrBeyondHead", err)
		}
	})
	t.Run("without eth_getBlockReceipts", func(t *testing.T) {
		q, err := rpcproxy.New(c.HTTPURL)
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		q.Add(rpcproxy.Rule{Method: "eth_getBlockReceipts", Error: rpcproxy.MethodNotFound("eth_getBlockReceipts")})
		s := newSource(t, Config{Endpoints: []Endpoint{{HTTPURL: q.URL()}}}, nil)
		if _, err := s.BlockNumber(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := s.BlockContents(ctx, from, to); !errors.Is(err, ErrReceiptsUnsupported) {
			t.Fatalf("got %v, want ErrReceiptsUnsupported", err)
		}
		if _, err := s.BlockContentsByHash(ctx, []common.Hash{got[0].Hash}); !errors.Is(err, ErrReceiptsUnsupported) {
			t.Fatalf("by hash: got %v, want ErrReceiptsUnsupported", err)
		}
		if st := s.Endpoints()[0]; st.BlockReceipts != "unsupported" {
			t.Fatalf("support %q", st.BlockReceipts)
		}
		tx := newSource(t, Config{Endpoints: []Endpoint{{HTTPURL: c.HTTPURL}}, Receipts: ReceiptsTx}, nil)
		if _, err := tx.BlockContents(ctx, from, to); !errors.Is(err, ErrReceiptsUnsupported) {
			t.Fatalf("tx mode: got %v, want ErrReceiptsUnsupported", err)
		}
		if _, err := tx.BlockContentsByHash(ctx, []common.Hash{got[0].Hash}); !errors.Is(err, ErrReceiptsUnsupported) {
			t.Fatalf("tx mode by hash: got %v, want ErrReceiptsUnsupported", err)
		}
	})
}
