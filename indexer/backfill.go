package indexer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/big"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/echain/echain-indexer/indexer/source"
	"github.com/echain/echain-indexer/store"
)

// errResyncPending interrupts a backfill so that a re-sync request is served promptly.
var errResyncPending = errors.New("re-sync requested")

// rangeJob is one backfill range moving through the pipeline. Fetching runs concurrently with
// other ranges; discovery and commit run strictly in range order.
type rangeJob struct {
	from, to   int64
	discovered chan struct{} // closed once this range's data sources are known
	done       chan struct{} // closed once the range is ready to commit (or failed)

	blocks  []*Block
	known   map[common.Hash]*Tx // every transaction of the range's blocks, in receipts mode
	created map[int64][]store.DataSource
	head    store.BlockPtr
	logs    int
	err     error

	// stage timings for the debug log
	began, ready                   time.Time
	logsTook, txsTook, prepareTook time.Duration
}

// backfill indexes (cursor, to] with range getLogs. `to` must be final: ranges carry no
// parent checks. It returns after committing `to`, or early with errResyncPending.
func (fl *Follower) backfill(ctx context.Context, st *chainState, to int64, serveRequests bool) (err error) {
	from := st.head.Number + 1
	if from > to {
		return nil
	}
	fl.setMode(modeBackfill)
	prog := newProgress(from, to)
	fl.setBackfill(prog.snapshot(st.head.Number))
	fl.log.Info("backfill starting", "from", from, "to", to, "data_sources", st.sourceCount())
	fl.metrics.backfillTarget.Set(float64(to))

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
		if err != nil {
			// Sources found by ranges that did not commit are not the store's: forget them.
			st.revert(st.head)
		}
	}()

	k := fl.cfg.BackfillConcurrency
	jobs := make(chan *rangeJob, k)
	slots := make(chan struct{}, k)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(jobs)
		prev := make(chan struct{})
		close(prev)
		for next := from; next <= to; {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			end := int64(fl.sizer.Next(uint64(next), uint64(to)))
			j := &rangeJob{from: next, to: min(max(end, next), to), discovered: make(chan struct{}), done: make(chan struct{})}
			wg.Add(1)
			go func(j *rangeJob, prev chan struct{}) {
				defer wg.Done()
				fl.runRange(ctx, st, j, prev)
			}(j, prev)
			prev = j.discovered
			next = j.to + 1
			select {
			case jobs <- j:
			case <-ctx.Done():
				return
			}
		}
	}()

	lastResyncCheck := time.Now()
	lastLog := time.Now()
	for j := range jobs {
		select {
		case <-j.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if j.err != nil {
			return j.err
		}
		p := &pending{blocks: j.blocks, created: j.created, head: j.head, logs: j.logs, count: j.to - j.from + 1, mode: modeBackfill}
		applyStart := time.Now()
		if err := fl.commit(ctx, st, p, to); err != nil {
			return err
		}
		if fl.log.Enabled(ctx, slog.LevelDebug) {
			fl.log.Debug("backfill range committed", "from", j.from, "to", j.to, "logs", j.logs,
				"logs_ms", j.logsTook.Milliseconds(), "txs_ms", j.txsTook.Milliseconds(), "prepare_ms", j.prepareTook.Milliseconds(),
				"waited_ms", applyStart.Sub(j.ready).Milliseconds(), "apply_ms", p.applied.Sub(applyStart).Milliseconds(),
				"commit_ms", time.Since(p.applied).Milliseconds())
		}
		<-slots
		prog.add(j.to-j.from+1, j.logs)
		snap := prog.snapshot(st.head.Number)
		fl.setBackfill(snap)
		fl.metrics.backfillBlocksPerSec.Set(snap.BlocksPerSec)
		fl.metrics.backfillLogsPerSec.Set(snap.LogsPerSec)
		fl.metrics.backfillETA.Set(snap.ETA.Seconds())
		if time.Since(lastLog) >= fl.cfg.ProgressInterval {
			lastLog = time.Now()
			fl.log.Info("backfill progress", "block", st.head.Number, "to", to, "blocks_per_s", round1(snap.BlocksPerSec),
				"logs_per_s", round1(snap.LogsPerSec), "eta", snap.ETA.Round(time.Second), "range", j.to-j.from+1, "data_sources", st.sourceCount())
		}
		if serveRequests && time.Since(lastResyncCheck) >= fl.cfg.ResyncPoll {
			lastResyncCheck = time.Now()
			if req, err := fl.store.NextResync(ctx); err == nil && req != nil {
				return errResyncPending
			}
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	snap := prog.snapshot(st.head.Number)
	fl.log.Info("backfill done", "to", to, "blocks", to-from+1, "logs", prog.logs, "took", time.Since(prog.start).Round(time.Millisecond),
		"blocks_per_s", round1(snap.BlocksPerSec), "logs_per_s", round1(snap.LogsPerSec))
	return nil
}

// runRange fetches one range: fixed-contract logs, then (after the previous range's discovery)
// this range's new data sources, then the logs of every known source, transactions, and Prepare.
func (fl *Follower) runRange(ctx context.Context, st *chainState, j *rangeJob, prev <-chan struct{}) {
	discoveredClosed := false
	defer func() {
		if !discoveredClosed {
			close(j.discovered)
		}
		close(j.done)
	}()
	fail := func(err error) { j.err = fmt.Errorf("backfill range %d-%d: %w", j.from, j.to, err) }
	began := time.Now()
	j.began = began

	// Receipts mode takes every log and transaction of the range's blocks from their receipts,
	// when the handled transactions are most of the blocks' (see receiptsMode). Else merged mode
	// asks once for every handled topic with no address filter, when that is known to return few
	// logs of other contracts; else the fixed contracts' logs now and the data sources' logs (in
	// address chunks) after discovery.
	var (
		raw      []types.Log
		err      error
		merged   bool
		contents []source.BlockContent
	)
	byReceipts := fl.rcptMode.use()
	if byReceipts {
		contents, err = fl.src.BlockContents(ctx, uint64(j.from), uint64(j.to))
		if errors.Is(err, source.ErrReceiptsUnsupported) {
			fl.rcptMode.unsupported(fl.log, err)
			byReceipts, err = false, nil
		}
		if err != nil {
			fail(fmt.Errorf("block receipts %d-%d: %w", j.from, j.to, err))
			return
		}
		nlogs, ntxs := 0, 0
		for i := range contents {
			nlogs += len(contents[i].Logs)
			ntxs += len(contents[i].Txs)
		}
		raw = make([]types.Log, 0, nlogs)
		j.known = make(map[common.Hash]*Tx, ntxs)
		for i := range contents {
			raw = append(raw, contents[i].Logs...)
			contents[i].Logs = nil
			maps.Copy(j.known, contents[i].Txs)
		}
	}
	if !byReceipts {
		merged = len(fl.filter.templateTopics) > 0 && st.sourceCount() > fl.addressChunk()/2 && fl.topicMode.merged(ctx, fl, st, j.from, j.to)
		if merged {
			raw, err = fl.rangeLogsUnfiltered(ctx, j.from, j.to, fl.filter.allTopics)
		} else {
			raw, err = fl.rangeLogs(ctx, j.from, j.to, fl.filter.fixedAddrs, fl.filter.fixedTopics)
		}
		if err != nil {
			fail(err)
			return
		}
	}
	fetching := time.Since(began) // the sizer judges the node's getLogs work, not waits between stages
	if byReceipts {
		fetching = 0 // not a getLogs answer: only its log count steers the range size
		fl.metrics.backfillRanges.WithLabelValues(LogSourceReceipts).Inc()
	} else {
		fl.metrics.backfillRanges.WithLabelValues(LogSourceLogs).Inc()
	}
	wide := merged || byReceipts // raw holds the logs of every address
	// The logs are filtered in place: a range holds a few hundred thousand of them, and each
	// copy of a types.Log is 170 bytes more for the collector.
	raw = dropRemoved(raw)
	sortLogs(raw)

	select {
	case <-prev:
	case <-ctx.Done():
		fail(ctx.Err())
		return
	}
	j.created = map[int64][]store.DataSource{}
	for i := range raw {
		if !fl.filter.wantFixed(&raw[i]) {
			continue // a data source's log or another contract's (wide), or a foreign topic
		}
		for _, d := range fl.handler.Discover(&raw[i]) {
			if st.addSource(d) {
				j.created[d.Block] = append(j.created[d.Block], d)
			}
		}
	}
	templates := len(fl.filter.templateTopics) > 0
	var addrs []common.Address
	if !wide && templates {
		addrs = st.sourceAddrs()
	}
	close(j.discovered)
	discoveredClosed = true

	// keepTemplate reports whether lg is a handled log of a known data source.
	foreign := 0
	keepTemplate := func(lg *types.Log) (bool, error) {
		d, ok := st.source(lg.Address)
		if lg.Removed || !ok || !fl.filter.wantTemplate(lg, d) {
			foreign++
			return false, nil
		}
		for _, nd := range fl.handler.Discover(lg) {
			if _, known := st.source(nd.Address); !known {
				return false, fmt.Errorf("a %s log at block %d creates data source %s: data sources created by template logs are not supported",
					d.Template, lg.BlockNumber, nd.Address)
			}
		}
		return true, nil
	}
	all := raw[:0]
	for i := range raw {
		keep := fl.filter.wantFixed(&raw[i])
		if !keep && wide && templates {
			var err error
			if keep, err = keepTemplate(&raw[i]); err != nil {
				fail(err)
				return
			}
		}
		if keep {
			all = append(all, raw[i])
		}
	}
	if len(addrs) > 0 {
		t0 := time.Now()
		tmplRaw, err := fl.rangeLogs(ctx, j.from, j.to, addrs, fl.filter.templateTopics)
		if err != nil {
			fail(err)
			return
		}
		fetching += time.Since(t0)
		all = slices.Grow(all, len(tmplRaw)) // raw past all is spent
		for i := range tmplRaw {
			keep, err := keepTemplate(&tmplRaw[i])
			if err != nil {
				fail(err)
				return
			}
			if keep {
				all = append(all, tmplRaw[i])
			}
		}
		sortLogs(all)
	}
	if merged {
		fl.topicMode.observe(len(all), foreign, j.to-j.from+1)
	}
	all = dedupLogs(all)
	j.logs = len(all)
	fl.sizer.Success(uint64(j.to-j.from+1), len(all), fetching)
	j.logsTook = time.Since(began)

	j.blocks = groupBlocks(all, st)
	if contents != nil {
		for _, blk := range j.blocks {
			blk.Known = contents[blk.Ptr.Number-j.from].Txs
		}
	}
	head, err := fl.src.HeaderByNumber(ctx, big.NewInt(j.to))
	if err != nil {
		fail(fmt.Errorf("header %d: %w", j.to, err))
		return
	}
	if head == nil {
		fail(fmt.Errorf("node does not have block %d", j.to))
		return
	}
	j.head = ptrOf(head)
	if n := len(j.blocks); n > 0 && j.blocks[n-1].Ptr.Number == j.to {
		if j.blocks[n-1].Ptr.Hash != j.head.Hash {
			fail(fmt.Errorf("logs of block %d name hash %s, its header %s: the range is not final", j.to, j.blocks[n-1].Ptr.Hash, j.head.Hash))
			return
		}
		j.blocks[n-1].Ptr = j.head
	}
	// Transactions and Prepare's calls are independent requests: overlap them.
	t0 := time.Now()
	txErr := make(chan error, 1)
	go func() {
		stats, err := fl.fetchTxs(ctx, j.blocks, j.known)
		j.txsTook = time.Since(t0)
		if err == nil {
			fl.observeDensity(j, contents, stats)
		}
		txErr <- err
	}()
	var prepErr error
	if len(j.blocks) > 0 {
		prepErr = fl.handler.Prepare(ctx, j.blocks)
	}
	j.prepareTook = time.Since(t0)
	if err := <-txErr; err != nil {
		fail(err)
		return
	}
	if prepErr != nil {
		fail(fmt.Errorf("prepare: %w", prepErr))
		return
	}
	j.ready = time.Now()
}

// sortLogs orders logs by (block, index). Answers of one request come ordered, so the check
// usually is all it costs.
func sortLogs(logs []types.Log) {
	less := func(a, b *types.Log) bool {
		if a.BlockNumber != b.BlockNumber {
			return a.BlockNumber < b.BlockNumber
		}
		return a.Index < b.Index
	}
	for i := 1; i < len(logs); i++ {
		if less(&logs[i], &logs[i-1]) {
			sort.SliceStable(logs, func(i, j int) bool { return less(&logs[i], &logs[j]) })
			return
		}
	}
}

// dropRemoved filters out logs marked removed, in place.
func dropRemoved(logs []types.Log) []types.Log {
	out := logs[:0]
	for i := range logs {
		if !logs[i].Removed {
			out = append(out, logs[i])
		}
	}
	return out
}

func dedupLogs(logs []types.Log) []types.Log {
	out := logs[:0]
	for i := range logs {
		if i > 0 && logs[i].BlockNumber == logs[i-1].BlockNumber && logs[i].Index == logs[i-1].Index {
			continue
		}
		out = append(out, logs[i])
	}
	return out
}

// progress measures a backfill for logs, metrics and Status.
type progress struct {
	start        time.Time
	from, to     int64
	blocks, logs int64
}

func newProgress(from, to int64) *progress {
	return &progress{start: time.Now(), from: from, to: to}
}

func (p *progress) add(blocks int64, logs int) {
	p.blocks += blocks
	p.logs += int64(logs)
}

func (p *progress) snapshot(at int64) BackfillStatus {
	el := time.Since(p.start).Seconds()
	s := BackfillStatus{From: p.from, To: p.to, Done: at, Logs: p.logs}
	if el > 0 {
		s.BlocksPerSec = float64(p.blocks) / el
		s.LogsPerSec = float64(p.logs) / el
	}
	if s.BlocksPerSec > 0 {
		s.ETA = time.Duration(float64(p.to-at) / s.BlocksPerSec * float64(time.Second))
	}
	return s
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }

// topicMode decides whether backfill ranges fetch every handled topic in one unfiltered request
// (merged) instead of one request for the fixed contracts plus one per chunk of data-source
// addresses. On a node each request scans the whole range, so with thousands of data sources
// merged mode saves most of the node's work, but only where the topics are (nearly) unique to
// the handled contracts: ERC-721 Transfer on a public chain is not, and there merged mode would
// pull in every token transfer. So it is used only while measured answers stay mostly ours:
// a small probe range decides first, each merged range updates the figures, and address mode
// probes again every probeEvery ranges.
type topicMode struct {
	mu          sync.Mutex
	ours, other float64 // decayed log counts of merged answers
	blocks      float64
	known       bool
	sinceProbe  int
	probing     bool
}

const (
	probeBlocks = 10
	probeEvery  = 100
	// merged mode is kept while other contracts' logs are at most this share of an answer and
	// this many per block
	maxForeignShare    = 0.5
	maxForeignPerBlock = 200
)

func (m *topicMode) ok() bool {
	if !m.known || m.blocks == 0 {
		return false
	}
	total := m.ours + m.other
	return total == 0 || (m.other/total <= maxForeignShare && m.other/m.blocks <= maxForeignPerBlock)
}

// merged reports whether the range should use merged mode, probing first when due.
func (m *topicMode) merged(ctx context.Context, fl *Follower, st *chainState, from, to int64) bool {
	m.mu.Lock()
	due := !m.probing && (!m.known || (!m.ok() && m.sinceProbe >= probeEvery))
	m.sinceProbe++
	if !due {
		use := m.ok()
		m.mu.Unlock()
		return use
	}
	m.probing = true
	m.mu.Unlock()

	hi := min(to, from+probeBlocks-1)
	logs, err := fl.rangeLogsUnfiltered(ctx, from, hi, fl.filter.allTopics)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.probing = false
	m.sinceProbe = 0
	if err != nil {
		return false // address mode; probe again later
	}
	var ours, other int
	for i := range logs {
		lg := &logs[i]
		if fl.filter.wantFixed(lg) {
			ours++
		} else if d, ok := st.source(lg.Address); ok && fl.filter.wantTemplate(lg, d) {
			ours++
		} else {
			other++ // includes sources created inside the probe: an underestimate on the safe side
		}
	}
	m.ours, m.other, m.blocks, m.known = float64(ours), float64(other), float64(hi-from+1), true
	use := m.ok()
	fl.log.Info("backfill log fetch mode", "merged", use, "probe_blocks", hi-from+1, "handled_logs", ours, "other_logs", other)
	return use
}

// observe records a merged answer.
func (m *topicMode) observe(ours, other int, blocks int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	const keep = 0.8 // decay: recent ranges weigh most
	was := m.ok()
	m.ours = m.ours*keep + float64(ours)
	m.other = m.other*keep + float64(other)
	m.blocks = m.blocks*keep + float64(blocks)
	if was && !m.ok() {
		m.sinceProbe = 0
	}
}

// observeDensity feeds receiptsMode with how much of the range's blocks the handled
// transactions were.
func (fl *Follower) observeDensity(j *rangeJob, contents []source.BlockContent, stats source.TxStats) {
	blocks := float64(j.to - j.from + 1)
	wanted := 0
	for _, blk := range j.blocks {
		wanted += len(blk.Txs)
	}
	if contents != nil {
		all := 0
		for i := range contents {
			all += len(contents[i].Txs)
		}
		fl.rcptMode.observe(fl.log, float64(wanted), float64(all))
		return
	}
	if stats.Blocks == 0 {
		// No block said how many transactions it holds (no handled logs, or no block receipts):
		// count a transaction per block, enough to say "not worth the receipts".
		fl.rcptMode.observe(fl.log, float64(wanted), max(blocks, float64(wanted)))
		return
	}
	// Blocks without handled logs hold about as many transactions as those with.
	perBlock := float64(stats.BlockTxs) / float64(stats.Blocks)
	all := float64(stats.BlockTxs) + (blocks-float64(stats.Blocks))*perBlock
	fl.rcptMode.observe(fl.log, float64(stats.Wanted), max(all, float64(stats.Wanted)))
}

// receiptsMode decides whether backfill ranges take their logs and transactions from the
// blocks' receipts (source.BlockContents: eth_getBlockReceipts + the block with its
// transactions, per block) instead of eth_getLogs plus receipts and transactions of the blocks
// with handled logs. The receipts carry every log, so where the handled transactions are most
// of the blocks' transactions (a chain or a stretch of history that is mostly ours) the
// eth_getLogs call is work the node does twice; where they are few (a public chain: Base's
// blocks hold hundreds of other transactions) receipts for every block would cost far more.
// The choice follows the measured share of handled transactions among the blocks'
// transactions, with hysteresis, in both modes.
type receiptsMode struct {
	setting     string // Config.BackfillLogSource
	mu          sync.Mutex
	wanted, all float64 // decayed transaction counts: handled ones, all in the ranges' blocks
	ranges      int
	on, never   bool
}

const (
	receiptsEnter = 0.75 // handled share of the blocks' transactions to switch to receipts
	receiptsLeave = 0.5  // and back to eth_getLogs
	receiptsKeep  = 0.5  // decay per observed range
)

func (m *receiptsMode) use() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.never || m.setting == LogSourceLogs:
		return false
	case m.setting == LogSourceReceipts:
		return true
	}
	return m.on
}

// unsupported turns receipts mode off for good: the endpoint cannot serve it.
func (m *receiptsMode) unsupported(log *slog.Logger, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.never {
		log.Info("backfill log source: eth_getLogs (block receipts unavailable)", "err", err)
	}
	m.never = true
}

func (m *receiptsMode) observe(log *slog.Logger, wanted, all float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.wanted = m.wanted*receiptsKeep + wanted
	m.all = m.all*receiptsKeep + all
	m.ranges++
	if m.never || m.setting != LogSourceAuto || m.ranges < 2 || m.all <= 0 {
		return
	}
	share := m.wanted / m.all
	switch {
	case !m.on && share >= receiptsEnter:
		m.on = true
		log.Info("backfill log source: block receipts", "handled_tx_share", round1(share*100)/100)
	case m.on && share < receiptsLeave:
		m.on = false
		log.Info("backfill log source: eth_getLogs", "handled_tx_share", round1(share*100)/100)
	}
}
