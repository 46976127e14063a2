package echain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/echain/echain-indexer/indexer"
	"github.com/echain/echain-indexer/schema/entity"
	"github.com/echain/echain-indexer/store"
)

// TicketTemplate is the name of the data-source template of the EventTicket clones.
const TicketTemplate = "EventTicket"

// ContractConfig is one fixed-address contract.
type ContractConfig struct {
	Address    common.Address
	StartBlock uint64 // block of its deployment (or any earlier block)
}

// Config is what the Echain mappings need to know about a deployment.
type Config struct {
	EventFactory, Marketplace, POAPAttendance, IncentiveManager ContractConfig

	// MetadataGateway is the base URL of an IPFS HTTP gateway (https://ipfs.io, or one ending in
	// /ipfs). Empty (or "off") turns metadata documents off, https:// ones included: events keep
	// the default description, category, location and imageUrl.
	MetadataGateway string
	// MetadataTimeout bounds one document fetch; default 5s.
	MetadataTimeout time.Duration
	// MetadataCacheSize is the number of documents kept in memory; default 10000.
	MetadataCacheSize int
	// MetadataStore (the store) keeps documents across restarts and is read for the Events
	// whose document is still to be written after a start or a revert. Without it (tests),
	// documents and those notes live in memory only.
	MetadataStore MetadataStore
}

// Handler is the Echain implementation of indexer.Handler.
type Handler struct {
	cfg   Config
	chain Chain
	log   *slog.Logger
	m     *metrics
	abi   *contractABIs
	meta  *metadataFetcher
	fill  *filler
}

var _ indexer.Handler = (*Handler)(nil)

