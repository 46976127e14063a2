// Package indexer is the chain follower: it keeps the store equal to what the handler makes of
// the node's canonical chain.
//
//   - History (more than BackfillMinBlocks of final blocks behind): a pipeline of getLogs ranges,
//     several fetched at once, committed strictly in order, one store transaction per range.
//     Ranges stop at the finalized block, so they need no parent checks.
//   - The head: block by block (batched when catching up), each header's parent checked against
//     the kept window; a block whose header bloom rules out handled logs costs no request, the
//     others are fetched by block hash so they match the header. A fork walks back by hash to
//     the common ancestor, reverts the store to it, then follows the node's chain.
//   - Only Commit and RevertTo change the store, each one transaction carrying the cursor, so a
//     process killed at any instant restarts from a consistent cursor.
//   - Only the holder of a PostgreSQL advisory lock indexes; standbys wait on the lock.
//   - Hints (webhooks) only make the follower look at a block sooner, through the same path.
package indexer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/echain/echain-indexer/indexer/source"
	"github.com/echain/echain-indexer/internal/ctxsleep"
	"github.com/echain/echain-indexer/store"
)

const (
	modeStarting = "starting"
	modeStandby  = "standby"
	modeBackfill = "backfill"
	modeRealtime = "realtime"
	modeHint     = "hint"
	modeResync   = "resync"
	modeStopped  = "stopped"
	modeFailed   = "failed"
)

// Hint says a block probably exists (from a verified webhook). It makes the follower look now;
// it never supplies data.
type Hint struct {
	Block      uint64      // 0 when unknown
	TxHash     common.Hash // zero when unknown
	ReceivedAt time.Time
}

// Follower follows one chain into one store.
type Follower struct {
	cfg     Config
	src     *source.Source
	store   *store.Store
	handler Handler
	filter  *logFilter
	log     *slog.Logger
	metrics *metrics
	sizer   *source.RangeSizer
	start   int64
	// addrChunk starts at Config.AddressChunk and shrinks when a provider refuses as many.
	addrChunk atomic.Int64
	// state is the leader's current chain state, for Watches from other goroutines.
	state atomic.Pointer[chainState]
	// topicMode picks how backfill ranges ask for logs, rcptMode whether from receipts.
	topicMode topicMode
	rcptMode  receiptsMode

	hints      chan Hint
	headSignal chan struct{}

	headMu     sync.Mutex
	latest     *types.Header // most recent head notification
	latestAt   time.Time
	hintedAt   map[uint64]hinted // blocks a hint committed, for lead time over newHeads
	chainHeadN int64

	finMu  sync.Mutex
	finAt  time.Time
	finNum int64

	mu     sync.Mutex
	status Status
}

type hinted struct {
	hash common.Hash
	at   time.Time
}

// New builds a follower over a source, a migrated store and a handler.
func New(cfg Config, src *source.Source, st *store.Store, h Handler, log *slog.Logger, reg prometheus.Registerer) (*Follower, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if src == nil || st == nil || h == nil || log == nil || reg == nil {
		return nil, errors.New("indexer.New: source, store, handler, logger and registerer are all required")
	}
	filter, err := newLogFilter(h)
	if err != nil {
		return nil, fmt.Errorf("indexer.New: %w", err)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("indexer.New: metrics: %w", err)
	}
	start := cfg.StartBlock
	if start == 0 {
		start = filter.minStart
	}
	fl := &Follower{
		cfg: cfg, src: src, store: st, handler: h, filter: filter, log: log, metrics: m,
		sizer:      source.NewRangeSizer(cfg.Range),
		start:      start,
		hints:      make(chan Hint, cfg.HintQueue),
		headSignal: make(chan struct{}, 1),
		hintedAt:   map[uint64]hinted{},
	}
	fl.addrChunk.Store(int64(cfg.AddressChunk))
	fl.rcptMode.setting = cfg.BackfillLogSource
	fl.status.Mode = modeStarting
	return fl, nil
}

// StartBlock is the first block the follower indexes.
func (fl *Follower) StartBlock() int64 { return fl.start }

