package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/rpc"
)

// Chain identity. An endpoint is asked for its chain id (and genesis hash) on its first use and
// again whenever it may have become another node: after it failed, after the HTTP transport
// opened a new connection to it (a node restarted behind the same URL), and on every WebSocket
// dial. An endpoint of another chain is out of service until a later check finds the right chain
// again: no request goes to it, and an answer that came over a connection opened during the
// request is checked before it is returned, so no data of another chain reaches the caller.

// ErrWrongChain matches the error of an endpoint that serves another chain.
var ErrWrongChain = errors.New("endpoint serves another chain")

// ChainMismatchError is an endpoint serving another chain than the configured one.
type ChainMismatchError struct {
	Endpoint  string
	Transport string // "http" or "ws"
	Want, Got uint64 // chain ids
	// WantGenesis/GotGenesis differ when the chain id matched but the genesis did not.
	WantGenesis, GotGenesis common.Hash
}

func (e *ChainMismatchError) Error() string {
	if e.Want != e.Got {
		return fmt.Sprintf("%s (%s) serves chain %d, configured chain_id is %d", e.Endpoint, e.Transport, e.Got, e.Want)
	}
	return fmt.Sprintf("%s (%s) serves chain %d with genesis %s, but the other endpoints' genesis is %s",
		e.Endpoint, e.Transport, e.Got, e.GotGenesis, e.WantGenesis)
}

func (e *ChainMismatchError) Is(target error) bool { return target == ErrWrongChain }

const (
	identityUnknown int8 = 0
	identityOK      int8 = 1
	identityWrong   int8 = -1
)

// dialCounter wraps a dialer to count the connections it opened.
func dialCounter(d *net.Dialer, count func()) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err == nil {
			count()
		}
		return c, err
	}
}

// needsIdentity: the endpoint has not been checked since it was last (re)connected or failed.
func (ep *endpoint) needsIdentity() bool {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return ep.identity != identityOK || ep.dials.Load() != ep.identityDials
}

func (ep *endpoint) identityState() int8 {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return ep.identity
}

// setIdentity records a check's outcome; dials is the connection count when the check began.
func (ep *endpoint) setIdentity(state int8, dials uint64, msg string) (prev int8) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	prev = ep.identity
	ep.identity, ep.identityDials, ep.wrongChain = state, dials, msg
	return prev
}

// ensureIdentity checks the endpoint when it needs it; concurrent callers share one check.
func (s *Source) ensureIdentity(ctx context.Context, ep *endpoint) error {
	if s.cfg.ChainID == 0 {
		return nil
	}
	ep.idMu.Lock()
	defer ep.idMu.Unlock()
	if !ep.needsIdentity() {
		return nil
	}
	return s.checkIdentity(ctx, ep)
}

// checkIdentity asks the endpoint over HTTP for its chain id and genesis block in one batch.
// A transport failure is returned as is (the endpoint stays unchecked); a mismatch takes the
// endpoint out of service and returns a *ChainMismatchError.
func (s *Source) checkIdentity(ctx context.Context, ep *endpoint) error {
	dials := ep.dials.Load()
	var id hexutil.Uint64
	var genesis *struct {
		Hash common.Hash `json:"hash"`
	}
	elems := []batchElem{
		{Method: "eth_chainId", Result: &id},
		{Method: "eth_getBlockByNumber", Params: []any{"0x0", false}, Result: &genesis},
	}
	start := time.Now()
	err := ep.rpc.batch(ctx, elems)
	s.m.requests.WithLabelValues(ep.name, "eth_chainId").Inc()
	s.m.duration.WithLabelValues(ep.name, "eth_chainId").Observe(time.Since(start).Seconds())
	if err == nil {
		err = elems[0].Err
	}
	if err != nil {
		kind, _, _ := classify(err)
		s.m.errors.WithLabelValues(ep.name, "eth_chainId", kind).Inc()
		return fmt.Errorf("eth_chainId: %w", err)
	}
	var g common.Hash
	if elems[1].Err == nil && genesis != nil { // a node that does not give its genesis is judged by chain id
		g = genesis.Hash
	}
	return s.judgeIdentity(ep, "http", uint64(id), g, dials)
}

