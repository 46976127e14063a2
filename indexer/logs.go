package indexer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/big"
	"math/bits"
	"slices"
	"sort"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/echain/echain-indexer/indexer/source"
	"github.com/echain/echain-indexer/store"
)

// logFilter knows which logs the handler wants: fixed contracts by address and topic0, template
// instances by the data sources learned so far.
type logFilter struct {
	fixed          map[common.Address]Contract
	fixedAddrs     []common.Address
	fixedTopics    []common.Hash // union over the fixed contracts
	fixedTopicSet  map[common.Address]map[common.Hash]bool
	templateTopics []common.Hash // union over the templates
	templateSet    map[string]map[common.Hash]bool
	allTopics      []common.Hash
	minStart       int64
}

func newLogFilter(h Handler) (*logFilter, error) {
	f := &logFilter{
		fixed:         map[common.Address]Contract{},
		fixedTopicSet: map[common.Address]map[common.Hash]bool{},
		templateSet:   map[string]map[common.Hash]bool{},
		minStart:      -1,
	}
	seenFixed, seenTmpl, seenAll := map[common.Hash]bool{}, map[common.Hash]bool{}, map[common.Hash]bool{}
	for _, c := range h.Contracts() {
		if _, dup := f.fixed[c.Address]; dup {
			return nil, fmt.Errorf("handler lists contract %s twice", c.Address)
		}
		if len(c.Topics) == 0 {
			return nil, fmt.Errorf("handler contract %s (%s) handles no topics", c.Name, c.Address)
		}
		f.fixed[c.Address] = c
		f.fixedAddrs = append(f.fixedAddrs, c.Address)
		set := map[common.Hash]bool{}
		for _, t := range c.Topics {
			set[t] = true
			if !seenFixed[t] {
				seenFixed[t] = true
				f.fixedTopics = append(f.fixedTopics, t)
			}
			if !seenAll[t] {
				seenAll[t] = true
				f.allTopics = append(f.allTopics, t)
			}
		}
		f.fixedTopicSet[c.Address] = set
		if f.minStart < 0 || int64(c.StartBlock) < f.minStart {
			f.minStart = int64(c.StartBlock)
		}
	}
	if len(f.fixed) == 0 {
		return nil, fmt.Errorf("handler has no contracts to follow")
	}
	for _, t := range h.Templates() {
		set := map[common.Hash]bool{}
		for _, tp := range t.Topics {
			set[tp] = true
			if !seenTmpl[tp] {
				seenTmpl[tp] = true
				f.templateTopics = append(f.templateTopics, tp)
			}
			if !seenAll[tp] {
				seenAll[tp] = true
				f.allTopics = append(f.allTopics, tp)
			}
		}
		f.templateSet[t.Name] = set
	}
	return f, nil
}

// wantFixed reports whether lg is a handled log of a fixed contract.
func (f *logFilter) wantFixed(lg *types.Log) bool {
	c, ok := f.fixed[lg.Address]
	if !ok || len(lg.Topics) == 0 || lg.BlockNumber < c.StartBlock {
		return false
	}
	return f.fixedTopicSet[lg.Address][lg.Topics[0]]
}

// wantTemplate reports whether lg is a handled log of the data source d.
func (f *logFilter) wantTemplate(lg *types.Log, d store.DataSource) bool {
	if len(lg.Topics) == 0 || int64(lg.BlockNumber) < d.Block {
		return false
	}
	return f.templateSet[d.Template][lg.Topics[0]]
}

// mayHold reports whether a block with this header bloom can hold a handled log of the fixed
// contracts or of the sources: a block's bloom holds every address and topic of its logs, so a
// bloom without any of ours proves the block has none of our logs (a false positive costs one
// fetch). The bloom is part of the header the block hash covers.
func (f *logFilter) mayHold(bloom types.Bloom, sources []common.Address) bool {
	if !slices.ContainsFunc(f.allTopics, func(t common.Hash) bool { return types.BloomLookup(bloom, t) }) {
		return false
	}
	in := func(a common.Address) bool { return types.BloomLookup(bloom, a) }
	return slices.ContainsFunc(f.fixedAddrs, in) || slices.ContainsFunc(sources, in)
}