// Run indexes until ctx ends: it waits for the leader lock (standby), then backfills and follows
// the head. It returns nil when ctx is cancelled and an error when indexing cannot go on
// (ErrReorgTooDeep).
func (fl *Follower) Run(ctx context.Context) error {
	backoff := fl.cfg.RetryBackoff
	for {
		fl.setMode(modeStandby)
		lock, err := acquireLeader(ctx, fl.store.Pool().Config().ConnConfig.Copy(), fl.cfg.LeaderLockKey, true)
		if err != nil {
			if ctx.Err() != nil {
				fl.setMode(modeStopped)
				return nil
			}
			fl.log.Warn("leader lock unavailable; retrying", "err", err, "in", backoff)
			fl.metrics.failures.WithLabelValues("leader_lock").Inc()
			if !ctxsleep.Sleep(ctx, backoff) {
				fl.setMode(modeStopped)
				return nil
			}
			backoff = min(backoff*2, fl.cfg.RetryBackoffMax)
			continue
		}
		backoff = fl.cfg.RetryBackoff
		fl.metrics.leader.Set(1)
		fl.metrics.leaderAcquired.Inc()
		fl.setLeader(true)
		// Starting until the first step sets backfill or realtime: while the node is down a
		// leader is not a standby.
		fl.setMode(modeStarting)
		fl.log.Info("leader lock acquired; indexing")
		lctx, cancel := context.WithCancelCause(ctx)
		go lock.watch(lctx, fl.cfg.LeaderCheckInterval, cancel)
		err = fl.lead(lctx)
		cause := context.Cause(lctx)
		cancel(nil)
		lock.release()
		fl.metrics.leader.Set(0)
		fl.setLeader(false)
		switch {
		case ctx.Err() != nil:
			fl.setMode(modeStopped)
			return nil
		case errors.Is(cause, errLeadershipLost):
			fl.log.Error("leader lock lost; stopped indexing, waiting to lead again", "err", cause)
			continue
		case err != nil:
			fl.setFailed(err)
			return err
		}
	}
}

// lead indexes while this process holds the lock. Transient failures are retried with backoff,
// counted and logged; only ErrReorgTooDeep (or the end of ctx) returns.
func (fl *Follower) lead(ctx context.Context) error {
	heads, err := fl.src.SubscribeNewHeads(ctx)
	if err != nil {
		return fmt.Errorf("subscribe to new heads: %w", err)
	}
	go fl.watchHeads(ctx, heads)

	var st *chainState
	backoff := fl.cfg.RetryBackoff
	fail := func(stage string, err error) bool {
		if ctx.Err() != nil {
			return false
		}
		fl.metrics.failures.WithLabelValues(stage).Inc()
		fl.log.Warn("indexing step failed; retrying", "stage", stage, "err", err, "in", backoff)
		fl.setErr(err)
		st = nil // reload from the store: it, not memory, is the truth after a failure
		ok := ctxsleep.Sleep(ctx, backoff)
		backoff = min(backoff*2, fl.cfg.RetryBackoffMax)
		return ok
	}
	ix := &indexBuild{}
	defer ix.wait()
	resyncTick := time.NewTicker(fl.cfg.ResyncPoll)
	defer resyncTick.Stop()
	checkResync := true
	var reconnects uint64 // the source's count when the cursor was last checked against the node
	for ctx.Err() == nil {
		if st == nil {
			if st, err = loadState(ctx, fl.store, fl.start); err != nil {
				if !fail("load", err) {
					break
				}
				continue
			}
			fl.state.Store(st)
			fl.setIndexed(st)
		}
		if checkResync {
			if err := fl.serveResync(ctx, st); err != nil {
				if !fail("resync", err) {
					break
				}
				continue
			}
			checkResync = false
		}
		if r := fl.src.Reconnects(); r != reconnects {
			// The node behind a (re)connection may not be the one the cursor was read from.
			if err := fl.checkCursor(ctx, st); err != nil {
				if errors.Is(err, ErrReorgTooDeep) {
					return err
				}
				if !fail("cursor", err) {
					break
				}
				continue
			}
			reconnects = r
		}
		target, received := fl.latestHead()
		if target == nil {
			h, err := fl.header(ctx, nil)
			if err != nil || h == nil {
				if !fail("head", fmt.Errorf("latest header: %v", err)) {
					break
				}
				continue
			}
			fl.noteHead(h, false)
			target, received = h, time.Now()
		}
		done, err := fl.step(ctx, st, target, received, ix, true)
		if err != nil {
			if errors.Is(err, ErrReorgTooDeep) {
				return err
			}
			if errors.Is(err, errResyncPending) {
				checkResync = true
				continue
			}
			if errors.Is(err, ethereum.NotFound) {
				// A block vanished between two requests: the chain is reorganising under us. Look
				// again shortly rather than backing off; memory may hold uncommitted sources.
				fl.metrics.failures.WithLabelValues("block_gone").Inc()
				fl.log.Debug("block vanished while fetching; retrying", "err", err)
				st = nil
				if !ctxsleep.Sleep(ctx, 20*time.Millisecond) {
					break
				}
				continue
			}
			if !fail("index", err) {
				break
			}
			continue
		}
		backoff = fl.cfg.RetryBackoff
		fl.setErr(nil)
		if !done {
			continue // more to do right away (backfill finished a stretch)
		}
		select {
		case <-ctx.Done():
		case <-fl.headSignal:
		case <-resyncTick.C:
			checkResync = true
		case h := <-fl.hints:
			if err := fl.serveHint(ctx, st, h); err != nil {
				if errors.Is(err, ErrReorgTooDeep) {
					return err
				}
				fl.metrics.hints.WithLabelValues("failed").Inc()
				if !fail("hint", err) {
					break
				}
			}
		}
	}
	return ctx.Err()
}

