package indexer

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// fetchByGetLogs asks eth_getLogs for the range: once for every handled topic with no address
// filter (merged) when that is known to return few logs of other contracts (topicMode), else
// for the fixed contracts only, the data sources' logs following after discovery
// (appendSourceLogs).
func (fl *Follower) fetchByGetLogs(ctx context.Context, st *chainState, j *rangeJob) (*rangeFetch, error) {
	began := time.Now()
	f := &rangeFetch{}
	// A probe's answer holds every handled log of the range's first blocks: those blocks are not
	// asked for again, whichever mode it chose (address mode keeps its fixed contracts' logs and
	// asks for the data sources' logs of the whole range after discovery, as always).
	var probe []types.Log
	from := j.from
	if len(fl.filter.templateTopics) > 0 && st.sourceCount() > fl.addressChunk()/2 {
		var probeTo int64
		f.merged, probe, probeTo = fl.topicMode.merged(ctx, fl, st, j.from, j.to)
		if probe != nil {
			from = probeTo + 1
		}
	}
	var rest []types.Log
	var err error
	if f.merged {
		rest, f.last, err = fl.rangeLogsUnfiltered(ctx, from, j.to, fl.filter.allTopics)
	} else {
		rest, f.last, err = fl.rangeLogs(ctx, from, j.to, fl.filter.fixedAddrs, fl.filter.fixedTopics)
	}
	if err != nil {
		return nil, err
	}
	f.answerLogs = max(len(probe), len(rest))
	if probe != nil {
		f.raw = append(probe, rest...)
	} else {
		f.raw = rest
	}
	f.wide = f.merged
	f.fetching = time.Since(began) // the sizer judges the node's getLogs work, not waits between stages
	fl.metrics.backfillRanges.WithLabelValues(LogSourceLogs).Inc()
	return f, nil
}

// appendSourceLogs fetches the handled logs of the data sources addrs (in address chunks) and
// appends them to all, sorted.
func (fl *Follower) appendSourceLogs(ctx context.Context, st *chainState, j *rangeJob, f *rangeFetch, addrs []common.Address, all []types.Log) ([]types.Log, error) {
	t0 := time.Now()
	more, last, err := fl.rangeLogs(ctx, j.from, j.to, addrs, fl.filter.templateTopics)
	if err != nil {
		return nil, err
	}
	f.last = cmp.Or(f.last, last)
	// Per answer, like the logs: the data sources' answer is a request of its own.
	f.fetching = max(f.fetching, time.Since(t0))
	f.answerLogs = max(f.answerLogs, len(more))
	all = slices.Grow(all, len(more)) // the raw logs past all are spent
	for i := range more {
		keep, err := fl.keepTemplate(st, &more[i])
		if err != nil {
			return nil, err
		}
		if keep {
			all = append(all, more[i])
		}
	}
	sortLogs(all)
	return all, nil
}

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

// merged reports whether the range should use merged mode, probing first when due. A probe
// returns its answer, every handled topic of blocks from..probeTo from any address, so that the
// range does not fetch those blocks again.
func (m *topicMode) merged(ctx context.Context, fl *Follower, st *chainState, from, to int64) (use bool, probe []types.Log, probeTo int64) {
	m.mu.Lock()
	due := !m.probing && (!m.known || (!m.ok() && m.sinceProbe >= probeEvery))
	m.sinceProbe++
	if !due {
		use := m.ok()
		m.mu.Unlock()
		return use, nil, 0
	}
	m.probing = true
	m.mu.Unlock()

	hi := min(to, from+probeBlocks-1)
	logs, _, err := fl.rangeLogsUnfiltered(ctx, from, hi, fl.filter.allTopics)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.probing = false
	m.sinceProbe = 0
	if err != nil {
		return false, nil, 0 // address mode; probe again later
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
	use = m.ok()
	fl.log.Info("backfill log fetch mode", "merged", use, "probe_blocks", hi-from+1, "handled_logs", ours, "other_logs", other)
	if logs == nil {
		logs = []types.Log{} // an answer, though empty
	}
	return use, logs, hi
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