// New builds the Echain mappings. chain answers the contract calls and transaction lookups of
// Prepare; reg receives the mappings' metrics.
func New(cfg Config, chain Chain, log *slog.Logger, reg prometheus.Registerer) (*Handler, error) {
	if chain == nil {
		return nil, errors.New("echain mappings: no chain client")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	seen := map[common.Address]string{}
	for _, c := range []struct {
		name string
		c    ContractConfig
	}{
		{"EventFactory", cfg.EventFactory}, {"Marketplace", cfg.Marketplace},
		{"POAPAttendance", cfg.POAPAttendance}, {"IncentiveManager", cfg.IncentiveManager},
	} {
		if c.c.Address == (common.Address{}) {
			return nil, fmt.Errorf("echain mappings: no address for %s", c.name)
		}
		if other, dup := seen[c.c.Address]; dup {
			return nil, fmt.Errorf("echain mappings: %s and %s have the same address %s", other, c.name, c.c.Address)
		}
		seen[c.c.Address] = c.name
	}
	if cfg.MetadataTimeout <= 0 {
		cfg.MetadataTimeout = defaultMetaTimeout
	}
	if cfg.MetadataCacheSize <= 0 {
		cfg.MetadataCacheSize = 10000
	}
	a, err := loadABIs()
	if err != nil {
		return nil, fmt.Errorf("echain mappings: %w", err)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	meta, err := newMetadataFetcher(cfg.MetadataGateway, cfg.MetadataTimeout, cfg.MetadataCacheSize, cfg.MetadataStore, log, m)
	if err != nil {
		return nil, fmt.Errorf("echain mappings: %w", err)
	}
	return &Handler{cfg: cfg, chain: chain, log: log, m: m, abi: a, meta: meta, fill: newFiller()}, nil
}

// Close stops the background metadata fetches and waits for them.
func (h *Handler) Close() { h.meta.close() }

// Contracts are the four fixed contracts, each with only the events a SPEC.md rule handles:
// ReferralCodeGenerated and the Ownable, Pausable, fee and ERC-721 logs change no entity and
// are not fetched.
func (h *Handler) Contracts() []indexer.Contract {
	a := h.abi
	return []indexer.Contract{
		{Name: "EventFactory", Address: h.cfg.EventFactory.Address, StartBlock: h.cfg.EventFactory.StartBlock,
			Topics: ids(a.eventCreated, a.eventUpdated, a.eventStatusChanged, a.organizerVerified, a.organizerUnverified)},
		{Name: "Marketplace", Address: h.cfg.Marketplace.Address, StartBlock: h.cfg.Marketplace.StartBlock,
			Topics: ids(a.ticketListed, a.ticketSold, a.listingCancelled)},
		{Name: "POAPAttendance", Address: h.cfg.POAPAttendance.Address, StartBlock: h.cfg.POAPAttendance.StartBlock,
			Topics: ids(a.attendanceMinted)},
		{Name: "IncentiveManager", Address: h.cfg.IncentiveManager.Address, StartBlock: h.cfg.IncentiveManager.StartBlock,
			Topics: ids(a.rewardMinted, a.referralUsed)},
	}
}

// Templates is the EventTicket clone, learned from EventCreated.
func (h *Handler) Templates() []indexer.Template {
	a := h.abi
	return []indexer.Template{{
		Name:   TicketTemplate,
		Topics: ids(a.transfer, a.ticketMinted, a.ticketUsed, a.ticketTransferRestricted),
	}}
}

// Discover turns an EventCreated into the data source of its ticket clone, keyed by event id.
func (h *Handler) Discover(l *types.Log) []store.DataSource {
	if l.Address != h.cfg.EventFactory.Address || len(l.Topics) != 4 || l.Topics[0] != h.abi.eventCreated.ID || l.Removed {
		return nil
	}
	return []store.DataSource{{
		Template: TicketTemplate,
		Address:  common.BytesToAddress(l.Topics[3][12:]),
		Block:    int64(l.BlockNumber),
		Key:      new(big.Int).SetBytes(l.Topics[1][:]).String(),
	}}
}

// prepared is what Prepare attaches to blocks for Apply: the details of new events. Metadata
// documents are not prepared: they never hold a block (metadata_fill.go).
type prepared struct {
	details map[string]*eventDetails // event id -> details
}

// covers reports whether every EventCreated of the block has its details.
func (p *prepared) covers(h *Handler, blk *indexer.Block) bool {
	for i := range blk.Logs {
		l := &blk.Logs[i]
		if !l.Removed && l.Address == h.cfg.EventFactory.Address && len(l.Topics) == 4 && l.Topics[0] == h.abi.eventCreated.ID {
			if p.details[new(big.Int).SetBytes(l.Topics[1][:]).String()] == nil {
				return false
			}
		}
	}
	return true
}

// Prepare reads what the logs of the blocks do not carry: for each EventCreated the event's
// startTime, endTime and metadataURI as the factory holds them. Calls are batched. Only the
// node's transient failures are errors.
func (h *Handler) Prepare(ctx context.Context, blocks []*indexer.Block) error {
	var reqs []detailsRequest
	for _, blk := range blocks {
		for i := range blk.Logs {
			l := &blk.Logs[i]
			if l.Removed || l.Address != h.cfg.EventFactory.Address || len(l.Topics) != 4 || l.Topics[0] != h.abi.eventCreated.ID {
				continue
			}
			reqs = append(reqs, detailsRequest{EventID: new(big.Int).SetBytes(l.Topics[1][:]), Block: l.BlockNumber, BlockHash: l.BlockHash, TxHash: l.TxHash, Tx: blk.Txs[l.TxHash], Log: l})
		}
	}
	start := time.Now()
	details, err := h.fetchDetails(ctx, reqs)
	if err != nil {
		return fmt.Errorf("echain prepare: %w", err)
	}
	if len(reqs) > 0 {
		h.m.prepareSeconds.WithLabelValues("details").Observe(time.Since(start).Seconds())
	}
	p := &prepared{details: details}
	for _, blk := range blocks {
		blk.Extra = p
	}
	return nil
}

// Apply runs the block's logs through the rules of SPEC.md in log order, then writes one
// Transaction per transaction whose logs changed an entity.
func (h *Handler) Apply(ctx context.Context, blk *indexer.Block, b indexer.Batch) error {
	p, ok := blk.Extra.(*prepared)
	if !ok || !p.covers(h, blk) {
		if err := h.Prepare(ctx, []*indexer.Block{blk}); err != nil {
			return err
		}
		p = blk.Extra.(*prepared)
	}
	a := &applier{
		h: h, ctx: ctx, blk: blk, b: b, prep: p,
		ts:     big.NewInt(blk.Ptr.Timestamp),
		byTx:   map[common.Hash]*txState{},
		events: map[string]*entity.Event{},
		dirty:  map[string]bool{},
	}
	for i := range blk.Logs {
		l := &blk.Logs[i]
		if l.Removed {
			continue
		}
		c, err := a.apply(l)
		if err != nil {
			if errors.Is(err, errUndecodable) {
				h.m.skipped.WithLabelValues("undecodable").Inc()
				h.log.Warn("skipping a log that does not match its ABI", "block", l.BlockNumber, "tx", l.TxHash, "index", l.Index, "err", err)
				continue
			}
			return fmt.Errorf("echain apply block %d log %d (tx %s): %w", l.BlockNumber, l.Index, l.TxHash, err)
		}
		if c.kind != noChange {
			a.record(l, c)
		}
	}
	for _, id := range a.dirtyOrder {
		a.events[id].Save(b)
	}
	if err := a.saveTransactions(); err != nil {
		return fmt.Errorf("echain apply block %d: %w", blk.Ptr.Number, err)
	}
	return nil
}

// applier holds one block's Apply.
type applier struct {
	h    *Handler
	ctx  context.Context
	blk  *indexer.Block
	b    indexer.Batch
	prep *prepared
	ts   *big.Int // block timestamp

	txs  []*txState // transactions in order of their first changing log
	byTx map[common.Hash]*txState

	// events are the block's Events, each loaded once and saved once at the end of the block
	// (dirty, in order of first change): a busy event is changed by every mint, and the store
	// keeps one version per entity per block whatever the number of saves.
	events     map[string]*entity.Event
	dirty      map[string]bool
	dirtyOrder []string
}

// apply dispatches a log to its contract's rules.
func (a *applier) apply(l *types.Log) (change, error) {
	if len(l.Topics) == 0 {
		return change{}, nil
	}
	cfg := &a.h.cfg
	switch l.Address {
	case cfg.EventFactory.Address:
		return a.eventFactory(l)
	case cfg.Marketplace.Address:
		return a.marketplace(l)
	case cfg.POAPAttendance.Address:
		return a.poapAttendance(l)
	case cfg.IncentiveManager.Address:
		return a.incentiveManager(l)
	}
	if src, ok := a.blk.Sources[l.Address]; ok && src.Template == TicketTemplate {
		return a.eventTicket(l, src.Key)
	}
	a.h.m.skipped.WithLabelValues("unknown_address").Inc()
	a.h.log.Debug("log of an address the mappings do not follow", "address", l.Address, "block", l.BlockNumber, "index", l.Index)
	return change{}, nil
}

// big values are immutable once stored in an entity: every arithmetic result is a fresh Int.
func bigAdd(x *big.Int, n int64) *big.Int {
	if x == nil {
		x = new(big.Int)
	}
	return new(big.Int).Add(x, big.NewInt(n))
}

func addrBytes(a common.Address) []byte { return append([]byte(nil), a.Bytes()...) }

func lowerHex(a common.Address) string { return "0x" + common.Bytes2Hex(a.Bytes()) }