// bloomSparse reports whether a bloom has at most a quarter of its bits set. Then a block that
// matches one of our (address, topic) pairs holds our logs but for a few per cent of false
// positives; a busier block's bloom matches nearly anything.
func bloomSparse(b types.Bloom) bool {
	n := 0
	for _, x := range b {
		n += bits.OnesCount8(x)
	}
	return n <= types.BloomBitLength/4
}

// skippedFor reports whether a block of headers that was passed over (may false) may hold logs
// of the sources just created.
func (fl *Follower) skippedFor(headers []*types.Header, may []bool, created []store.DataSource) bool {
	addrs := make([]common.Address, len(created))
	for i, d := range created {
		addrs[i] = d.Address
	}
	for i, h := range headers {
		if !may[i] && fl.filter.mayHold(h.Bloom, addrs) {
			return true
		}
	}
	return false
}

func topicFilter(topics []common.Hash) [][]common.Hash {
	return [][]common.Hash{topics}
}

// rangeLogs fetches the logs of [from, to] for addrs (chunked) and topics. When the provider
// calls the range too large the sizer shrinks and the range is fetched in parts (at the size
// the provider suggested, when it did): the caller's range stays one unit of work. last is the
// header of block to, which came in the same batches (nil when no request was made).
func (fl *Follower) rangeLogs(ctx context.Context, from, to int64, addrs []common.Address, topics []common.Hash) (logs []types.Log, last *types.Header, err error) {
	if len(addrs) == 0 || len(topics) == 0 || from > to {
		return nil, nil, nil
	}
	for i := 0; i < len(addrs); {
		n := fl.addressChunk()
		chunk := addrs[i:min(i+n, len(addrs))]
		got, h, err := fl.rangeLogsChunk(ctx, from, to, chunk, topics, 0)
		if errors.Is(err, source.ErrTooManyAddresses) && len(chunk) > 1 {
			fl.shrinkAddressChunk(len(chunk))
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		logs = append(logs, got...)
		last = cmp.Or(h, last)
		i += len(chunk)
	}
	return logs, last, nil
}

// rangeLogsUnfiltered fetches every log of [from, to] with one of the topics, from any address,
// and the header of block to, as rangeLogs.
func (fl *Follower) rangeLogsUnfiltered(ctx context.Context, from, to int64, topics []common.Hash) ([]types.Log, *types.Header, error) {
	if from > to {
		return nil, nil, nil
	}
	return fl.rangeLogsChunk(ctx, from, to, nil, topics, 0)
}

// addressChunk is the number of addresses one eth_getLogs may name: the configured chunk until
// a provider refused that many.
func (fl *Follower) addressChunk() int {
	return int(fl.addrChunk.Load())
}

func (fl *Follower) shrinkAddressChunk(refused int) {
	n := int64(max(refused/2, 1))
	for {
		cur := fl.addrChunk.Load()
		if cur <= n || fl.addrChunk.CompareAndSwap(cur, n) {
			break
		}
	}
	fl.log.Warn("provider refused the number of addresses in eth_getLogs; asking for fewer", "refused", refused, "now", fl.addrChunk.Load())
}

func (fl *Follower) rangeLogsChunk(ctx context.Context, from, to int64, addrs []common.Address, topics []common.Hash, depth int) ([]types.Log, *types.Header, error) {
	q := ethereum.FilterQuery{
		FromBlock: big.NewInt(from),
		ToBlock:   big.NewInt(to),
		Addresses: addrs,
		Topics:    topicFilter(topics),
	}
	logs, last, err := fl.src.LogsAndHeader(ctx, q)
	if err == nil {
		return logs, last, nil
	}
	retryTo, ok := fl.sizer.Failure(uint64(from), uint64(to), err)
	if !ok || depth > 64 {
		return nil, nil, fmt.Errorf("eth_getLogs %d-%d: %w", from, to, err)
	}
	fl.metrics.rangeSplits.Inc()
	out, last, err := fl.rangeLogsChunk(ctx, from, int64(retryTo), addrs, topics, depth+1)
	if err != nil {
		return nil, nil, err
	}
	if int64(retryTo) < to {
		rest, restLast, err := fl.rangeLogsChunk(ctx, int64(retryTo)+1, to, addrs, topics, depth+1)
		if err != nil {
			return nil, nil, err
		}
		out, last = append(out, rest...), restLast
	}
	return out, last, nil
}

// blockLogs fetches the handled logs of one block by its hash, so that they match the header,
// and the data sources they create. Logs of sources created in the block are included.
func (fl *Follower) blockLogs(ctx context.Context, blockHash common.Hash, st *chainState) ([]types.Log, []store.DataSource, error) {
	known := st.sourceAddrs()
	addrs := append(append([]common.Address{}, fl.filter.fixedAddrs...), known...)
	byAddress := len(addrs) <= fl.addressChunk()
	q := ethereum.FilterQuery{BlockHash: &blockHash, Topics: topicFilter(fl.filter.allTopics)}
	if byAddress {
		q.Addresses = addrs
	}
	// Beyond one chunk of addresses a single topic-filtered request for the block costs the node
	// less than several address chunks, and one block's logs stay small.
	logs, err := fl.src.Logs(ctx, q)
	if byAddress && errors.Is(err, source.ErrTooManyAddresses) {
		fl.shrinkAddressChunk(len(addrs))
		byAddress = false
		q.Addresses = nil
		logs, err = fl.src.Logs(ctx, q)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("eth_getLogs block %s: %w", blockHash, err)
	}
	ours, created := fl.selectLogs(logs, st, nil)
	if byAddress && len(created) > 0 {
		// The new sources were not in the request: fetch their logs of this block too.
		var naddrs []common.Address
		for _, d := range created {
			naddrs = append(naddrs, d.Address)
		}
		for len(naddrs) > 0 {
			q := ethereum.FilterQuery{BlockHash: &blockHash, Addresses: naddrs, Topics: topicFilter(fl.filter.templateTopics)}
			more, err := fl.src.Logs(ctx, q)
			if err != nil {
				return nil, nil, fmt.Errorf("eth_getLogs block %s (new sources): %w", blockHash, err)
			}
			logs = append(logs, more...)
			var again []store.DataSource
			ours, again = fl.selectLogs(logs, st, created)
			naddrs = naddrs[:0]
			for _, d := range again[len(created):] {
				naddrs = append(naddrs, d.Address)
			}
			created = again
		}
	}
	for _, lg := range ours {
		if lg.BlockHash != blockHash {
			return nil, nil, fmt.Errorf("node returned a log of block %s for block %s", lg.BlockHash, blockHash)
		}
	}
	return ours, created, nil
}

// selectLogs keeps the handled logs (deduplicated, logIndex order, none removed) and runs
// Discover until no new source appears: a source created by a log can emit handled logs later
// in the same block. created lists sources already found in these logs (kept first).
func (fl *Follower) selectLogs(logs []types.Log, st *chainState, created []store.DataSource) ([]types.Log, []store.DataSource) {
	sort.SliceStable(logs, func(i, j int) bool {
		if logs[i].BlockNumber != logs[j].BlockNumber {
			return logs[i].BlockNumber < logs[j].BlockNumber
		}
		return logs[i].Index < logs[j].Index
	})
	newSrc := map[common.Address]store.DataSource{}
	for _, d := range created {
		newSrc[d.Address] = d
	}
	lookup := func(a common.Address) (store.DataSource, bool) {
		if d, ok := newSrc[a]; ok {
			return d, true
		}
		return st.source(a)
	}
	for {
		var ours []types.Log
		grew := false
		for i := range logs {
			lg := &logs[i]
			if lg.Removed || (i > 0 && lg.BlockNumber == logs[i-1].BlockNumber && lg.Index == logs[i-1].Index) {
				continue
			}
			keep := fl.filter.wantFixed(lg)
			if !keep {
				if d, ok := lookup(lg.Address); ok {
					keep = fl.filter.wantTemplate(lg, d)
				}
			}
			if !keep {
				continue
			}
			ours = append(ours, *lg)
			for _, d := range fl.handler.Discover(lg) {
				if _, ok := lookup(d.Address); ok {
					continue
				}
				newSrc[d.Address] = d
				created = append(created, d)
				grew = true
			}
		}
		if !grew {
			return ours, created
		}
	}
}
