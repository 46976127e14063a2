// Package devchain runs a local Ethereum chain with the Echain contracts for tests, benchmarks and
// the demo: go-ethereum's simulated chain (the same parts as ethclient/simulated: an in-memory
// node, the eth service and the simulated beacon that seals a block on Commit) served over HTTP and
// WebSocket JSON-RPC, our contracts deployed from abis/build, funded accounts with keys derived
// from a seed, explicit operations, a traffic generator with reorg injection, a history pre-builder
// with an on-disk cache, and a metadata server for the events' metadata URIs.
//
// It builds the node itself rather than through simulated.NewBackend because that constructor
// panics when a port is taken and hides the node, whose listen addresses (port 0) and block chain
// (export/import of a pre-built history) we need.
package devchain

import (
	"context"
	"crypto/ecdsa"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth"
	"github.com/ethereum/go-ethereum/eth/catalyst"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/eth/filters"
	"github.com/ethereum/go-ethereum/eth/tracers"
	_ "github.com/ethereum/go-ethereum/eth/tracers/native" // callTracer
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/rpc"
)

// ChainID is the dev chain's id unless Config.ChainID or Config.Like says otherwise (go-ethereum's
// dev-chain id).
const ChainID = 1337

// Config configures a dev chain. The zero value is usable: defaults are filled in by Start.
type Config struct {
	// Seed derives the account keys (and, through Traffic, the traffic's choices). Default 1.
	Seed int64
	// Users is the number of funded user accounts besides the deployer and the treasury. Default 24.
	Users int
	// HTTPHost/WSHost default to 127.0.0.1; port 0 picks a free port. When both ports are equal
	// (including both 0) one server answers HTTP and WebSocket on the same port.
	HTTPHost string
	HTTPPort int
	WSHost   string
	WSPort   int
	// BlockGasLimit defaults to 60,000,000.
	BlockGasLimit uint64
	// LogIndex makes geth maintain its log index (the simulated backend disables it, so
	// eth_getLogs scans blocks).
	LogIndex bool
	// Archive keeps the state of every block (hash scheme, no pruning), so eth_call works at any
	// height. Off by default: like most nodes, only recent state (128 blocks) is kept and older
	// calls fail with "historical state is not available".
	Archive bool
	// DataDir keeps the node's database on disk in this directory instead of in memory. Worth it
	// for a long history: geth's freezer moves finalized blocks out of the key-value store, and
	// on the in-memory store each block it moves costs a scan of the whole store (a 2,100-block
	// history: ~12 s of CPU, about a minute after the start); on disk that is a few index seeks
	// (~0.2 s). The caller owns the directory (a fresh temp directory per chain).
	DataDir string
	// MetadataAddr is the metadata server's listen address (default 127.0.0.1:0); "off" disables it.
	MetadataAddr string
	// MaxReorgDepth bounds Reorg (default 20): the indexer uses depth finality on the dev chain.
	MaxReorgDepth int
	// Metadata tunes the metadata server's deliberately slow answers.
	Metadata MetadataConfig
	// ChainID is the chain id (default ChainID).
	ChainID uint64
	// Like makes the chain look like a public one to the indexer (see like.go): "base-sepolia"
	// sets the chain id, places the contracts at that network's addresses and makes the
	// finalized tag lag by time. Empty: the plain dev chain.
	Like string
	// FinalizedLag, when positive, holds the finalized block at the newest block at least this
	// much older (in block time) than the head, as on an OP-stack chain whose blocks become final
	// when L1 finalizes their batch; otherwise it trails the head by MaxReorgDepth+1 blocks.
	FinalizedLag time.Duration

	preimages bool // keep the preimages of storage keys (the scratch chain of a lookalike)
}

func (c *Config) withDefaults() {
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Users <= 0 {
		c.Users = 24
	}
	if c.HTTPHost == "" {
		c.HTTPHost = "127.0.0.1"
	}
	if c.WSHost == "" {
		c.WSHost = "127.0.0.1"
	}
	if c.BlockGasLimit == 0 {
		c.BlockGasLimit = 60_000_000
	}
	if c.MetadataAddr == "" {
		c.MetadataAddr = "127.0.0.1:0"
	}
	if c.MaxReorgDepth <= 0 {
		c.MaxReorgDepth = 20
	}
	if c.ChainID == 0 {
		c.ChainID = ChainID
	}
	c.Metadata.withDefaults()
}

