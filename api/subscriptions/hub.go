package subscriptions

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"strconv"
	"sync"
	"time"

	gqlerrors "github.com/graph-gophers/graphql-go/errors"

	"github.com/echain/echain-indexer/api/graphql"
)

// blockRef is a processed change: the block results are computed at, and its place in the
// sequence of changes (block numbers go down on a revert; seq never does).
type blockRef struct {
	number   int64
	hash     string // "0x..", "" before the indexer's first block
	seq      uint64
	notified time.Time // when the notification arrived (delivery latency starts here)
}

// change is a notification as the processor sees it.
type change struct {
	block    int64
	hash     string
	kind     string              // commit, revert, resync
	all      bool                // re-run every operation (first connect, reconnect)
	types    map[string][]string // changed entity types and ids (nil list = some ids)
	notified time.Time
}

// op is one distinct subscription operation and its clients: it executes once per block that
// affects it, however many clients share it.
type op struct {
	o *operation

	mu      sync.Mutex
	subs    map[*sub]struct{}
	closed  bool // no subscriber left: results are dropped
	has     bool // a result was published
	seq     uint64
	sum     [sha256.Size]byte
	payload []byte // the last next/data payload, sent at once to clients that join
	dirty   bool   // the last execution failed transiently: run again at the next change
}

// sub is one client subscription.
type sub struct {
	id string
	c  *conn
	op *op
}

// attach registers a validated subscription. A client joining an operation that already has
// a result gets that result at once; a new operation executes now, at the current block.
func (s *Server) attach(sb *sub, o *operation) {
	s.mu.Lock()
	p := s.ops[o.key]
	if p != nil {
		p.mu.Lock()
		if p.closed { // failed for good a moment ago: start afresh
			p.mu.Unlock()
			p = nil
		}
	}
	created := p == nil
	if created {
		p = &op{o: o, subs: map[*sub]struct{}{}}
		s.ops[o.key] = p
		s.met.operations.Set(float64(len(s.ops)))
		p.mu.Lock()
	}
	at, ready, runCtx := s.cur, s.ready, s.runCtx
	s.nsubs++
	s.met.subscribers.Set(float64(s.nsubs))
	sb.op = p
	p.subs[sb] = struct{}{}
	if p.has {
		sb.c.sendResult(sb.id, p.payload, time.Time{})
	}
	p.mu.Unlock()
	s.mu.Unlock()
	if created && ready {
		// Off the reader goroutine: the client may send more while this executes.
		go s.execute(runCtx, p, at)
	}
	// Before the change feed is up, its first notification runs every operation.
}

// detach ends a subscription; the operation goes when its last client does.
func (s *Server) detach(sb *sub) {
	p := sb.op
	if p == nil {
		return
	}
	s.mu.Lock()
	p.mu.Lock()
	if _, ok := p.subs[sb]; ok {
		delete(p.subs, sb)
		s.nsubs--
		s.met.subscribers.Set(float64(s.nsubs))
	}
	if len(p.subs) == 0 && !p.closed {
		p.closed = true
		if s.ops[p.o.key] == p {
			delete(s.ops, p.o.key)
			s.met.operations.Set(float64(len(s.ops)))
		}
	}
	p.mu.Unlock()
	s.mu.Unlock()
}

// process handles notifications in order: each change re-runs the operations it affects, at
// its block, before the next change is looked at. Changes that queued up meanwhile are merged
// (executed once at the latest block) so a burst never builds a backlog.
func (s *Server) process(ctx context.Context, changes <-chan change) {
	retry := time.NewTicker(s.opts.RetryInterval)
	defer retry.Stop()
	for {
		var ch change
		select {
		case <-ctx.Done():
			return
		case ch = <-changes:
		merge:
			for {
				select {
				case next := <-changes:
					ch = mergeChanges(ch, next)
					s.met.coalesced.Inc()
				default:
					break merge
				}
			}
		case <-retry.C:
			s.retryDirty(ctx)
			continue
		}
		s.met.notifications.WithLabelValues(ch.kind).Inc()
		s.runChange(ctx, ch)
	}
}

