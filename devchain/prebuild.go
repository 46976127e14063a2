package devchain

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/ethereum/go-ethereum/version"

	"github.com/echain/echain-indexer/abis"
)

// HistoryConfig asks for a pre-built history: Blocks blocks of dense traffic (events and
// purchases of up to 10 tickets) made as fast as the node allows, for benchmarks.
type HistoryConfig struct {
	Blocks      int    // default 2100 (about 4,000 ticket clones and well over 200,000 Echain logs)
	TxsPerBlock int    // default 18
	CacheDir    string // where built histories are kept and reused ("": build every time)
	// Busy, when set, makes a busy history instead (see BusyConfig; TxsPerBlock is unused).
	Busy *BusyConfig
}

func (h *HistoryConfig) withDefaults() {
	if h.Busy != nil {
		b := *h.Busy
		b.withDefaults()
		h.Busy = &b
	}
	if h.Blocks <= 0 {
		h.Blocks = 2100
	}
	if h.TxsPerBlock <= 0 {
		h.TxsPerBlock = 18
	}
}

// Prebuild seals the given number of blocks of dense traffic (no reorgs, no pauses).
func (t *Traffic) Prebuild(ctx context.Context, blocks, txsPerBlock int) error {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	t.bulk = true
	defer func() { t.bulk = false }()
	start := time.Now()
	for i := 0; i < blocks; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := t.syncLocked(); err != nil {
			return err
		}
		if _, err := t.blockLocked(ctx, txsPerBlock, false); err != nil {
			return err
		}
		if (i+1)%500 == 0 {
			t.log.Info("pre-building history", "blocks", i+1, "of", blocks, "events", len(t.m.events),
				"tickets", len(t.m.tickets), "elapsed", time.Since(start).Round(time.Millisecond))
		}
	}
	return nil
}

// StartWithHistory starts a chain that already holds a pre-built history. With a CacheDir, a
// history built before with the same configuration is imported instead of rebuilt (the import
// re-executes the blocks, which is faster than making them); a new one is saved there.
func StartWithHistory(ctx context.Context, cfg Config, h HistoryConfig, log *slog.Logger) (*Chain, error) {
	cfg.withDefaults()
	h.withDefaults()
	var file string
	if h.CacheDir != "" && cfg.Like == "" { // a lookalike's genesis is not the cached history's
		key, err := historyKey(cfg, h)
		if err != nil {
			return nil, err
		}
		file = filepath.Join(h.CacheDir, "devchain-history-"+key+".rlp.gz")
		if _, err := os.Stat(file); err == nil {
			c, err := importCached(ctx, cfg, file, log)
			if err == nil || ctx.Err() != nil {
				return c, err
			}
			log.Warn("cached history unusable; rebuilding", "file", file, "err", err)
		}
	}
	// geth renders its log index at every new head, which during a pre-build costs more CPU than
	// making the blocks (a profile of the busy build: 29% rendering filter maps, 21% building).
	// A history that will be cached is built without the index and imported into a node that
	// has one: the import moves the head 256 blocks at a time, and the index renders in bulk.
	build := cfg
	indexLater := cfg.LogIndex && file != ""
	if indexLater {
		build.LogIndex = false
		if cfg.DataDir != "" {
			dir, err := os.MkdirTemp(cfg.DataDir, "build-")
			if err != nil {
				return nil, fmt.Errorf("devchain: pre-build datadir: %w", err)
			}
			defer os.RemoveAll(dir)
			build.DataDir = dir
		}
	}
	c, err := Start(ctx, build, log)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if h.Busy != nil {
		err = prebuildBusy(ctx, c, cfg, h, log)
	} else {
		err = NewTraffic(c, TrafficConfig{Seed: cfg.Seed}, log).Prebuild(ctx, h.Blocks, h.TxsPerBlock)
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("devchain: pre-build history: %w", err)
	}
	log.Info("pre-built history", "blocks", h.Blocks, "elapsed", time.Since(start).Round(time.Millisecond))
	if file == "" {
		return c, nil
	}
	if err := c.exportHistory(file); err != nil {
		if indexLater {
			c.Close()
			return nil, fmt.Errorf("devchain: cache the pre-built history: %w", err)
		}
		log.Warn("could not cache the pre-built history", "file", file, "err", err)
		return c, nil
	}
	if !indexLater {
		return c, nil
	}
	c.Close()
	return importCached(ctx, cfg, file, log)
}

// importCached starts a node and imports a cached history into it.
func importCached(ctx context.Context, cfg Config, file string, log *slog.Logger) (*Chain, error) {
	c, err := startNode(ctx, cfg, log, nil)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := c.importHistory(ctx, file); err != nil {
		c.Close()
		return nil, err
	}
	log.Info("imported pre-built history", "file", file, "head", c.Head().Number,
		"elapsed", time.Since(start).Round(time.Millisecond))
	return c, nil
}