// Account is a funded account whose key the dev chain knows.
type Account struct {
	Address common.Address
	Key     *ecdsa.PrivateKey
}

// Addresses of the deployed contracts and special accounts.
type Addresses struct {
	EventFactory        common.Address
	EventTicketTemplate common.Address
	Marketplace         common.Address
	POAPAttendance      common.Address
	IncentiveManager    common.Address
	Deployer            common.Address // owner of every contract; signs POAP attendance
	Treasury            common.Address
	// StartBlock is the block that deployed the contracts (a start block for indexers).
	StartBlock uint64
}

// Chain is a running dev chain. Its methods are safe for concurrent use: one mutex serialises
// sending, sealing and forking.
type Chain struct {
	HTTPURL         string
	WSURL           string
	MetadataGateway string // base URL for ipfs:// metadata, e.g. http://127.0.0.1:PORT/ipfs/ ("" when off)
	Addresses       Addresses

	cfg      Config
	chainID  *big.Int
	log      *slog.Logger
	stack    *node.Node
	eth      *eth.Ethereum
	beacon   *catalyst.SimulatedBeacon
	genesis  *core.Genesis // what the node was started from, for ExportForGeth
	client   *ethclient.Client
	meta     *metadataServer
	contract contracts
	signer   types.Signer
	deployer Account
	treasury Account
	users    []Account

	mu     sync.Mutex
	nonces map[common.Address]uint64 // next nonce per sender; dropped when unsure
	// finalByTime is the finalized block when finality lags by time (Config.FinalizedLag).
	finalByTime uint64
	// direct, while set (a pre-build), takes sent transactions instead of the pool, and
	// commitLocked builds blocks of them itself (see direct.go).
	direct    *directBuild
	closeOnce sync.Once
	closeErr  error
}

