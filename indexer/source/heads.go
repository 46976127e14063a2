package source

import (
	"context"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"
)

// Head source modes, reported by HeadState and the echain_indexer_rpc_subscription_mode gauge.
const (
	ModeWebSocket = "websocket" // eth_subscribe newHeads is live
	ModePolling   = "polling"   // WS down or not configured: polling the latest header over HTTP
	ModeStopped   = "stopped"   // no subscription running
)

// HeadState describes the head subscription for `echain-indexer status`.
type HeadState struct {
	Mode       string
	Endpoint   string // the endpoint the WebSocket is connected to
	Since      time.Time
	Reconnects uint64
	LastHead   uint64
	LastHeadAt time.Time
}

// HeadState reports the head subscription's current mode.
func (s *Source) HeadState() HeadState {
	s.headMu.Lock()
	defer s.headMu.Unlock()
	return s.head
}

func (s *Source) setMode(mode, endpoint string) {
	s.headMu.Lock()
	changed := s.head.Mode != mode || s.head.Endpoint != endpoint
	if changed {
		s.head.Mode, s.head.Endpoint, s.head.Since = mode, endpoint, time.Now()
	}
	s.headMu.Unlock()
	for _, m := range []string{ModeWebSocket, ModePolling, ModeStopped} {
		v := 0.0
		if m == mode {
			v = 1
		}
		s.m.subMode.WithLabelValues(m).Set(v)
	}
	if !changed {
		return
	}
	switch mode {
	case ModeWebSocket:
		s.log.Info("head source: websocket newHeads", "endpoint", endpoint)
	case ModePolling:
		s.log.Warn("head source: polling latest header over HTTP (websocket down or not configured)")
	}
}

func (s *Source) noteReconnect(endpoint, reason string) {
	s.m.reconnects.WithLabelValues(endpoint, reason).Inc()
	s.headMu.Lock()
	s.head.Reconnects++
	s.headMu.Unlock()
}