// judgeIdentity compares what an endpoint said with the configured chain id and the genesis
// the first endpoint of that chain id reported, and records the verdict.
func (s *Source) judgeIdentity(ep *endpoint, transport string, id uint64, genesis common.Hash, dials uint64) error {
	var mismatch *ChainMismatchError
	if id != s.cfg.ChainID {
		mismatch = &ChainMismatchError{Endpoint: ep.name, Transport: transport, Want: s.cfg.ChainID, Got: id}
	} else if genesis != (common.Hash{}) {
		s.genesisMu.Lock()
		if s.genesis == (common.Hash{}) {
			s.genesis = genesis
		} else if s.genesis != genesis {
			mismatch = &ChainMismatchError{Endpoint: ep.name, Transport: transport, Want: id, Got: id, WantGenesis: s.genesis, GotGenesis: genesis}
		}
		s.genesisMu.Unlock()
	}
	if mismatch != nil {
		s.m.chainMismatch.WithLabelValues(ep.name, transport).Inc()
		s.m.wrongChain.WithLabelValues(ep.name).Set(1)
		if transport == "http" {
			if prev := ep.setIdentity(identityWrong, dials, mismatch.Error()); prev != identityWrong {
				s.log.Error("rpc endpoint serves another chain: out of service", "endpoint", ep.name, "err", mismatch)
				s.recomputeBest()
			}
		} else {
			s.log.Error("websocket endpoint serves another chain: not subscribing", "endpoint", ep.name, "err", mismatch)
		}
		return mismatch
	}
	if transport == "http" {
		prev := ep.setIdentity(identityOK, dials, "")
		if prev == identityWrong {
			s.log.Info("rpc endpoint serves the configured chain again: back in service", "endpoint", ep.name, "chain_id", id)
		}
		if prev != identityOK {
			s.m.wrongChain.WithLabelValues(ep.name).Set(0)
			s.reconnects.Add(1)
		}
	} else {
		s.reconnects.Add(1)
	}
	return nil
}

// checkWSIdentity checks a freshly dialled WebSocket before it is subscribed.
func (s *Source) checkWSIdentity(ctx context.Context, ep *endpoint, c *rpc.Client) error {
	if s.cfg.ChainID == 0 {
		s.reconnects.Add(1)
		return nil
	}
	var id hexutil.Uint64
	var genesis json.RawMessage
	b := []rpc.BatchElem{
		{Method: "eth_chainId", Result: &id},
		{Method: "eth_getBlockByNumber", Args: []any{"0x0", false}, Result: &genesis},
	}
	if err := c.BatchCallContext(ctx, b); err != nil {
		return fmt.Errorf("eth_chainId on %s (ws): %w", ep.name, err)
	}
	if b[0].Error != nil {
		return fmt.Errorf("eth_chainId on %s (ws): %w", ep.name, b[0].Error)
	}
	var g struct {
		Hash common.Hash `json:"hash"`
	}
	if b[1].Error == nil && len(genesis) > 0 && string(genesis) != "null" {
		if err := json.Unmarshal(genesis, &g); err != nil {
			g.Hash = common.Hash{}
		}
	}
	return s.judgeIdentity(ep, "ws", uint64(id), g.Hash, 0)
}

// Reconnects counts the endpoint connections checked into service: an endpoint's first good
// answer, its return after failures or a new connection, every WebSocket (re)subscription. A
// reader that keeps a position on the chain re-checks it when this moves: the node behind the
// connection may not be the one it was.
func (s *Source) Reconnects() uint64 { return s.reconnects.Load() }

// LastAnswer is when an endpoint of the configured chain last answered (the Source's creation
// before any did).
func (s *Source) LastAnswer() time.Time { return time.Unix(0, s.lastAnswer.Load()) }

func (s *Source) answeredNow() { s.lastAnswer.Store(time.Now().UnixNano()) }