func mergeChanges(a, b change) change {
	out := change{block: b.block, hash: b.hash, kind: b.kind, all: a.all || b.all, notified: a.notified}
	if a.kind == "revert" || b.kind == "revert" {
		out.kind = "revert"
	}
	if a.all || b.all {
		out.kind = "resync"
		return out
	}
	out.types = map[string][]string{}
	for _, m := range []map[string][]string{a.types, b.types} {
		for t, ids := range m {
			cur, seen := out.types[t]
			switch {
			case !seen:
				out.types[t] = append([]string(nil), ids...)
				if ids == nil {
					out.types[t] = nil
				}
			case cur == nil || ids == nil:
				out.types[t] = nil
			default:
				out.types[t] = append(cur, ids...)
			}
		}
	}
	return out
}

// runChange moves the current block to ch and re-executes the operations it affects.
func (s *Server) runChange(ctx context.Context, ch change) {
	s.mu.Lock()
	s.seq++
	at := blockRef{number: ch.block, hash: ch.hash, seq: s.seq, notified: ch.notified}
	s.cur, s.ready = at, true
	var run []*op
	for _, p := range s.ops {
		if ch.all || p.o.metaReads || p.o.affectedBy(ch.types) || p.isDirty() {
			run = append(run, p)
		}
	}
	s.mu.Unlock()
	s.met.lastBlock.Set(float64(ch.block))
	s.runAll(ctx, run, at)
	s.met.blockSeconds.Observe(time.Since(ch.notified).Seconds())
}

func (s *Server) retryDirty(ctx context.Context) {
	s.mu.Lock()
	at, ready := s.cur, s.ready
	var run []*op
	for _, p := range s.ops {
		if p.isDirty() {
			run = append(run, p)
		}
	}
	s.mu.Unlock()
	if ready && len(run) > 0 {
		at.notified = time.Time{} // a retry is not a fresh block: keep it out of the latency figures
		s.runAll(ctx, run, at)
	}
}

func (p *op) isDirty() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dirty || !p.has
}

// runAll executes ops at `at` with Options.Workers in parallel.
func (s *Server) runAll(ctx context.Context, run []*op, at blockRef) {
	if len(run) == 0 {
		return
	}
	workers := min(s.opts.Workers, len(run))
	next := make(chan *op)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range next {
				s.execute(ctx, p, at)
			}
		}()
	}
	for _, p := range run {
		next <- p
	}
	close(next)
	wg.Wait()
}

// execute runs an operation at a block and publishes the result if it changed.
func (s *Server) execute(ctx context.Context, p *op, at blockRef) {
	start := time.Now()
	res := s.eng.Execute(ctx, graphql.Request{Query: p.o.query, OperationName: p.o.name, Variables: p.o.vars},
		graphql.ExecOptions{AtBlock: at.number})
	s.met.execSeconds.Observe(time.Since(start).Seconds())
	s.publish(p, at, res)
}

// transientCodes are engine errors that say nothing about the subscription itself: the block
// went away in a reorg (its revert notification follows), the database was busy or down, or
// nothing is indexed yet. The operation runs again later instead of sending them.
var transientCodes = map[string]bool{
	"BLOCK_NOT_YET_INDEXED":    true,
	"BLOCK_HASH_UNKNOWN":       true,
	"BLOCK_PRUNED":             true,
	"LIMIT_CONCURRENT_QUERIES": true,
	"LIMIT_STATEMENT_TIMEOUT":  true,
	"LIMIT_QUERY_TIMEOUT":      true,
	"CANCELED":                 true,
	"INTERNAL":                 true,
	"NOT_STARTED":              true,
}

func transient(errs []*gqlerrors.QueryError) bool {
	for _, e := range errs {
		if c, _ := e.Extensions["code"].(string); transientCodes[c] {
			return true
		}
	}
	return false
}

