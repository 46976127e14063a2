package rpcproxy

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// TCPProxy forwards TCP connections (a node's WebSocket port) and breaks them on demand: cut
// every open connection, refuse new ones for a while, or freeze open ones so that they stay
// up but carry nothing (a silent subscription).
type TCPProxy struct {
	target string
	ln     net.Listener

	mu          sync.Mutex
	conns       map[*tcpPair]struct{}
	refuseUntil time.Time
	accepted    int
	refused     int
	closed      bool
	wg          sync.WaitGroup
}

type tcpPair struct {
	client, server net.Conn
	frozen         atomic.Bool
	once           sync.Once
}

func (p *tcpPair) close() {
	p.once.Do(func() {
		_ = p.client.Close()
		_ = p.server.Close()
	})
}

// NewTCP listens on 127.0.0.1 (a free port) and forwards to target ("host:port").
func NewTCP(target string) (*TCPProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("tcp proxy listen: %w", err)
	}
	p := &TCPProxy{target: target, ln: ln, conns: map[*tcpPair]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// SetTarget forwards new connections to another "host:port" (a node replaced behind the same
// address); open ones keep theirs until cut.
func (p *TCPProxy) SetTarget(target string) {
	p.mu.Lock()
	p.target = target
	p.mu.Unlock()
}

// Addr is the proxy's "host:port".
func (p *TCPProxy) Addr() string { return p.ln.Addr().String() }

// CutAll closes every open connection and returns how many there were.
func (p *TCPProxy) CutAll() int {
	p.mu.Lock()
	pairs := make([]*tcpPair, 0, len(p.conns))
	for c := range p.conns {
		pairs = append(pairs, c)
	}
	p.mu.Unlock()
	for _, c := range pairs {
		c.close()
	}
	return len(pairs)
}

// Refuse makes new connections close right after they are accepted, for d.
func (p *TCPProxy) Refuse(d time.Duration) {
	p.mu.Lock()
	p.refuseUntil = time.Now().Add(d)
	p.mu.Unlock()
}

// Freeze makes every open connection stay open but drop whatever either side sends from now on.
// New connections are not affected.
func (p *TCPProxy) Freeze() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.frozen.Store(true)
	}
	return len(p.conns)
}

// Accepted counts connections forwarded so far; Refused those closed by Refuse.
func (p *TCPProxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// Refused counts connections closed at once because of Refuse.
func (p *TCPProxy) Refused() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refused
}

// Open counts connections currently forwarded.
func (p *TCPProxy) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Close stops listening, cuts every connection and waits for the forwarding goroutines.
func (p *TCPProxy) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	_ = p.ln.Close()
	p.CutAll()
	p.wg.Wait()
}

func (p *TCPProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // listener closed
		}
		p.mu.Lock()
		if p.closed || time.Now().Before(p.refuseUntil) {
			p.refused++
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		target := p.target
		p.mu.Unlock()
		s, err := net.DialTimeout("tcp", target, 5*time.Second)
		if err != nil {
			_ = c.Close()
			continue
		}
		pair := &tcpPair{client: c, server: s}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			pair.close()
			continue
		}
		p.conns[pair] = struct{}{}
		p.accepted++
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pump(pair, pair.server, pair.client)
		go p.pump(pair, pair.client, pair.server)
	}
}

func (p *TCPProxy) pump(pair *tcpPair, dst, src net.Conn) {
	defer p.wg.Done()
	defer func() {
		pair.close()
		p.mu.Lock()
		delete(p.conns, pair)
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !pair.frozen.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF or a cut: pair.close ends the other direction too
		}
	}
}