// historyKey identifies a history: everything that changes its blocks.
func historyKey(cfg Config, h HistoryConfig) (string, error) {
	sum := sha256.New()
	var buf [8]byte
	for _, v := range []uint64{2, uint64(cfg.Seed), uint64(cfg.Users), cfg.BlockGasLimit, uint64(h.Blocks), uint64(h.TxsPerBlock)} {
		binary.BigEndian.PutUint64(buf[:], v)
		sum.Write(buf[:])
	}
	if b := h.Busy; b != nil {
		fmt.Fprintf(sum, "busy %d %d %d %s", b.Unrelated, b.EchainEvery, b.EchainTxs, erc20Runtime+erc721Runtime)
	}
	fmt.Fprintf(sum, "geth %d.%d.%d", version.Major, version.Minor, version.Patch)
	for _, name := range abis.BuildNames() {
		_, code, err := abis.Build(name)
		if err != nil {
			return "", fmt.Errorf("devchain: %w", err)
		}
		sum.Write(code)
	}
	return fmt.Sprintf("%x", sum.Sum(nil)[:10]), nil
}

func (c *Chain) exportHistory(file string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".devchain-history-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	bw := bufio.NewWriterSize(tmp, 1<<20)
	zw := gzip.NewWriter(bw)
	head := c.eth.BlockChain().CurrentBlock().Number.Uint64()
	err = c.eth.BlockChain().ExportN(zw, 1, head)
	err = errors.Join(err, zw.Close(), bw.Flush(), tmp.Close())
	if err != nil {
		return fmt.Errorf("devchain: export history: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file) // atomic: a reader never sees half a file
}

// importHistory inserts a saved history into a chain that holds only its genesis.
func (c *Chain) importHistory(ctx context.Context, file string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return err
	}
	stream := rlp.NewStream(zr, 0)
	bc := c.eth.BlockChain()
	batch := make(types.Blocks, 0, 256)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if n, err := bc.InsertChain(batch); err != nil {
			return fmt.Errorf("insert block %d: %w", batch[n].NumberU64(), err)
		}
		batch = batch[:0]
		return ctx.Err()
	}
	for {
		blk := new(types.Block)
		if err := stream.Decode(blk); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return fmt.Errorf("decode block: %w", err)
		}
		if batch = append(batch, blk); len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if bc.CurrentBlock().Number.Uint64() == 0 {
		return errors.New("empty history")
	}
	if code, err := c.client.CodeAt(ctx, c.Addresses.EventFactory, nil); err != nil || len(code) == 0 {
		return fmt.Errorf("history has no EventFactory at %s (%v)", c.Addresses.EventFactory, err)
	}
	// The beacon remembers the time of the last block it sealed, not of imported ones: seal one
	// empty block on top so the next Commit continues the imported timeline.
	if err := c.beacon.AdjustTime(time.Second); err != nil {
		return fmt.Errorf("seal after import: %w", err)
	}
	c.holdFinalityLocked()
	// Receipts by hash need the transaction index, which geth builds in the background.
	for {
		p, err := bc.TxIndexProgress()
		if err != nil || p.Done() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ExportForGeth writes what a geth process needs to serve this chain: genesis.json (for
// `geth init`) and blocks.rlp.gz (every block after genesis, for `geth import`), in dir. The
// genesis states its difficulty (0, what the node derived) because geth --dev requires it.
func (c *Chain) ExportForGeth(dir string) (genesis, blocks string, err error) {
	g := *c.genesis
	g.Difficulty = new(big.Int)
	js, err := json.Marshal(&g)
	if err != nil {
		return "", "", fmt.Errorf("devchain: genesis: %w", err)
	}
	genesis = filepath.Join(dir, "genesis.json")
	if err := os.WriteFile(genesis, js, 0o644); err != nil {
		return "", "", fmt.Errorf("devchain: genesis: %w", err)
	}
	blocks = filepath.Join(dir, "blocks.rlp.gz")
	if err := c.exportHistory(blocks); err != nil {
		return "", "", err
	}
	return genesis, blocks, nil
}

// BenchCacheDir is where benchmarks keep the histories they build: $ECHAIN_BENCH_CACHE, else
// echain-indexer-bench in the temporary directory. It is created if missing.
func BenchCacheDir() (string, error) {
	dir := os.Getenv("ECHAIN_BENCH_CACHE")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "echain-indexer-bench")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("bench cache: %w", err)
	}
	return dir, nil
}