// step moves the store toward target: a backfill stretch when far behind the final part of the
// chain, else block by block. done is false when more work is pending right away.
func (fl *Follower) step(ctx context.Context, st *chainState, target *types.Header, received time.Time, ix *indexBuild, serveRequests bool) (bool, error) {
	tn := target.Number.Int64()
	fin := fl.finalizedFor(ctx, tn)
	fl.metrics.finalized.Set(float64(fin))
	if fin-st.head.Number >= fl.cfg.BackfillMinBlocks {
		// Ranges carry no parent checks, so the cursor they build on must still be canonical:
		// after a restart the chain may have reorganised under it.
		if st.head.Hash != (common.Hash{}) {
			probe, err := fl.header(ctx, big.NewInt(st.head.Number))
			if err != nil {
				return false, fmt.Errorf("header %d: %w", st.head.Number, err)
			}
			if probe != nil && probe.Hash() != st.head.Hash {
				if err := fl.reorg(ctx, st, probe); err != nil {
					return false, err
				}
			}
		}
		if err := fl.backfill(ctx, st, fin, serveRequests); err != nil {
			return false, err
		}
		return false, nil
	}
	// Near the head: build the query indexes the backfill went without. They are built
	// concurrently with writes, so the head is followed meanwhile (queries are slower until then).
	ix.start(ctx, fl)
	fl.setMode(modeRealtime)
	if _, err := fl.syncTo(ctx, st, target, received, modeRealtime); err != nil {
		return false, err
	}
	return true, nil
}

// watchHeads records head notifications and wakes the main loop.
func (fl *Follower) watchHeads(ctx context.Context, heads <-chan *types.Header) {
	for {
		select {
		case <-ctx.Done():
			return
		case h, ok := <-heads:
			if !ok {
				return
			}
			fl.noteHead(h, true)
			select {
			case fl.headSignal <- struct{}{}:
			default:
			}
		}
	}
}

func (fl *Follower) noteHead(h *types.Header, notification bool) {
	now := time.Now()
	fl.headMu.Lock()
	fl.latest, fl.latestAt = h, now
	n := h.Number.Int64()
	fl.chainHeadN = n
	if notification {
		if hi, ok := fl.hintedAt[h.Number.Uint64()]; ok {
			if hi.hash == h.Hash() {
				fl.metrics.hintLead.Observe(now.Sub(hi.at).Seconds())
			}
			delete(fl.hintedAt, h.Number.Uint64())
		}
		for k := range fl.hintedAt {
			if int64(k) < n-256 {
				delete(fl.hintedAt, k)
			}
		}
	}
	fl.headMu.Unlock()
	fl.metrics.chainHead.Set(float64(n))
	fl.mu.Lock()
	fl.status.ChainHead = n
	fl.status.LagBlocks = max(n-fl.status.Indexed.Number, 0)
	fl.mu.Unlock()
}

func (fl *Follower) latestHead() (*types.Header, time.Time) {
	fl.headMu.Lock()
	defer fl.headMu.Unlock()
	return fl.latest, fl.latestAt
}

func (fl *Follower) chainHeadNumber() int64 {
	fl.headMu.Lock()
	defer fl.headMu.Unlock()
	return fl.chainHeadN
}

