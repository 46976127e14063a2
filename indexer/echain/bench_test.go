package echain

import (
	"context"
	"log/slog"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/echain/echain-indexer/indexer"
	"github.com/echain/echain-indexer/schema"
	"github.com/echain/echain-indexer/store"
	"github.com/echain/echain-indexer/store/storetest"
)

// BenchmarkApply measures the mappings' own cost on a backfill-like mix: blocks of ticket
// purchases (a Transfer and a TicketMinted per ticket, one transaction per 3 tickets) and
// resale-free transfers, applied into a real store batch (Commit excluded: that is the store's
// benchmark). Reports logs/s.
//
//	go test -run '^$' -bench BenchmarkApply -benchtime 5x ./indexer/echain/
func BenchmarkApply(b *testing.B) {
	ctx := context.Background()
	sch, err := schema.Load()
	if err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(ctx, storetest.NewDB(b), sch, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	cfg := Config{
		EventFactory:     ContractConfig{Address: common.HexToAddress("0xfac")},
		Marketplace:      ContractConfig{Address: common.HexToAddress("0x3a7")},
		POAPAttendance:   ContractConfig{Address: common.HexToAddress("0x90a9")},
		IncentiveManager: ContractConfig{Address: common.HexToAddress("0x1ce")},
	}
	h, err := New(cfg, noChain{}, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	const blocks, ticketsPerBlock = 100, 300
	blks, logs := purchaseBlocks(b, h, blocks, ticketsPerBlock)
	b.ResetTimer()
	for range b.N {
		batch := st.NewBatch()
		for _, blk := range blks {
			batch.StartBlock(blk.Ptr)
			if err := h.Apply(ctx, blk, batch); err != nil {
				b.Fatal(err)
			}
		}
		if batch.Err() != nil {
			b.Fatal(batch.Err())
		}
	}
	b.ReportMetric(float64(logs*b.N)/b.Elapsed().Seconds(), "logs/s")
}

// noChain answers nothing: the benchmark's blocks come prepared.
type noChain struct{ Chain }

func purchaseBlocks(b *testing.B, h *Handler, n, perBlock int) ([]*indexer.Block, int) {
	a := h.abi
	clone := common.HexToAddress("0xc10e")
	organizer := common.HexToAddress("0x0a9")
	word := func(x *big.Int) common.Hash { return common.BigToHash(x) }
	addr := func(x common.Address) common.Hash { return common.BytesToHash(x.Bytes()) }
	created, err := a.eventCreated.Inputs.NonIndexed().Pack("Bench", big.NewInt(1e15), big.NewInt(1e9))
	if err != nil {
		b.Fatal(err)
	}
	prep := &prepared{details: map[string]*eventDetails{"1": {StartTime: big.NewInt(1), EndTime: big.NewInt(2), MetadataURI: "ipfs://x"}}}
	src := map[common.Address]store.DataSource{clone: {Template: TicketTemplate, Address: clone, Block: 1, Key: "1"}}
	var out []*indexer.Block
	total := 0
	token := int64(0)
	for i := range n {
		num := uint64(i + 1)
		blk := &indexer.Block{
			Ptr:     store.BlockPtr{Number: int64(num), Hash: common.BigToHash(big.NewInt(int64(num))), Timestamp: 1_700_000_000 + int64(num)},
			Txs:     map[common.Hash]*indexer.Tx{},
			Sources: src,
			Extra:   prep,
		}
		tx := func(k int) common.Hash {
			h := common.BigToHash(big.NewInt(int64(num)<<32 | int64(k)))
			if blk.Txs[h] == nil {
				blk.Txs[h] = &indexer.Tx{Hash: h, From: organizer, To: &clone, Value: new(big.Int), GasUsed: 21000, GasPrice: big.NewInt(1)}
			}
			return h
		}
		add := func(l types.Log) {
			l.BlockNumber, l.Index = num, uint(len(blk.Logs))
			blk.Logs = append(blk.Logs, l)
		}
		if i == 0 {
			add(types.Log{Address: h.cfg.EventFactory.Address, TxHash: tx(0),
				Topics: []common.Hash{a.eventCreated.ID, word(big.NewInt(1)), addr(organizer), addr(clone)}, Data: created})
		}
		minted, _ := a.ticketMinted.Inputs.NonIndexed().Pack(big.NewInt(0), big.NewInt(0))
		for k := range perBlock {
			token++
			buyer := common.BigToAddress(big.NewInt(1000 + token))
			th := tx(1 + k/3)
			add(types.Log{Address: clone, TxHash: th, Topics: []common.Hash{a.transfer.ID, {}, addr(buyer), word(big.NewInt(token))}})
			add(types.Log{Address: clone, TxHash: th, Topics: []common.Hash{a.ticketMinted.ID, word(big.NewInt(token)), addr(buyer), word(big.NewInt(1))}, Data: minted})
		}
		total += len(blk.Logs)
		out = append(out, blk)
	}
	return out, total
}
