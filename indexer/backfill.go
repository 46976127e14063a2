package indexer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
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
	sized      chan struct{} // closed once its answers were told to the range sizer (or it failed)
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
		prevSized, prevDone := prev, prev
		probes := 0
		for next := from; next <= to; {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			// While the size is still growing (a sparse history's first answers), a range sized
			// before the previous one answered would take the old, smaller size: wait for it.
			if fl.sizer.Growing() {
				select {
				case <-prevSized:
				case <-ctx.Done():
					return
				}
			}
			end := int64(fl.sizer.Next(uint64(next), uint64(to)))
			// Until auto has seen one range's transactions it cannot tell whether receipts pay:
			// ranges fetched in flight meanwhile all take eth_getLogs, the dearer way on a chain
			// that is mostly ours. So the first ranges are small and one at a time (a few, in
			// case one is not observed).
			if probes < decideProbes && fl.rcptMode.undecided() {
				probes++
				select {
				case <-prevDone:
				case <-ctx.Done():
					return
				}
				if fl.rcptMode.undecided() {
					end = min(end, next+decideBlocks-1)
				}
			}
			j := &rangeJob{from: next, to: min(max(end, next), to), discovered: make(chan struct{}),
				sized: make(chan struct{}), done: make(chan struct{})}
			wg.Add(1)
			go func(j *rangeJob, prev chan struct{}) {
				defer wg.Done()
				fl.runRange(ctx, st, j, prev)
			}(j, prev)
			prev, prevSized, prevDone = j.discovered, j.sized, j.done
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

// runRange moves one range through the pipeline: its logs by the strategy fetchRange picks,
// then (after the previous range's discovery) the data sources they create, the data sources'
// logs, the transactions, and Prepare.
func (fl *Follower) runRange(ctx context.Context, st *chainState, j *rangeJob, prev <-chan struct{}) {
	discoveredClosed, sizedClosed := false, false
	defer func() {
		if !discoveredClosed {
			close(j.discovered)
		}
		if !sizedClosed {
			close(j.sized)
		}
		close(j.done)
	}()
	fail := func(err error) { j.err = fmt.Errorf("backfill range %d-%d: %w", j.from, j.to, err) }
	j.began = time.Now()

	f, err := fl.fetchRange(ctx, st, j)
	if err != nil {
		fail(err)
		return
	}
	// The logs are filtered in place: a range holds a few hundred thousand of them, and each
	// copy of a types.Log is 170 bytes more for the collector.
	f.raw = dropRemoved(f.raw)
	sortLogs(f.raw)

	select {
	case <-prev:
	case <-ctx.Done():
		fail(ctx.Err())
		return
	}
	j.created = fl.discoverFixed(st, f.raw)
	var addrs []common.Address
	if !f.wide && len(fl.filter.templateTopics) > 0 {
		addrs = st.sourceAddrs()
	}
	close(j.discovered)
	discoveredClosed = true

	all, err := fl.handledLogs(ctx, st, j, f, addrs)
	if err != nil {
		fail(err)
		return
	}
	j.logs = len(all)
	answer := f.answerLogs
	if answer == 0 {
		answer = len(all)
	}
	fl.sizer.Success(uint64(j.to-j.from+1), answer, f.fetching)
	close(j.sized)
	sizedClosed = true
	j.logsTook = time.Since(j.began)

	if err := fl.finishRange(ctx, st, j, all, f); err != nil {
		fail(err)
		return
	}
	j.ready = time.Now()
}

// rangeFetch is what a fetching strategy got for a range before discovery.
type rangeFetch struct {
	raw []types.Log
	// wide: raw holds the handled topics of every address, the data sources' logs included;
	// else only the fixed contracts' logs, and the sources' logs are fetched after discovery.
	wide   bool
	merged bool // wide by one unfiltered eth_getLogs (topicMode observes how that went)
	// contents are the range's blocks from their receipts, in receipts mode.
	contents []source.BlockContent
	// last is the header of the range's last block when it came with the logs (eth_getLogs
	// batches carry it as their check that the endpoint has the range).
	last *types.Header
	// fetching is how long the node worked on one eth_getLogs answer (the longest), for the
	// range sizer.
	fetching time.Duration
	// answerLogs is the most logs one eth_getLogs answer held (the sizer's target is per
	// answer: the fixed contracts' logs and the data sources' come in separate answers); 0
	// when not by eth_getLogs.
	answerLogs int
}

// fetchRange takes the range's logs from the blocks' receipts when receiptsMode says so (see
// range_auto.go), else by eth_getLogs (range_getlogs.go).
func (fl *Follower) fetchRange(ctx context.Context, st *chainState, j *rangeJob) (*rangeFetch, error) {
	if fl.rcptMode.use() {
		f, err := fl.fetchByReceipts(ctx, j)
		if !errors.Is(err, source.ErrReceiptsUnsupported) {
			return f, err
		}
		fl.rcptMode.unsupported(fl.log, err)
	}
	return fl.fetchByGetLogs(ctx, st, j)
}

// discoverFixed adds the data sources the fixed contracts' logs create to st, in log order,
// and returns them by block.
func (fl *Follower) discoverFixed(st *chainState, logs []types.Log) map[int64][]store.DataSource {
	created := map[int64][]store.DataSource{}
	for i := range logs {
		if !fl.filter.wantFixed(&logs[i]) {
			continue // a data source's log or another contract's (wide), or a foreign topic
		}
		for _, d := range fl.handler.Discover(&logs[i]) {
			if st.addSource(d) {
				created[d.Block] = append(created[d.Block], d)
			}
		}
	}
	return created
}

// handledLogs keeps the handled logs of f.raw (in place) and, when f is not wide, adds the
// logs of the data sources addrs; sorted and deduplicated.
func (fl *Follower) handledLogs(ctx context.Context, st *chainState, j *rangeJob, f *rangeFetch, addrs []common.Address) ([]types.Log, error) {
	templates := len(fl.filter.templateTopics) > 0
	foreign := 0
	all := f.raw[:0]
	for i := range f.raw {
		keep := fl.filter.wantFixed(&f.raw[i])
		if !keep && f.wide && templates {
			var err error
			if keep, err = fl.keepTemplate(st, &f.raw[i]); err != nil {
				return nil, err
			}
			if !keep {
				foreign++
			}
		}
		if keep {
			all = append(all, f.raw[i])
		}
	}
	f.raw = nil
	if len(addrs) > 0 {
		var err error
		if all, err = fl.appendSourceLogs(ctx, st, j, f, addrs, all); err != nil {
			return nil, err
		}
	}
	if f.merged {
		fl.topicMode.observe(len(all), foreign, j.to-j.from+1)
	}
	return dedupLogs(all), nil
}

// keepTemplate reports whether lg is a handled log of a known data source.
func (fl *Follower) keepTemplate(st *chainState, lg *types.Log) (bool, error) {
	d, ok := st.source(lg.Address)
	if lg.Removed || !ok || !fl.filter.wantTemplate(lg, d) {
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

// finishRange groups the range's handled logs into blocks, checks the last against its header
// and fetches the transactions, then runs Prepare.
func (fl *Follower) finishRange(ctx context.Context, st *chainState, j *rangeJob, all []types.Log, f *rangeFetch) error {
	j.blocks = groupBlocks(all, st)
	contents := f.contents
	// The range's last header is asked for only when it did not come with the range's data:
	// one request per range fewer, which on a rate-limited provider is a share of the backfill
	// (many small ranges while auto decides, one header per range on a sparse chain).
	switch n := len(contents); {
	case n > 0 && contents[n-1].Number == uint64(j.to) && contents[n-1].ParentHash != (common.Hash{}):
		last := &contents[n-1]
		j.head = store.BlockPtr{Number: j.to, Hash: last.Hash, ParentHash: last.ParentHash, Timestamp: int64(last.Timestamp)}
	case f.last != nil && f.last.Number.Int64() == j.to:
		j.head = ptrOf(f.last)
	default:
		head, err := fl.header(ctx, big.NewInt(j.to))
		if err != nil {
			return fmt.Errorf("header %d: %w", j.to, err)
		}
		if head == nil {
			return fmt.Errorf("node does not have block %d", j.to)
		}
		j.head = ptrOf(head)
	}
	if n := len(j.blocks); n > 0 && j.blocks[n-1].Ptr.Number == j.to {
		if j.blocks[n-1].Ptr.Hash != j.head.Hash {
			return fmt.Errorf("logs of block %d name hash %s, its header %s: the range is not final", j.to, j.blocks[n-1].Ptr.Hash, j.head.Hash)
		}
		j.blocks[n-1].Ptr = j.head
	}
	// Prepare reads the transactions (calldata names nearly every new event's details), so it
	// follows their fetch rather than asking the node for them again.
	t0 := time.Now()
	stats, err := fl.fetchTxs(ctx, j.blocks, j.known)
	j.txsTook = time.Since(t0)
	if err != nil {
		return err
	}
	fl.observeDensity(ctx, j, contents, stats)
	t1 := time.Now()
	if len(j.blocks) > 0 {
		if err := fl.handler.Prepare(ctx, j.blocks); err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
	}
	j.prepareTook = time.Since(t1)
	return nil
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