// publish sends a result to the operation's clients if it is newer than the last one published
// and differs from it.
func (s *Server) publish(p *op, at blockRef, res *graphql.Result) {
	body := res.JSON()
	p.mu.Lock()
	if p.closed || (p.has && at.seq <= p.seq) {
		p.mu.Unlock()
		return
	}
	// Before the first block the engine answers at whatever is indexed by then: a block that
	// committed meanwhile is answered when its notification runs the operation, with its number.
	early := at.hash == "" && res.Data != nil
	if early || transient(res.Errors) || (res.Data == nil && len(res.Errors) == 0) {
		p.dirty = true
		p.mu.Unlock()
		s.met.executions.WithLabelValues("retry").Inc()
		s.log.Debug("subscriptions: execution failed transiently; it runs again", "block", at.number, "result", truncate(body, 300))
		return
	}
	if res.Data == nil && !p.has {
		// Refused before execution (a limit of the engine): the operation can never run.
		p.closed = true
		subs := p.drain()
		p.mu.Unlock()
		s.met.executions.WithLabelValues("error").Inc()
		s.dropOp(p)
		s.unsubscribed(len(subs))
		errs := make([]*requestError, 0, len(res.Errors))
		for _, e := range res.Errors {
			c, _ := e.Extensions["code"].(string)
			if c == "" {
				c = codeValidation
			}
			errs = append(errs, &requestError{code: c, msg: e.Message})
		}
		for _, sb := range subs {
			sb.c.failSub(sb, errs)
		}
		return
	}
	p.dirty = false
	p.seq = at.seq
	sum := sha256.Sum256(body)
	if p.has && sum == p.sum {
		p.mu.Unlock()
		s.met.executions.WithLabelValues("unchanged").Inc()
		return
	}
	p.has, p.sum = true, sum
	p.payload = resultPayload(res, at)
	// Counted before the pushes go out, so that whoever receives one sees the execution counted.
	s.met.executions.WithLabelValues("changed").Inc()
	// Many clients pick the same id ("1"): one encoded message per (protocol, id).
	var cache map[string][]byte
	if len(p.subs) > 1 {
		cache = make(map[string][]byte, 4)
	}
	for sb := range p.subs {
		sb.c.sendResultCached(sb.id, p.payload, at.notified, cache)
	}
	p.mu.Unlock()
}

// drain takes every subscriber off a closed operation. Callers hold p.mu.
func (p *op) drain() []*sub {
	out := make([]*sub, 0, len(p.subs))
	for sb := range p.subs {
		out = append(out, sb)
	}
	clear(p.subs)
	return out
}

// dropOp forgets an operation that failed for good; its subscribers are ended by the caller.
func (s *Server) dropOp(p *op) {
	s.mu.Lock()
	if s.ops[p.o.key] == p {
		delete(s.ops, p.o.key)
		s.met.operations.Set(float64(len(s.ops)))
	}
	s.mu.Unlock()
}

// unsubscribed accounts for subscribers taken off an operation by drain.
func (s *Server) unsubscribed(n int) {
	s.mu.Lock()
	s.nsubs -= n
	s.met.subscribers.Set(float64(s.nsubs))
	s.mu.Unlock()
}

// resultPayload renders an execution result with the block it reflects:
//
//	{"data":{...},"errors":[...],"extensions":{"block":{"number":N,"hash":"0x.."}}}
func resultPayload(res *graphql.Result, at blockRef) []byte {
	body := res.JSON() // {"data":..,"errors":..}
	var b bytes.Buffer
	b.Grow(len(body) + 100)
	b.Write(body[:len(body)-1])
	if len(body) > 2 {
		b.WriteByte(',')
	}
	b.WriteString(`"extensions":{"block":`)
	if at.hash == "" && at.number == 0 {
		b.WriteString("null")
	} else {
		b.WriteString(`{"number":`)
		b.WriteString(strconv.FormatInt(at.number, 10))
		b.WriteString(`,"hash":`)
		h, _ := json.Marshal(at.hash)
		b.Write(h)
		b.WriteByte('}')
	}
	b.WriteString("}}")
	return b.Bytes()
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