// SubscribeNewHeads delivers new chain heads until ctx ends or the Source closes, then closes
// the channel. It never gives up: on any WebSocket drop it reconnects with exponential backoff
// and jitter (rotating through the endpoints that have a WS URL) and meanwhile polls the latest
// header over HTTP every PollInterval; a subscription that stays quiet for HeadTimeout while
// the chain has moved on is replaced.
//
// Heads are hints of where the chain is, not a complete list: numbers may skip (a drop, a slow
// reader: only the newest undelivered head is kept), repeat with another hash, or go backwards
// (a reorg). The reader fetches every block from its cursor up to the head it is given, and
// checks parent hashes. Right after (re)subscribing, the current head is delivered at once so
// that the gap of the outage is filled from the reader's cursor.
func (s *Source) SubscribeNewHeads(ctx context.Context) (<-chan *types.Header, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("subscribe newHeads: %w", err)
	}
	if err := s.bg.Err(); err != nil {
		return nil, fmt.Errorf("subscribe newHeads: source closed: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.bg, cancel)
	out := make(chan *types.Header, 16)
	hl := &headLoop{s: s, out: out}
	for _, ep := range s.eps {
		if ep.wsURL != "" {
			hl.wsEps = append(hl.wsEps, ep)
		}
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(out)
		defer stop()
		defer cancel()
		hl.run(ctx)
		s.setMode(ModeStopped, "")
	}()
	return out, nil
}

type headLoop struct {
	s     *Source
	out   chan *types.Header
	wsEps []*endpoint

	pending  *types.Header // newest head not yet taken by the reader
	lastHash common.Hash
	lastNum  uint64
	wsNum    uint64 // newest head the current subscription delivered
}

type wsConn struct {
	ep     *endpoint
	client *rpc.Client
	sub    *rpc.ClientSubscription
	ch     chan *types.Header
}

func (c *wsConn) close() {
	// Closing the client ends the subscription; an eth_unsubscribe could hang on a dead link.
	c.client.Close()
}

type dialResult struct {
	conn *wsConn
	ep   *endpoint
	err  error
}

type pollResult struct {
	head *types.Header
	err  error
}

func (h *headLoop) run(ctx context.Context) {
	s := h.s
	var (
		conn       *wsConn
		dialing    bool
		dialDone   = make(chan dialResult, 1)
		failures   int // consecutive failed dials / drops, for the backoff
		epIdx      int
		reconnect  = newStoppedTimer()
		silent     = newStoppedTimer()
		pollTicker = time.NewTicker(s.cfg.PollInterval)
		polling    bool // a poll is in flight
		pollDone   = make(chan pollResult, 1)
		// checkSilent: the subscription has been quiet for HeadTimeout; the next poll's answer
		// says whether the chain moved on without it.
		checkSilent bool
	)
	defer pollTicker.Stop()
	defer reconnect.Stop()
	defer silent.Stop()
	defer func() {
		if conn != nil {
			conn.close()
		}
		if dialing {
			if r := <-dialDone; r.conn != nil {
				r.conn.close()
			}
		}
		if polling {
			<-pollDone
		}
	}()

	startDial := func() {
		ep := h.wsEps[epIdx%len(h.wsEps)]
		dialing = true
		go func() {
			c, err := h.dial(ctx, ep)
			dialDone <- dialResult{conn: c, ep: ep, err: err}
		}()
	}
	startPoll := func() {
		if polling {
			return
		}
		polling = true
		go func() {
			pctx, cancel := context.WithTimeout(ctx, max(s.cfg.RequestTimeout, s.cfg.PollInterval))
			defer cancel()
			hd, err := s.HeaderByNumber(pctx, nil)
			pollDone <- pollResult{head: hd, err: err}
		}()
	}
	scheduleReconnect := func() {
		failures++
		d := backoff(failures, s.cfg.ReconnectMin, s.cfg.ReconnectMax)
		reconnect.Reset(d)
		s.log.Debug("websocket reconnect scheduled", "in", d.Round(time.Millisecond), "failures", failures)
	}
	dropConn := func(reason string, err error) {
		s.noteReconnect(conn.ep.name, reason)
		s.log.Warn("newHeads subscription lost", "endpoint", conn.ep.name, "reason", reason, "err", err)
		conn.close()
		conn = nil
		silent.Stop()
		checkSilent = false
		s.setMode(ModePolling, "")
		pollTicker.Reset(s.cfg.PollInterval)
		startPoll()
	}

	if len(h.wsEps) > 0 {
		startDial()
	} else {
		s.setMode(ModePolling, "")
	}
	startPoll() // the current head right away

	for {
		var (
			subCh  <-chan *types.Header
			subErr <-chan error
			outCh  chan<- *types.Header
			pollC  <-chan time.Time
		)
		if conn != nil {
			subCh, subErr = conn.ch, conn.sub.Err()
		} else {
			pollC = pollTicker.C
		}
		if h.pending != nil {
			outCh = h.out
		}
		select {
		case <-ctx.Done():
			return

		case outCh <- h.pending:
			h.pending = nil

		case hd := <-subCh:
			silent.Reset(s.cfg.HeadTimeout)
			h.wsNum = hd.Number.Uint64()
			s.observeHead(conn.ep, hd.Number.Uint64(), true)
			s.answeredNow()
			h.offer(hd, ModeWebSocket, true)

		case err := <-subErr:
			dropConn("dropped", err)
			scheduleReconnect()

		case r := <-dialDone:
			dialing = false
			if r.err != nil {
				if ctx.Err() != nil {
					return
				}
				s.noteReconnect(r.ep.name, "dial_failed")
				if failures%10 == 0 { // the first failure of an outage, then every tenth
					s.log.Warn("newHeads subscribe failed", "endpoint", r.ep.name, "failures", failures+1, "err", r.err)
				} else {
					s.log.Debug("newHeads subscribe failed", "endpoint", r.ep.name, "failures", failures+1, "err", r.err)
				}
				epIdx++
				if conn == nil {
					s.setMode(ModePolling, "")
				}
				scheduleReconnect()
				continue
			}
			failures = 0
			conn = r.conn
			h.wsNum = 0
			s.setMode(ModeWebSocket, conn.ep.name)
			silent.Reset(s.cfg.HeadTimeout)
			// Heads sealed while we were away are not replayed by the new subscription.
			startPoll()

		case <-reconnect.C:
			if conn == nil && !dialing {
				startDial()
			}

		case <-silent.C:
			if conn != nil {
				checkSilent = true
				startPoll()
			}

		case <-pollC:
			startPoll()

		case r := <-pollDone:
			polling = false
			check := checkSilent && conn != nil
			checkSilent = false
			if r.err != nil {
				if ctx.Err() != nil {
					return
				}
				s.log.Debug("head poll failed", "err", r.err)
				if check {
					silent.Reset(s.cfg.HeadTimeout)
				}
				continue
			}
			if check {
				if r.head.Number.Uint64() > max(h.wsNum, h.lastNum) {
					// The chain moved on and the subscription did not say so.
					dropConn("silent", fmt.Errorf("no newHeads for %s while the chain reached block %d", s.cfg.HeadTimeout, r.head.Number.Uint64()))
					failures = 0
					startDial()
				} else {
					silent.Reset(s.cfg.HeadTimeout) // a quiet chain, not a quiet subscription
				}
			}
			h.offer(r.head, ModePolling, false)
		}
	}
}

// offer queues a head for the reader. Polled heads only count when they move forward (or
// replace the head at the same height): a poll that started before a newer WS head arrived
// must not look like the chain going back.
func (h *headLoop) offer(hd *types.Header, via string, authoritative bool) {
	if hd == nil {
		return
	}
	hash, num := hd.Hash(), hd.Number.Uint64()
	if hash == h.lastHash {
		return
	}
	if !authoritative && num < h.lastNum {
		return
	}
	h.lastHash, h.lastNum = hash, num
	h.pending = hd
	h.s.m.heads.WithLabelValues(via).Inc()
	h.s.headMu.Lock()
	h.s.head.LastHead, h.s.head.LastHeadAt = num, time.Now()
	h.s.headMu.Unlock()
}

func (h *headLoop) dial(ctx context.Context, ep *endpoint) (*wsConn, error) {
	dctx, cancel := context.WithTimeout(ctx, h.s.cfg.RequestTimeout)
	defer cancel()
	client, err := rpc.DialOptions(dctx, ep.wsURL)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", redactURL(ep.wsURL), err)
	}
	if err := h.s.checkWSIdentity(dctx, ep, client); err != nil {
		client.Close()
		return nil, err
	}
	ch := make(chan *types.Header, 64)
	sub, err := client.EthSubscribe(dctx, ch, "newHeads")
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("eth_subscribe newHeads on %s: %w", ep.name, err)
	}
	return &wsConn{ep: ep, client: client, sub: sub, ch: ch}, nil
}

func newStoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}