// Watches reports whether logs of the address are indexed: a fixed contract, or a data source
// learned so far (while this process leads). The binary does not give it to the webhook
// receiver as its Indexed filter: a hint for a clone created in a block not yet indexed would be
// dropped, and a hint only ever costs one early look at a block, while a dropped one costs the
// latency the webhook exists to save.
func (fl *Follower) Watches(a common.Address) bool {
	if _, ok := fl.filter.fixed[a]; ok {
		return true
	}
	if st := fl.state.Load(); st != nil {
		_, ok := st.source(a)
		return ok
	}
	return false
}

// Hint asks the follower to look at a block now. It never blocks: when the queue is full the
// hint is dropped (counted), which loses nothing since heads still arrive.
func (fl *Follower) Hint(h Hint) {
	if h.ReceivedAt.IsZero() {
		h.ReceivedAt = time.Now()
	}
	select {
	case fl.hints <- h:
	default:
		fl.metrics.hints.WithLabelValues("dropped").Inc()
	}
}

// serveHint fetches the hinted block over HTTP and processes it like a head: parent checks,
// reorg handling, gap filling. A hint naming a block the node lacks or disowns changes nothing.
func (fl *Follower) serveHint(ctx context.Context, st *chainState, h Hint) error {
	number := h.Block
	var txBlock common.Hash
	if h.TxHash != (common.Hash{}) {
		n, bh, found, err := fl.txBlock(ctx, h.TxHash)
		if err != nil {
			return fmt.Errorf("locate hinted transaction %s: %w", h.TxHash, err)
		}
		if !found || (number != 0 && n != number) {
			fl.metrics.hints.WithLabelValues("unknown").Inc()
			return nil
		}
		number, txBlock = n, bh
	}
	if number == 0 {
		fl.metrics.hints.WithLabelValues("unknown").Inc()
		return nil
	}
	if int64(number) <= st.head.Number {
		fl.metrics.hints.WithLabelValues("stale").Inc()
		return nil
	}
	hdr, err := fl.header(ctx, new(big.Int).SetUint64(number))
	if err != nil {
		return fmt.Errorf("hinted header %d: %w", number, err)
	}
	if hdr == nil {
		fl.metrics.hints.WithLabelValues("unknown").Inc()
		return nil
	}
	if txBlock != (common.Hash{}) && hdr.Hash() != txBlock {
		fl.metrics.hints.WithLabelValues("mismatch").Inc()
		return nil
	}
	if hdr.Number.Int64()-st.head.Number > int64(fl.cfg.MaxBlocksPerCommit)*4 {
		// Far ahead: the normal path (possibly a backfill) handles it.
		fl.noteHead(hdr, false)
		fl.metrics.hints.WithLabelValues("stale").Inc()
		return nil
	}
	before := st.head.Number
	if _, err := fl.syncTo(ctx, st, hdr, h.ReceivedAt, modeHint); err != nil {
		return err
	}
	if st.head.Number >= int64(number) && before < int64(number) {
		fl.metrics.hints.WithLabelValues("useful").Inc()
		fl.headMu.Lock()
		if latest := fl.latest; latest == nil || latest.Number.Uint64() < number {
			fl.hintedAt[number] = hinted{hash: hdr.Hash(), at: time.Now()}
		}
		if fl.chainHeadN < int64(number) {
			fl.chainHeadN = int64(number)
		}
		fl.headMu.Unlock()
	} else {
		fl.metrics.hints.WithLabelValues("stale").Inc()
	}
	return nil
}

// indexBuild runs the store's EnsureIndexes once in the background, retrying after a failure.
type indexBuild struct {
	mu      sync.Mutex
	running bool
	done    bool
	retryAt time.Time
	wg      sync.WaitGroup
}

func (ix *indexBuild) start(ctx context.Context, fl *Follower) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.running || ix.done || time.Now().Before(ix.retryAt) {
		return
	}
	ix.running = true
	ix.wg.Add(1)
	go func() {
		defer ix.wg.Done()
		t0 := time.Now()
		err := fl.store.EnsureIndexes(ctx)
		ix.mu.Lock()
		defer ix.mu.Unlock()
		ix.running = false
		if err != nil {
			if ctx.Err() == nil {
				fl.metrics.failures.WithLabelValues("indexes").Inc()
				fl.log.Warn("building query indexes failed; will retry", "err", err)
				ix.retryAt = time.Now().Add(30 * time.Second)
			}
			return
		}
		ix.done = true
		fl.mu.Lock()
		fl.status.IndexesReady = true
		fl.mu.Unlock()
		fl.log.Info("query indexes in place", "took", time.Since(t0).Round(time.Millisecond))
	}()
}

func (ix *indexBuild) wait() { ix.wg.Wait() }