// Start runs a dev chain, deploys the contracts and returns once they are mined.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (*Chain, error) {
	if cfg.Like != "" {
		return startLike(ctx, cfg, log)
	}
	c, err := startNode(ctx, cfg, log, nil)
	if err != nil {
		return nil, err
	}
	if err := c.deploy(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// startNode starts the node (genesis only, plus the accounts of extra) and the metadata server.
func startNode(ctx context.Context, cfg Config, log *slog.Logger, extra types.GenesisAlloc) (*Chain, error) {
	cfg.withDefaults()
	if log == nil {
		return nil, errors.New("devchain: nil logger")
	}
	ct, err := loadContracts()
	if err != nil {
		return nil, err
	}
	c := &Chain{
		cfg:      cfg,
		log:      log,
		contract: ct,
		chainID:  new(big.Int).SetUint64(cfg.ChainID),
		signer:   types.LatestSignerForChainID(new(big.Int).SetUint64(cfg.ChainID)),
		nonces:   map[common.Address]uint64{},
	}
	keys, err := deriveKeys(cfg.Seed, 2+cfg.Users)
	if err != nil {
		return nil, err
	}
	c.deployer, c.treasury, c.users = keys[0], keys[1], keys[2:]

	alloc := types.GenesisAlloc{}
	funds := new(big.Int).Mul(big.NewInt(1_000_000_000), big.NewInt(params.Ether))
	for _, k := range keys {
		alloc[k.Address] = types.Account{Balance: funds}
	}
	for a, acc := range extra {
		if old, ok := alloc[a]; ok && acc.Balance == nil {
			acc.Balance = old.Balance
		}
		alloc[a] = acc
	}
	if err := c.startStack(alloc); err != nil {
		return nil, err
	}
	if cfg.MetadataAddr != "off" {
		c.meta, err = startMetadataServer(cfg.MetadataAddr, cfg.Metadata, log)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.MetadataGateway = c.meta.gateway()
	}
	c.Addresses = Addresses{
		EventTicketTemplate: crypto.CreateAddress(c.deployer.Address, 0),
		EventFactory:        crypto.CreateAddress(c.deployer.Address, 1),
		Marketplace:         crypto.CreateAddress(c.deployer.Address, 2),
		POAPAttendance:      crypto.CreateAddress(c.deployer.Address, 3),
		IncentiveManager:    crypto.CreateAddress(c.deployer.Address, 4),
		Deployer:            c.deployer.Address,
		Treasury:            c.treasury.Address,
		StartBlock:          1,
	}
	log.Info("dev chain started", "http", c.HTTPURL, "ws", c.WSURL, "metadata", c.MetadataGateway)
	return c, nil
}

func (c *Chain) startStack(alloc types.GenesisAlloc) error {
	nodeConf := node.DefaultConfig
	nodeConf.DataDir = c.cfg.DataDir
	nodeConf.P2P = p2p.Config{NoDiscovery: true, MaxPeers: 0}
	nodeConf.HTTPHost = c.cfg.HTTPHost
	nodeConf.HTTPPort = c.cfg.HTTPPort
	nodeConf.HTTPModules = []string{"eth", "net", "web3"}
	nodeConf.HTTPVirtualHosts = []string{"*"}
	nodeConf.HTTPCors = []string{"*"}
	nodeConf.WSHost = c.cfg.WSHost
	nodeConf.WSPort = c.cfg.WSPort
	nodeConf.WSModules = []string{"eth", "net", "web3"}
	nodeConf.WSOrigins = []string{"*"}

	genesisAlloc := core.SystemContractAllocs()
	maps.Copy(genesisAlloc, alloc)
	ethConf := ethconfig.Defaults
	// Every fork up to Osaka, like the dev chain of ethclient/simulated minus the in-development
	// Bogota, whose gas schedule no production chain (Base included) charges yet.
	chainConf := *params.AllDevChainProtocolChanges
	chainConf.BogotaTime = nil
	chainConf.ChainID = new(big.Int).SetUint64(c.cfg.ChainID)
	ethConf.Genesis = &core.Genesis{
		Config:   &chainConf,
		GasLimit: c.cfg.BlockGasLimit,
		Alloc:    genesisAlloc,
	}
	ethConf.Miner.GasCeil = c.cfg.BlockGasLimit
	// The miner cuts block building short after Recommit (2s by default); on a loaded machine
	// (or under -race) that would leave sent transactions out of the block Commit seals.
	ethConf.Miner.Recommit = time.Minute
	ethConf.SyncMode = ethconfig.FullSync
	ethConf.TxPool.NoLocals = true
	ethConf.LogNoHistory = !c.cfg.LogIndex
	// On disk (DataDir), geth's default cache (2 GB, of which 1 GB memtables whose write-ahead
	// logs are preallocated) is sized for mainnet; a dev chain's whole database is ~100 MB.
	ethConf.DatabaseCache = 256
	// A scratch chain's state is copied into a lookalike's genesis by slot key (like.go).
	ethConf.Preimages = c.cfg.preimages
	if c.cfg.Archive {
		ethConf.NoPruning = true
		ethConf.StateScheme = "hash"
	}

	c.genesis = ethConf.Genesis
	stack, err := node.New(&nodeConf)
	if err != nil {
		return fmt.Errorf("devchain: node: %w", err)
	}
	backend, err := eth.New(stack, &ethConf)
	if err != nil {
		stack.Close()
		return fmt.Errorf("devchain: eth service: %w", err)
	}
	fs := filters.NewFilterSystem(backend.APIBackend, filters.Config{})
	stack.RegisterAPIs([]rpc.API{{Namespace: "eth", Service: filters.NewFilterAPI(fs)}})
	// debug_trace* for revert reasons; reachable in-process only (not in HTTP/WSModules).
	stack.RegisterAPIs(tracers.APIs(backend.APIBackend))
	if err := stack.Start(); err != nil {
		stack.Close()
		return fmt.Errorf("devchain: start node on %s: %w",
			net.JoinHostPort(c.cfg.HTTPHost, strconv.Itoa(c.cfg.HTTPPort)), err)
	}
	beacon, err := catalyst.NewSimulatedBeacon(0, common.Address{}, backend)
	if err != nil {
		stack.Close()
		return fmt.Errorf("devchain: simulated beacon: %w", err)
	}
	// As simulated.NewBackend does: set the fork choice to genesis before the first block.
	if err := beacon.Fork(backend.BlockChain().GetCanonicalHash(0)); err != nil {
		stack.Close()
		return fmt.Errorf("devchain: beacon fork to genesis: %w", err)
	}
	c.stack, c.eth, c.beacon = stack, backend, beacon
	c.client = ethclient.NewClient(stack.Attach())
	c.HTTPURL = stack.HTTPEndpoint()
	c.WSURL = stack.WSEndpoint()
	return nil
}

// Close stops the chain and the metadata server. Safe to call more than once.
func (c *Chain) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		var errs []error
		if c.meta != nil {
			errs = append(errs, c.meta.close())
		}
		if c.client != nil {
			c.client.Close()
		}
		if c.beacon != nil {
			errs = append(errs, c.beacon.Stop())
		}
		if c.stack != nil {
			errs = append(errs, c.stack.Close())
		}
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}

