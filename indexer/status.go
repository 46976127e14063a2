package indexer

import (
	"time"

	"github.com/echain/echain-indexer/indexer/source"
	"github.com/echain/echain-indexer/store"
)

// Status is a snapshot of the follower for the status command, health checks and metrics.
type Status struct {
	Mode       string         // starting, standby, backfill, realtime, resync, stopped, failed
	Leader     bool           // this process holds the indexing lock
	ChainHead  int64          // latest head the node announced
	Finalized  int64          // latest block treated as final
	Indexed    store.BlockPtr // the cursor: last committed block
	LagBlocks  int64          // ChainHead - Indexed.Number
	LagSeconds float64        // now - Indexed.Timestamp
	Backfill   *BackfillStatus
	// IndexesReady: the query indexes skipped during backfill are built (this process built them)
	IndexesReady bool
	Reorgs       int
	LastReorg    *Reorg
	Sources      []source.EndpointStatus // each RPC endpoint's head and health
	Err          string                  // the last step's error while retrying, empty when healthy
}

// BackfillStatus describes the running (or last) backfill.
type BackfillStatus struct {
	From, To, Done int64 // range and the last committed block
	Logs           int64
	BlocksPerSec   float64
	LogsPerSec     float64
	ETA            time.Duration
}

// Reorg describes a handled reorganisation.
type Reorg struct {
	At    time.Time
	Depth int64
	From  store.BlockPtr // the old head
	To    store.BlockPtr // the common ancestor reverted to
}

// Status returns a snapshot; safe from any goroutine.
func (fl *Follower) Status() Status {
	fl.mu.Lock()
	s := fl.status
	fl.mu.Unlock()
	if s.Backfill != nil {
		b := *s.Backfill
		s.Backfill = &b
	}
	if s.LastReorg != nil {
		r := *s.LastReorg
		s.LastReorg = &r
	}
	if s.Indexed.Timestamp > 0 {
		s.LagSeconds = max(time.Since(time.Unix(s.Indexed.Timestamp, 0)).Seconds(), 0)
	}
	s.Sources = fl.src.Endpoints()
	return s
}

func (fl *Follower) setMode(m string) {
	fl.mu.Lock()
	fl.status.Mode = m
	fl.mu.Unlock()
}

func (fl *Follower) setLeader(b bool) {
	fl.mu.Lock()
	fl.status.Leader = b
	fl.mu.Unlock()
}

func (fl *Follower) setErr(err error) {
	fl.mu.Lock()
	if err == nil {
		fl.status.Err = ""
	} else {
		fl.status.Err = err.Error()
	}
	fl.mu.Unlock()
}

func (fl *Follower) setFailed(err error) {
	fl.mu.Lock()
	fl.status.Mode = modeFailed
	fl.status.Err = err.Error()
	fl.mu.Unlock()
}

func (fl *Follower) setBackfill(b BackfillStatus) {
	fl.mu.Lock()
	fl.status.Backfill = &b
	fl.mu.Unlock()
}

func (fl *Follower) noteReorg(r Reorg) {
	fl.mu.Lock()
	fl.status.Reorgs++
	fl.status.LastReorg = &r
	fl.mu.Unlock()
}

// setIndexed publishes the cursor after a commit or revert.
func (fl *Follower) setIndexed(st *chainState) {
	head := st.head
	fl.metrics.indexed.Set(float64(head.Number))
	fl.metrics.finalized.Set(float64(st.finalized))
	chain := fl.chainHeadNumber()
	lag := max(chain-head.Number, 0)
	fl.metrics.lagBlocks.Set(float64(lag))
	if head.Timestamp > 0 {
		fl.metrics.lagSeconds.Set(max(time.Since(time.Unix(head.Timestamp, 0)).Seconds(), 0))
	}
	fl.mu.Lock()
	fl.status.Indexed = head
	fl.status.Finalized = st.finalized
	fl.status.LagBlocks = lag
	fl.mu.Unlock()
}
