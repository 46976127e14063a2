package devchain

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
)

// A lookalike is the dev chain dressed as a public network, so that the indexer runs against it
// with that network's profile unchanged: its chain id, the Echain contracts at the addresses the
// profile names, and a finalized tag that lags like the network's.
type lookalike struct {
	chainID uint64
	// The deployed contracts' addresses, as in config.yaml's profile of the same name.
	eventFactory, marketplace, poapAttendance, incentiveManager common.Address
	// finalizedLag: an OP-stack chain's blocks become final when the L1 batch carrying them is
	// finalized, some 15 to 20 minutes after they were made. Minutes (not blocks) is what matters
	// to an indexer (a long unfinalized window); a shorter lag keeps tests quick.
	finalizedLag time.Duration
}

var lookalikes = map[string]lookalike{
	"base-sepolia": {
		chainID:          84532,
		eventFactory:     common.HexToAddress("0xA97cB40548905B05A67fCD4765438aFBEA4030fc"),
		marketplace:      common.HexToAddress("0xD061393A54784da5Fea48CC845163aBc2B11537A"),
		poapAttendance:   common.HexToAddress("0x08344CfBfB3afB2e114A0dbABbaF40e7eB62FD33"),
		incentiveManager: common.HexToAddress("0x1cfDae689817B954b72512bC82f23F35B997617D"),
		finalizedLag:     2 * time.Minute,
	},
}

// Lookalikes lists the names Config.Like accepts.
func Lookalikes() []string {
	names := make([]string, 0, len(lookalikes))
	for n := range lookalikes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// startLike starts a lookalike chain. The contracts are deployed as usual on a scratch chain of
// the same chain id; their code, storage and nonces are then placed at the network's addresses in
// the lookalike's genesis (every occurrence of a scratch address in code and storage rewritten
// to the real one, so immutables and stored references point at the real contracts). The
// EventTicket template keeps its scratch address: the factory clones it as usual.
func startLike(ctx context.Context, cfg Config, log *slog.Logger) (*Chain, error) {
	like, ok := lookalikes[cfg.Like]
	if !ok {
		return nil, fmt.Errorf("devchain: like %q: not one of %s", cfg.Like, strings.Join(Lookalikes(), ", "))
	}
	cfg.ChainID = like.chainID
	if cfg.FinalizedLag == 0 {
		cfg.FinalizedLag = like.finalizedLag
	}

	scfg := cfg
	scfg.Like, scfg.preimages = "", true
	scfg.HTTPPort, scfg.WSPort, scfg.MetadataAddr, scfg.DataDir = 0, 0, "off", ""
	scratch, err := startNode(ctx, scfg, log.With("chain", "scratch"), nil)
	if err != nil {
		return nil, fmt.Errorf("devchain: scratch chain: %w", err)
	}
	if err := scratch.deploy(ctx); err != nil {
		scratch.Close()
		return nil, fmt.Errorf("devchain: scratch chain: %w", err)
	}
	sa := scratch.Addresses
	moves := map[common.Address]common.Address{
		sa.EventFactory:     like.eventFactory,
		sa.Marketplace:      like.marketplace,
		sa.POAPAttendance:   like.poapAttendance,
		sa.IncentiveManager: like.incentiveManager,
	}
	alloc, err := scratch.contractState(append(slices.Collect(mapsKeys(moves)), sa.EventTicketTemplate), moves)
	deployerNonce := scratch.eth.TxPool().Nonce(sa.Deployer)
	scratch.Close()
	if err != nil {
		return nil, err
	}
	// The deployer's nonce carries on from the scratch deployment: a later deployment must not
	// land on the template's address.
	alloc[sa.Deployer] = types.Account{Nonce: deployerNonce}

	c, err := startNode(ctx, cfg, log, alloc)
	if err != nil {
		return nil, err
	}
	c.Addresses.EventTicketTemplate = sa.EventTicketTemplate
	c.Addresses.EventFactory = like.eventFactory
	c.Addresses.Marketplace = like.marketplace
	c.Addresses.POAPAttendance = like.poapAttendance
	c.Addresses.IncentiveManager = like.incentiveManager
	c.Addresses.StartBlock = 0 // in the genesis
	log.Info("lookalike chain", "like", cfg.Like, "chain_id", cfg.ChainID, "finalized_lag", cfg.FinalizedLag)
	return c, nil
}

func mapsKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// contractState reads the code, storage and nonce of addrs at the head, for a genesis: accounts
// moved to their new addresses, and every occurrence of a moved address in code and storage
// values rewritten.
func (c *Chain) contractState(addrs []common.Address, moves map[common.Address]common.Address) (types.GenesisAlloc, error) {
	st, err := c.eth.BlockChain().State()
	if err != nil {
		return nil, fmt.Errorf("devchain: scratch state: %w", err)
	}
	want := map[common.Address]bool{}
	for _, a := range addrs {
		want[a] = true
	}
	col := &allocCollector{want: want, got: types.GenesisAlloc{}}
	if _, err := st.DumpToCollector(col, &state.DumpConfig{OnlyWithAddresses: true}); err != nil {
		return nil, fmt.Errorf("devchain: dump scratch state: %w", err)
	}
	rewrite := func(b []byte) []byte {
		for from, to := range moves {
			b = bytes.ReplaceAll(b, from.Bytes(), to.Bytes())
		}
		return b
	}
	out := types.GenesisAlloc{}
	for _, a := range addrs {
		acc, ok := col.got[a]
		if !ok || len(acc.Code) == 0 {
			return nil, fmt.Errorf("devchain: scratch chain has no contract at %s", a)
		}
		acc.Code = rewrite(acc.Code)
		for k, v := range acc.Storage {
			acc.Storage[k] = common.BytesToHash(rewrite(v.Bytes()))
		}
		to := a
		if m, ok := moves[a]; ok {
			to = m
		}
		out[to] = acc
	}
	return out, nil
}

type allocCollector struct {
	want map[common.Address]bool
	got  types.GenesisAlloc
}

func (a *allocCollector) OnRoot(common.Hash) {}

func (a *allocCollector) OnAccount(addr *common.Address, d state.DumpAccount) {
	if addr == nil || !a.want[*addr] {
		return
	}
	acc := types.Account{Code: d.Code, Nonce: d.Nonce, Storage: map[common.Hash]common.Hash{}}
	for k, v := range d.Storage {
		acc.Storage[k] = common.HexToHash(v)
	}
	a.got[*addr] = acc
}

// finalByTimeLocked is the finalized block of a chain whose finality lags by time: the newest
// block at least FinalizedLag older than the head, and never above limit (the depth reorgs may
// reach). It never moves back.
func (c *Chain) finalByTimeLocked(limit uint64) uint64 {
	bc := c.eth.BlockChain()
	head := bc.CurrentBlock()
	// Not from the node's finalized block: the simulated beacon finalizes every 32nd block as it
	// seals it, before holdFinalityLocked puts it back.
	n := c.finalByTime
	lag := uint64(c.cfg.FinalizedLag / time.Second)
	for n < limit {
		next := bc.GetHeaderByNumber(n + 1)
		if next == nil || next.Time+lag > head.Time {
			break
		}
		n++
	}
	c.finalByTime = n
	return n
}