// Client is an in-process RPC client of the chain (no HTTP round trip).
func (c *Chain) Client() *ethclient.Client { return c.client }

// Deployer owns every contract (and signs attendance); Treasury receives fees.
func (c *Chain) Deployer() Account { return c.deployer }

// Treasury receives the marketplace fees.
func (c *Chain) Treasury() Account { return c.treasury }

// Users are the funded accounts for organisers, buyers and attendees (a copy).
func (c *Chain) Users() []Account { return append([]Account(nil), c.users...) }

// User returns user account i (0 <= i < Config.Users).
func (c *Chain) User(i int) Account { return c.users[i] }

// Head returns the current head block's header.
func (c *Chain) Head() *types.Header { return c.eth.BlockChain().CurrentBlock() }

// MaxReorgDepth is the deepest reorganisation Reorg will make.
func (c *Chain) MaxReorgDepth() int { return c.cfg.MaxReorgDepth }

// Commit seals a block with every pending transaction and returns its hash. Rarely (a pool
// reset racing the block builder on a loaded machine) the builder leaves a submitted
// transaction out; Commit then seals further blocks until none is left, and returns the last.
func (c *Chain) Commit() (common.Hash, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sealed, err := c.commitLocked()
	if err != nil {
		return common.Hash{}, err
	}
	return sealed[len(sealed)-1], nil
}

// commitLocked seals blocks until the pool has no executable transaction left (one block but
// for the rare case above) and returns their hashes.
func (c *Chain) commitLocked() ([]common.Hash, error) {
	if c.direct != nil {
		hash, err := c.buildDirectLocked()
		if err != nil {
			return nil, err
		}
		return []common.Hash{hash}, nil
	}
	var sealed []common.Hash
	for {
		hash, err := c.sealLocked()
		if err != nil {
			return sealed, err
		}
		sealed = append(sealed, hash)
		if err := c.eth.TxPool().Sync(); err != nil {
			return sealed, fmt.Errorf("devchain: txpool sync: %w", err)
		}
		pending, _ := c.eth.TxPool().Stats()
		if pending == 0 {
			return sealed, nil
		}
		if len(sealed) == 5 {
			return sealed, fmt.Errorf("devchain: %d transactions still pending after %d blocks", pending, len(sealed))
		}
		c.log.Debug("block builder left transactions out; sealing another block", "pending", pending)
	}
}

func (c *Chain) sealLocked() (common.Hash, error) {
	before := c.eth.BlockChain().CurrentBlock().Number.Uint64()
	hash := c.beacon.Commit()
	head := c.eth.BlockChain().CurrentBlock()
	if head.Number.Uint64() != before+1 || head.Hash() != hash {
		// The beacon only logs sealing errors; a head that did not move is how they show.
		return common.Hash{}, fmt.Errorf("devchain: sealing block %d failed", before+1)
	}
	c.holdFinalityLocked()
	return hash, nil
}

