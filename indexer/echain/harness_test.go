package echain

import (
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/echain/echain-indexer/devchain"
	"github.com/echain/echain-indexer/indexer"
	"github.com/echain/echain-indexer/indexer/echain/echaintest"
	"github.com/echain/echain-indexer/indexer/source"
	"github.com/echain/echain-indexer/internal/testwait"
	"github.com/echain/echain-indexer/schema"
	"github.com/echain/echain-indexer/store"
	"github.com/echain/echain-indexer/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Run(m)) }

// metaTimeout is the mappings' metadata timeout in these tests: the dev gateway's slow answers
// (200ms here) arrive within it, its hanging ones (30s) do not.
const metaTimeout = 2 * time.Second

// harness runs a dev chain and indexes it into a real store the way the follower does, one
// commit per block, with the chain access and log fetching written out here.
type harness struct {
	opts    harnessOpts
	t       *testing.T
	ctx     context.Context
	dc      *devchain.Chain
	chain   Chain // what the mappings call; tests may wrap it
	h       *Handler
	reg     *prometheus.Registry
	cfg     Config
	sch     *schema.Schema
	st      *store.Store
	next    uint64
	sources map[common.Address]store.DataSource
	pending []common.Hash // sent, not yet mined
}

type harnessOpts struct {
	archive   bool
	noGateway bool
	wrap      func(Chain) Chain // fault injection around the mappings' chain access
	pgCache   bool              // keep metadata documents in the store's indexer.metadata_cache
	metaWait  time.Duration     // the mappings' metadata timeout; default metaTimeout
	// hangDelay replaces the dev gateway's hanging answers' delay (default: beyond any timeout).
	// Below metaWait, no fetch times out, so no host back-off makes a first fetch fail for
	// documents the oracle counts as had.
	hangDelay time.Duration
	// noCalldata hands Prepare the blocks' transactions without calldata (as a follower that
	// lacks it would), so that it looks them up.
	noCalldata bool
	editTx     func(*indexer.Tx) // alters the transactions Prepare is handed: calldata that lies
	lateDocs   bool              // do not wait for documents before applying: they arrive as later versions
}

// metadataConfig is the dev gateway's timing, which the oracle must share.
func (o harnessOpts) metadataConfig() devchain.MetadataConfig {
	return devchain.MetadataConfig{SlowDelay: 200 * time.Millisecond, HangDelay: o.hangDelay}
}

func newHarness(t *testing.T, o harnessOpts) *harness {
	t.Helper()
	ctx := testwait.Context(t)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	dc, err := devchain.Start(ctx, devchain.Config{
		Archive:  o.archive,
		Metadata: o.metadataConfig(),
	}, log)
	if err != nil {
		t.Fatalf("start dev chain: %v", err)
	}
	t.Cleanup(func() { dc.Close() })
	x := &harness{t: t, opts: o, ctx: ctx, dc: dc, reg: prometheus.NewRegistry(), sources: map[common.Address]store.DataSource{}}
	x.chain = EthClient(dc.Client())
	if o.wrap != nil {
		x.chain = o.wrap(x.chain)
	}
	a := dc.Addresses
	x.cfg = Config{
		EventFactory:     ContractConfig{a.EventFactory, a.StartBlock},
		Marketplace:      ContractConfig{a.Marketplace, a.StartBlock},
		POAPAttendance:   ContractConfig{a.POAPAttendance, a.StartBlock},
		IncentiveManager: ContractConfig{a.IncentiveManager, a.StartBlock},
		MetadataTimeout:  metaTimeout,
	}
	if o.metaWait > 0 {
		x.cfg.MetadataTimeout = o.metaWait
	}
	if !o.noGateway {
		x.cfg.MetadataGateway = dc.MetadataGateway
	}
	x.sch, err = schema.Load()
	if err != nil {
		t.Fatal(err)
	}
	x.st, err = store.Open(ctx, storetest.NewDB(t), x.sch, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(x.st.Close)
	if err := x.st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if o.pgCache {
		x.cfg.MetadataStore = x.st
	}
	x.h, err = New(x.cfg, x.chain, log, x.reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.h.Close() })
	x.next = a.StartBlock
	return x
}

// created reads the EventCreated of a receipt.
func (x *harness) created(r *types.Receipt) devchain.Created {
	x.t.Helper()
	c, err := x.dc.CreatedEvent(r)
	if err != nil {
		x.t.Fatal(err)
	}
	return c
}

// listingID reads the TicketListed of a receipt.
func (x *harness) listingID(r *types.Receipt) common.Hash {
	x.t.Helper()
	id, err := x.dc.ListingID(r)
	if err != nil {
		x.t.Fatal(err)
	}
	return id
}

// send records a submitted transaction so that the next mine checks it succeeded.
func (x *harness) send(h common.Hash, err error) common.Hash {
	x.t.Helper()
	if err != nil {
		x.t.Fatal(err)
	}
	x.pending = append(x.pending, h)
	return h
}

// mine seals everything sent into one block, failing the test when a transaction reverted, and
// returns the receipts of txs.
func (x *harness) mine(txs ...common.Hash) []*types.Receipt {
	x.t.Helper()
	all := slices.DeleteFunc(x.pending, func(h common.Hash) bool { return slices.Contains(txs, h) })
	all = append(all, txs...)
	x.pending = nil
	rs, err := x.dc.Mine(x.ctx, all...)
	if err != nil {
		x.t.Fatalf("mine: %v", err)
	}
	return rs[len(all)-len(txs):]
}

// index fetches and applies every block from the last indexed one to the head: logs of the
// fixed contracts and of the clones their EventCreated logs announced, the transactions and
// receipts, one Prepare for the whole range and one Apply and commit per block.
func (x *harness) index() {
	x.t.Helper()
	if err := x.indexErr(); err != nil {
		x.t.Fatal(err)
	}
}

func (x *harness) indexErr() error {
	c := x.dc.Client()
	head := x.dc.Head().Number.Uint64()
	if head < x.next {
		return nil
	}
	from, to := new(big.Int).SetUint64(x.next), new(big.Int).SetUint64(head)
	var fixed []common.Address
	var topics []common.Hash
	for _, k := range x.h.Contracts() {
		fixed = append(fixed, k.Address)
		topics = append(topics, k.Topics...)
	}
	logs, err := c.FilterLogs(x.ctx, ethereum.FilterQuery{FromBlock: from, ToBlock: to, Addresses: fixed, Topics: [][]common.Hash{topics}})
	if err != nil {
		return err
	}
	for i := range logs {
		for _, ds := range x.h.Discover(&logs[i]) {
			x.sources[ds.Address] = ds
		}
	}
	if len(x.sources) > 0 {
		var clones []common.Address
		for a := range x.sources {
			clones = append(clones, a)
		}
		more, err := c.FilterLogs(x.ctx, ethereum.FilterQuery{FromBlock: from, ToBlock: to, Addresses: clones,
			Topics: [][]common.Hash{x.h.Templates()[0].Topics}})
		if err != nil {
			return err
		}
		logs = append(logs, more...)
	}
	slices.SortFunc(logs, func(a, b types.Log) int {
		if a.BlockNumber != b.BlockNumber {
			return int(a.BlockNumber) - int(b.BlockNumber)
		}
		return int(a.Index) - int(b.Index)
	})
	byBlock := map[uint64][]types.Log{}
	for _, l := range logs {
		byBlock[l.BlockNumber] = append(byBlock[l.BlockNumber], l)
	}
	var blocks []*indexer.Block
	for n := x.next; n <= head; n++ {
		hd, err := c.HeaderByNumber(x.ctx, new(big.Int).SetUint64(n))
		if err != nil {
			return err
		}
		blk := &indexer.Block{
			Ptr:     store.BlockPtr{Number: int64(n), Hash: hd.Hash(), ParentHash: hd.ParentHash, Timestamp: int64(hd.Time)},
			Logs:    byBlock[n],
			Txs:     map[common.Hash]*indexer.Tx{},
			Sources: map[common.Address]store.DataSource{},
		}
		for _, l := range blk.Logs {
			if ds, ok := x.sources[l.Address]; ok {
				blk.Sources[l.Address] = ds
			}
			if blk.Txs[l.TxHash] == nil {
				tx, err := x.tx(l.TxHash)
				if err != nil {
					return err
				}
				if x.opts.noCalldata {
					tx.Input = nil
				}
				if x.opts.editTx != nil {
					x.opts.editTx(tx)
				}
				blk.Txs[l.TxHash] = tx
			}
		}
		blocks = append(blocks, blk)
	}
	if err := x.h.Prepare(x.ctx, blocks); err != nil {
		return err
	}
	if !x.opts.lateDocs {
		// The oracle tests check what the mappings make of each document, not when it arrives:
		// let the first fetch of every document end, so that Apply finds the ones had in memory.
		if err := x.settleDocs(blocks); err != nil {
			return err
		}
	}
	for _, blk := range blocks {
		b := x.st.NewBatch()
		b.StartBlock(blk.Ptr)
		if err := x.h.Apply(x.ctx, blk, b); err != nil {
			return err
		}
		if err := x.h.WriteLate(x.ctx, blk.Ptr, b); err != nil {
			return err
		}
		for _, l := range blk.Logs {
			for _, ds := range x.h.Discover(&l) {
				b.AddDataSource(ds)
			}
		}
		if err := x.st.Commit(x.ctx, b, store.Commit{Head: blk.Ptr, Window: []store.BlockPtr{blk.Ptr}, Finalized: blk.Ptr.Number - 1}); err != nil {
			return err
		}
	}
	x.next = head + 1
	return nil
}

// settleDocs waits until the first fetch of the document of every EventCreated and EventUpdated
// of the blocks has ended (had, final or failed once).
func (x *harness) settleDocs(blocks []*indexer.Block) error {
	var uris []string
	for _, blk := range blocks {
		if p, ok := blk.Extra.(*prepared); ok {
			for _, d := range p.details {
				uris = append(uris, d.MetadataURI)
			}
		}
		for i := range blk.Logs {
			l := &blk.Logs[i]
			if l.Address == x.h.cfg.EventFactory.Address && len(l.Topics) > 0 && l.Topics[0] == x.h.abi.eventUpdated.ID {
				f := decode(x.h.abi.eventUpdated, l)
				if uri := f.str("metadataURI"); f.err == nil {
					uris = append(uris, uri)
				}
			}
		}
	}
	for _, u := range uris {
		x.h.meta.lookup(u)
	}
	for {
		left := 0
		x.h.meta.mu.Lock()
		for _, u := range uris {
			if _, had := x.h.meta.mem.get(u); !had && !x.h.meta.never[u] && !x.h.meta.settled[u] && x.h.meta.resolvable(u) {
				left++
			}
		}
		x.h.meta.mu.Unlock()
		if left == 0 {
			return nil
		}
		select {
		case <-x.ctx.Done():
			return fmt.Errorf("waiting for the first fetch of %d metadata documents: %w", left, x.ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (x *harness) tx(hash common.Hash) (*indexer.Tx, error) {
	c := x.dc.Client()
	tx, _, err := c.TransactionByHash(x.ctx, hash)
	if err != nil {
		return nil, err
	}
	rc, err := c.TransactionReceipt(x.ctx, hash)
	if err != nil {
		return nil, err
	}
	from, err := types.Sender(types.LatestSignerForChainID(tx.ChainId()), tx)
	if err != nil {
		return nil, err
	}
	return &source.Tx{Hash: hash, From: from, To: tx.To(), Value: tx.Value(), GasUsed: rc.GasUsed, GasPrice: rc.EffectiveGasPrice, Input: tx.Data()}, nil
}

// oracleConfig is the oracle's view of this deployment: metadata predicted from the dev
// gateway's pure function of the CID, available when the mappings' timeout lets it arrive.
func (x *harness) oracleConfig() echaintest.Config {
	a := x.dc.Addresses
	cfg := echaintest.Config{
		EventFactory: a.EventFactory, Marketplace: a.Marketplace, POAPAttendance: a.POAPAttendance,
		IncentiveManager: a.IncentiveManager, FromBlock: a.StartBlock, ToBlock: x.next - 1,
	}
	if x.cfg.MetadataGateway != "" {
		cfg.Metadata = echaintest.DevchainMetadata(x.opts.metadataConfig(), x.cfg.MetadataTimeout)
	}
	return cfg
}

// state reads the store's current entities.
func (x *harness) state() echaintest.State {
	x.t.Helper()
	st, err := echaintest.ReadStore(x.ctx, x.st.Pool(), x.sch, echaintest.Current)
	if err != nil {
		x.t.Fatal(err)
	}
	return st
}

// compare checks the whole store against the oracle, field by field.
func (x *harness) compare() echaintest.State {
	x.t.Helper()
	want, err := echaintest.Expected(x.ctx, x.dc.Client(), x.oracleConfig())
	if err != nil {
		x.t.Fatal(err)
	}
	got := x.state()
	if diff := echaintest.Diff(want, got); len(diff) > 0 {
		if len(diff) > 40 {
			diff = append(diff[:40], "...")
		}
		x.t.Errorf("store differs from the oracle:\n%s", strings.Join(diff, "\n"))
	}
	return got
}

func devchainParams(name string, now uint64) devchain.EventParams {
	return devchain.EventParams{Name: name, MetadataURI: "ipfs://none", TicketPrice: big.NewInt(1), MaxTickets: 3, StartTime: now + 10, EndTime: now + 20}
}