// holdFinalityLocked keeps the finalized block MaxReorgDepth+1 below the head. The simulated
// beacon finalizes every 32nd block as it seals it, and geth's freezer moves blocks up to the
// finalized one out of the key-value store (a minute after the start, then every minute); a
// Reorg reaching below a frozen block leaves a chain on which sealing fails. A real chain never
// reorganises below finality, and with this neither does the dev chain; eth_getBlockByNumber
// "finalized" says the same, so an indexer taking finality from the node stays correct too.
func (c *Chain) holdFinalityLocked() {
	bc := c.eth.BlockChain()
	head := bc.CurrentBlock().Number.Uint64()
	keep := uint64(c.cfg.MaxReorgDepth) + 1
	n := uint64(0) // a young chain has its genesis final, as a real one would; nothing freezes then
	if head > keep {
		n = head - keep
	}
	if c.cfg.FinalizedLag > 0 {
		n = c.finalByTimeLocked(n)
	}
	if fin := bc.CurrentFinalBlock(); fin == nil || fin.Number.Uint64() != n {
		bc.SetFinalized(bc.GetHeaderByNumber(n))
	}
}

// Mine seals a block (see Commit) and returns the receipts of the given transactions, in order.
// It fails if one was not mined or reverted (naming the contract error when it can be decoded).
func (c *Chain) Mine(ctx context.Context, txs ...common.Hash) ([]*types.Receipt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sealed, err := c.commitLocked()
	if err != nil {
		return nil, err
	}
	return c.receiptsLocked(ctx, sealed, txs)
}

func (c *Chain) receiptsLocked(ctx context.Context, blocks []common.Hash, txs []common.Hash) ([]*types.Receipt, error) {
	byHash := map[common.Hash]*types.Receipt{}
	for _, b := range blocks {
		for _, r := range c.eth.BlockChain().GetReceiptsByHash(b) {
			byHash[r.TxHash] = r
		}
	}
	out := make([]*types.Receipt, len(txs))
	for i, h := range txs {
		r, ok := byHash[h]
		if !ok {
			return nil, fmt.Errorf("devchain: transaction %s was not mined", h)
		}
		if r.Status != types.ReceiptStatusSuccessful {
			return nil, fmt.Errorf("devchain: transaction %s reverted: %s", h, c.revertReason(ctx, h, r.BlockNumber))
		}
		out[i] = r
	}
	return out, nil
}

// Receipt returns a mined transaction's receipt (without the tx-index lookup delay of RPC).
func (c *Chain) Receipt(ctx context.Context, tx common.Hash) (*types.Receipt, error) {
	r, err := c.client.TransactionReceipt(ctx, tx)
	if err != nil {
		return nil, fmt.Errorf("devchain: receipt of %s: %w", tx, err)
	}
	return r, nil
}

// send signs and submits a transaction from an account the chain knows. Callers hold c.mu.
func (c *Chain) sendLocked(ctx context.Context, from Account, to *common.Address, value *big.Int, data []byte, gas uint64) (*types.Transaction, error) {
	nonce, ok := c.nonces[from.Address]
	if !ok {
		n, err := c.nextNonceLocked(from.Address)
		if err != nil {
			return nil, err
		}
		nonce = n
	}
	head := c.eth.BlockChain().CurrentBlock()
	tip := big.NewInt(params.GWei)
	feeCap := new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip)
	if value == nil {
		value = new(big.Int)
	}
	tx, err := types.SignNewTx(from.Key, c.signer, &types.DynamicFeeTx{
		ChainID:   c.chainID,
		Nonce:     nonce,
		GasTipCap: tip,
		GasFeeCap: feeCap,
		Gas:       gas,
		To:        to,
		Value:     value,
		Data:      data,
	})
	if err != nil {
		return nil, fmt.Errorf("devchain: sign: %w", err)
	}
	if c.direct != nil {
		c.direct.add(c.eth.BlockChain().Config(), head, from.Address, tx)
	} else if err := c.addTx(tx); err != nil {
		delete(c.nonces, from.Address)
		return nil, fmt.Errorf("devchain: send from %s nonce %d: %w", from.Address, nonce, err)
	}
	c.nonces[from.Address] = nonce + 1
	return tx, nil
}

// resendLocked submits an already signed transaction again (after a reorg dropped it).
func (c *Chain) resendLocked(ctx context.Context, tx *types.Transaction) error {
	from, err := types.Sender(c.signer, tx)
	if err != nil {
		return err
	}
	if err := c.addTx(tx); err != nil {
		delete(c.nonces, from)
		return err
	}
	// Resent prefixes are contiguous from the sender's state nonce, in order.
	c.nonces[from] = tx.Nonce() + 1
	return nil
}

// addTx adds a transaction to the pool and waits until the pool has promoted it, so the next
// sealed block includes it (a plain eth_sendRawTransaction returns before that).
func (c *Chain) addTx(tx *types.Transaction) error {
	return c.eth.TxPool().Add([]*types.Transaction{tx}, true)[0]
}

// deploy deploys and wires the contracts in block 1 (the addresses are fixed by the deployer's
// nonces 0-4, set in startNode).
func (c *Chain) deploy(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.Addresses
	steps := []struct {
		name string
		args []any
	}{
		{"EventTicket", nil},
		{"EventFactory", []any{a.EventTicketTemplate, a.Treasury}},
		{"Marketplace", []any{a.Treasury}},
		{"POAPAttendance", []any{a.EventFactory}},
		{"IncentiveManager", []any{a.EventFactory, a.EventTicketTemplate, a.POAPAttendance}},
	}
	var hashes []common.Hash
	for _, s := range steps {
		code, err := c.contract.creation(s.name, s.args...)
		if err != nil {
			return err
		}
		tx, err := c.sendLocked(ctx, c.deployer, nil, nil, code, 5_000_000)
		if err != nil {
			return fmt.Errorf("devchain: deploy %s: %w", s.name, err)
		}
		hashes = append(hashes, tx.Hash())
	}
	sealed, err := c.commitLocked()
	if err != nil {
		return err
	}
	rs, err := c.receiptsLocked(ctx, sealed, hashes)
	if err != nil {
		return fmt.Errorf("devchain: deploy: %w", err)
	}
	want := []common.Address{a.EventTicketTemplate, a.EventFactory, a.Marketplace, a.POAPAttendance, a.IncentiveManager}
	for i, r := range rs {
		if r.ContractAddress != want[i] {
			return fmt.Errorf("devchain: %s deployed at %s, expected %s", steps[i].name, r.ContractAddress, want[i])
		}
	}
	c.Addresses.StartBlock = rs[0].BlockNumber.Uint64()
	return nil
}

// WaitLogIndex waits until geth's log index (Config.LogIndex) covers the whole chain, so that
// eth_getLogs measurements see the indexed search rather than its unindexed fallback.
func (c *Chain) WaitLogIndex(ctx context.Context) error {
	if !c.cfg.LogIndex {
		return errors.New("devchain: the log index is off (Config.LogIndex)")
	}
	mb := c.eth.APIBackend.NewMatcherBackend()
	defer mb.Close()
	for {
		r, err := mb.SyncLogIndex(ctx)
		if err != nil {
			return fmt.Errorf("devchain: log index: %w", err)
		}
		if !r.IndexedBlocks.IsEmpty() && r.IndexedBlocks.First() <= 1 && r.IndexedBlocks.Last() >= c.Head().Number.Uint64() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// DefaultCacheDir is where pre-built histories are kept unless configured otherwise:
// <user cache dir>/echain-indexer/devchain.
func DefaultCacheDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("devchain: cache dir: %w", err)
	}
	return filepath.Join(dir, "echain-indexer", "devchain"), nil
}

// deriveKeys makes n private keys from the seed: key i is keccak256("echain-devchain", seed, i,
// attempt), taking the first attempt that is a valid secp256k1 scalar.
func deriveKeys(seed int64, n int) ([]Account, error) {
	out := make([]Account, 0, n)
	for i := 0; i < n; i++ {
		for attempt := uint64(0); ; attempt++ {
			var buf [24]byte
			binary.BigEndian.PutUint64(buf[0:], uint64(seed))
			binary.BigEndian.PutUint64(buf[8:], uint64(i))
			binary.BigEndian.PutUint64(buf[16:], attempt)
			key, err := crypto.ToECDSA(crypto.Keccak256([]byte("echain-devchain"), buf[:]))
			if err == nil {
				out = append(out, Account{Address: crypto.PubkeyToAddress(key.PublicKey), Key: key})
				break
			}
			if attempt > 16 {
				return nil, fmt.Errorf("devchain: derive key %d: %w", i, err)
			}
		}
	}
	return out, nil
}
