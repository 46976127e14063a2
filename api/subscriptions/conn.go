package subscriptions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

const (
	stateNew   = iota // waiting for connection_init
	stateInit         // connection_init received, being authorized
	stateAcked        // connection_ack sent: subscriptions allowed
)

// closeGrace is how long the server waits for the client's close frame after sending its own.
const closeGrace = 2 * time.Second

// maxIDBytes bounds operation ids (graphql-ws sends UUIDs, the legacy client small integers).
const maxIDBytes = 256

// outMsg is a queued frame.
type outMsg struct {
	kind int    // websocket.TextMessage, PingMessage or CloseMessage
	typ  string // protocol message type, for metrics
	data []byte
	at   time.Time // notification time of the block a result reflects; zero otherwise
}

// conn is one WebSocket. The reader is the HTTP handler's goroutine; writes go through a
// bounded queue drained by a goroutine that exists only while there is something to write, so
// an idle connection costs one parked goroutine and its buffers.
type conn struct {
	s      *Server
	ws     *websocket.Conn
	proto  string
	legacy bool
	idle   time.Duration
	req    *http.Request // kept until connection_init for Options.Authorize

	wmu      sync.Mutex
	queue    []outMsg
	flushing bool
	closed   bool // nothing more is queued: a close frame is on its way or the socket is gone
	abandon  bool // queued messages are dropped: only the close frame goes
	dead     bool // the socket is gone: the writer stops
	// msgDeadline is set while a client message is being read: pongs do not push it.
	msgDeadline time.Time

	mu    sync.Mutex
	state int
	subs  map[string]*sub
	initT *time.Timer
}

func newConn(s *Server, ws *websocket.Conn, r *http.Request) *conn {
	c := &conn{s: s, ws: ws, proto: ws.Subprotocol(), req: r, idle: 2*s.opts.KeepAlive + s.opts.KeepAlive/2}
	c.legacy = c.proto == ProtoLegacyWS
	return c
}

// refuse closes a connection that was never served.
func (c *conn) refuse(code int, reason string) {
	c.s.met.closed.WithLabelValues(strconv.Itoa(code)).Inc()
	_ = c.ws.WriteControl(websocket.CloseMessage, closeFrame(code, reason), time.Now().Add(time.Second))
	_ = c.ws.NetConn().SetReadDeadline(time.Now().Add(closeGrace))
	for {
		if _, _, err := c.ws.NextReader(); err != nil {
			break
		}
	}
	c.ws.Close()
}

func closeFrame(code int, reason string) []byte {
	if len(reason) > 123 { // a control frame's payload is at most 125 bytes
		reason = reason[:120] + "..."
	}
	return websocket.FormatCloseMessage(code, reason)
}

// serve reads client messages until the connection ends.
func (c *conn) serve() {
	defer c.teardown()
	c.ws.SetReadLimit(c.s.opts.MaxMessageBytes)
	c.extend()
	c.ws.SetPongHandler(func(string) error { c.extend(); return nil })
	c.mu.Lock()
	c.initT = time.AfterFunc(c.s.opts.InitTimeout, c.initTimeout)
	c.mu.Unlock()
	for {
		data, taken, err := c.readMessage()
		if err != nil {
			if errors.Is(err, errInFlight) {
				c.s.met.refused.WithLabelValues("inflight_bytes").Inc()
				c.abort(CloseTryAgainLater, "the server holds too many request bytes (limit api.max_inflight_bytes): retry later")
				continue // draining until the client's close frame
			}
			c.readError(err)
			return
		}
		c.wmu.Lock()
		closed := c.closed
		c.wmu.Unlock()
		if closed {
			c.s.opts.ReleaseBytes(taken)
			continue // draining until the client's close frame
		}
		c.extend()
		c.handle(data)
		c.s.opts.ReleaseBytes(taken)
	}
}

var (
	errInFlight       = errors.New("subscriptions: over the in-flight byte budget")
	errMessageTimeout = errors.New("subscriptions: a client message did not arrive within message_timeout")
)

// readMessage reads one client message. Once its first frame is in, the message has
// MessageTimeout to complete whatever pongs arrive meanwhile, and its bytes are charged to the
// process's in-flight budget as they arrive (taken, for the caller to release once handled).
// The buffer grows with what arrives: a frame's announced length sizes nothing.
func (c *conn) readMessage() (data []byte, taken int64, err error) {
	_, r, err := c.ws.NextReader()
	if err != nil {
		return nil, 0, err
	}
	c.wmu.Lock()
	c.msgDeadline = time.Now().Add(c.s.opts.MessageTimeout)
	if !c.closed {
		_ = c.ws.NetConn().SetReadDeadline(c.msgDeadline)
	}
	c.wmu.Unlock()
	defer func() {
		c.wmu.Lock()
		c.msgDeadline = time.Time{}
		c.wmu.Unlock()
		if err != nil {
			c.s.opts.ReleaseBytes(taken)
			taken = 0
		}
	}()
	buf := make([]byte, 0, 512)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, rerr := r.Read(buf[len(buf):cap(buf)])
		if n > 0 {
			if !c.s.opts.AcquireBytes(int64(n)) {
				return nil, taken, errInFlight
			}
			taken += int64(n)
			buf = buf[:len(buf)+n]
		}
		if rerr == io.EOF {
			return buf, taken, nil
		}
		if rerr != nil {
			var ne net.Error
			if errors.As(rerr, &ne) && ne.Timeout() {
				c.s.met.dropped.WithLabelValues("message_timeout").Inc()
				rerr = fmt.Errorf("%w: %w", errMessageTimeout, rerr)
			}
			return nil, taken, rerr
		}
	}
}

// handle serves one client message; a bug in serving it ends this connection only (4500).
func (c *conn) handle(data []byte) {
	defer func() {
		if r := recover(); r != nil {
			c.s.log.Error("subscriptions: panic serving a message", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			c.close(CloseInternalError, "Internal server error")
		}
	}()
	if c.legacy {
		c.handleLegacy(data)
	} else {
		c.handleTransport(data)
	}
}

// extend pushes the idle deadline: a client that answers neither pings nor anything else is gone.
func (c *conn) extend() {
	c.wmu.Lock()
	if !c.closed && c.msgDeadline.IsZero() {
		_ = c.ws.NetConn().SetReadDeadline(time.Now().Add(c.idle))
	}
	c.wmu.Unlock()
}

func (c *conn) readError(err error) {
	var ce *websocket.CloseError
	switch {
	case errors.As(err, &ce):
	case errors.Is(err, websocket.ErrReadLimit):
		c.s.met.refused.WithLabelValues("message_too_big").Inc()
		c.s.met.closed.WithLabelValues(strconv.Itoa(websocket.CloseMessageTooBig)).Inc()
	default:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.wmu.Lock()
			closed := c.closed
			c.wmu.Unlock()
			if !closed && !errors.Is(err, errMessageTimeout) {
				c.s.met.dropped.WithLabelValues("idle").Inc()
			}
		}
	}
}

func (c *conn) teardown() {
	c.wmu.Lock()
	c.closed, c.dead = true, true
	c.queue = nil
	c.wmu.Unlock()
	c.mu.Lock()
	if c.initT != nil {
		c.initT.Stop()
	}
	subs := c.subs
	c.subs = nil
	c.req = nil
	c.mu.Unlock()
	for _, sb := range subs {
		c.s.detach(sb)
	}
	c.ws.Close()
	c.s.dropConn(c)
}

func (c *conn) initTimeout() {
	c.mu.Lock()
	waiting := c.state == stateNew
	c.mu.Unlock()
	if !waiting {
		return
	}
	c.s.met.refused.WithLabelValues("init_timeout").Inc()
	if c.legacy {
		c.send(msgConnectionError, "", []byte(`{"message":"connection initialisation timeout"}`), time.Time{})
	}
	c.close(CloseInitTimeout, "Connection initialisation timeout")
}

// send queues a message; false when the connection is closing. A full queue means the client
// does not keep up: it is disconnected rather than allowed to hold anything up.
func (c *conn) send(typ, id string, payload []byte, at time.Time) bool {
	return c.enqueue(outMsg{kind: websocket.TextMessage, typ: typ, data: encode(typ, id, payload), at: at})
}

func (c *conn) enqueue(m outMsg) bool {
	c.wmu.Lock()
	if c.closed {
		c.wmu.Unlock()
		return false
	}
	if len(c.queue) >= c.s.opts.SendQueue {
		c.wmu.Unlock()
		c.s.met.dropped.WithLabelValues("send_queue_full").Inc()
		c.abort(CloseTryAgainLater, "send queue full: the client reads too slowly (limit send_queue = "+strconv.Itoa(c.s.opts.SendQueue)+")")
		return false
	}
	c.queue = append(c.queue, m)
	if !c.flushing {
		c.flushing = true
		go c.flush()
	}
	c.wmu.Unlock()
	return true
}

// close ends the connection gracefully: the close frame follows what is already queued.
func (c *conn) close(code int, reason string) {
	c.wmu.Lock()
	if c.closed {
		c.wmu.Unlock()
		return
	}
	c.closed = true
	c.queue = append(c.queue, outMsg{kind: websocket.CloseMessage, typ: "close", data: closeFrame(code, reason)})
	if !c.flushing {
		c.flushing = true
		go c.flush()
	}
	c.wmu.Unlock()
	c.s.met.closed.WithLabelValues(strconv.Itoa(code)).Inc()
}

// abort ends the connection of a client that does not keep up: what is queued is dropped and
// the close frame follows the write in progress (which WriteTimeout bounds), so a client that
// reads again, however late, learns why it was cut.
func (c *conn) abort(code int, reason string) {
	c.wmu.Lock()
	if c.closed {
		c.wmu.Unlock()
		return
	}
	c.closed, c.abandon = true, true
	c.queue = append(c.queue[:0], outMsg{kind: websocket.CloseMessage, typ: "close", data: closeFrame(code, reason)})
	if !c.flushing {
		c.flushing = true
		go c.flush()
	}
	c.wmu.Unlock()
	c.s.met.closed.WithLabelValues(strconv.Itoa(code)).Inc()
}

// flush writes queued messages until the queue is empty, then exits.
func (c *conn) flush() {
	met := c.s.met
	for {
		c.wmu.Lock()
		batch := c.queue
		c.queue = nil
		if len(batch) == 0 || c.dead {
			c.flushing = false
			c.wmu.Unlock()
			return
		}
		c.wmu.Unlock()
		met.flushBatch.Observe(float64(len(batch)))
		for _, m := range batch {
			c.wmu.Lock()
			dead, abandon := c.dead, c.abandon
			c.wmu.Unlock()
			if dead || (abandon && m.kind != websocket.CloseMessage) {
				break // an abort queued its close frame: go and get it
			}
			_ = c.ws.SetWriteDeadline(time.Now().Add(c.s.opts.WriteTimeout))
			if err := c.ws.WriteMessage(m.kind, m.data); err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					met.dropped.WithLabelValues("write_timeout").Inc()
				}
				c.wmu.Lock()
				c.closed, c.dead = true, true
				c.queue = nil
				c.wmu.Unlock()
				c.ws.NetConn().Close()
				break
			}
			met.sent.WithLabelValues(m.typ).Inc()
			met.sentBytes.Add(float64(len(m.data)))
			if !m.at.IsZero() {
				met.delivery.Observe(time.Since(m.at).Seconds())
			}
			if m.kind == websocket.CloseMessage {
				// Wait briefly for the client's close frame, then the reader ends it all.
				c.wmu.Lock()
				_ = c.ws.NetConn().SetReadDeadline(time.Now().Add(closeGrace))
				c.wmu.Unlock()
			}
		}
	}
}

// ping keeps the connection alive and proves the client still reads.
func (c *conn) ping() {
	if c.legacy {
		c.mu.Lock()
		acked := c.state == stateAcked
		c.mu.Unlock()
		if acked {
			c.send(msgKeepAlive, "", nil, time.Time{})
		}
	}
	c.enqueue(outMsg{kind: websocket.PingMessage, typ: "ws_ping"})
}

func (c *conn) nextType() string {
	if c.legacy {
		return msgData
	}
	return msgNext
}

// sendResult sends an operation's result to one subscriber.
func (c *conn) sendResult(id string, payload []byte, at time.Time) {
	c.send(c.nextType(), id, payload, at)
}

// sendResultCached is sendResult sharing encoded messages across subscribers of one result.
func (c *conn) sendResultCached(id string, payload []byte, at time.Time, cache map[string][]byte) {
	if cache == nil {
		c.sendResult(id, payload, at)
		return
	}
	typ := c.nextType()
	k := typ + "\x00" + id
	msg, ok := cache[k]
	if !ok {
		msg = encode(typ, id, payload)
		cache[k] = msg
	}
	c.enqueue(outMsg{kind: websocket.TextMessage, typ: typ, data: msg, at: at})
}

// failSub ends a subscription the engine refused: the protocol's error message ends it.
func (c *conn) failSub(sb *sub, errs []*requestError) {
	c.mu.Lock()
	if c.subs[sb.id] == sb {
		delete(c.subs, sb.id)
	}
	c.mu.Unlock()
	c.send(msgError, sb.id, errorsPayload(errs), time.Time{})
}

func (c *conn) received(typ string) {
	switch typ {
	case msgConnectionInit, msgPing, msgPong, msgSubscribe, msgComplete, msgStart, msgStop, msgConnectionTerminate:
	default:
		typ = "other"
	}
	c.s.met.received.WithLabelValues(typ).Inc()
}

// objectOrNull reports whether a payload is absent, null or a JSON object.
func objectOrNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || bytes.Equal(t, []byte("null")) || t[0] == '{'
}

// handleTransport serves graphql-transport-ws (graphql-ws's PROTOCOL.md): every protocol
// violation closes the socket with the code the protocol names.
func (c *conn) handleTransport(data []byte) {
	var m inMessage
	if err := json.Unmarshal(data, &m); err != nil || m.Type == nil {
		c.s.met.refused.WithLabelValues("bad_message").Inc()
		c.close(CloseBadRequest, "Invalid message received")
		return
	}
	typ := *m.Type
	c.received(typ)
	switch typ {
	case msgConnectionInit:
		if !objectOrNull(m.Payload) {
			c.close(CloseBadRequest, `Invalid message received: "payload" must be an object`)
			return
		}
		c.mu.Lock()
		if c.state != stateNew {
			c.mu.Unlock()
			c.close(CloseTooManyInitRequest, "Too many initialisation requests")
			return
		}
		c.state = stateInit
		c.initT.Stop()
		c.initT = nil
		req := c.req
		c.req = nil
		c.mu.Unlock()
		if a := c.s.opts.Authorize; a != nil {
			if err := a(req, m.Payload); err != nil {
				c.s.met.refused.WithLabelValues("forbidden").Inc()
				c.close(CloseForbidden, "Forbidden: "+err.Error())
				return
			}
		}
		c.mu.Lock()
		c.state = stateAcked
		c.mu.Unlock()
		c.send(msgConnectionAck, "", nil, time.Time{})
	case msgPing:
		if !objectOrNull(m.Payload) {
			c.close(CloseBadRequest, `Invalid message received: "payload" must be an object`)
			return
		}
		c.send(msgPong, "", m.Payload, time.Time{})
	case msgPong:
	case msgSubscribe:
		var p subscribePayload
		if m.ID == nil || *m.ID == "" || len(*m.ID) > maxIDBytes || json.Unmarshal(m.Payload, &p) != nil || p.Query == nil {
			c.s.met.refused.WithLabelValues("bad_message").Inc()
			c.close(CloseBadRequest, `Invalid message received: subscribe needs an "id" and a "payload" with a "query"`)
			return
		}
		c.mu.Lock()
		acked := c.state == stateAcked
		_, exists := c.subs[*m.ID]
		c.mu.Unlock()
		switch {
		case !acked:
			c.s.met.refused.WithLabelValues("unauthorized").Inc()
			c.close(CloseUnauthorized, "Unauthorized")
		case exists:
			c.s.met.refused.WithLabelValues("duplicate_id").Inc()
			c.close(CloseSubscriberExists, "Subscriber for "+*m.ID+" already exists")
		default:
			c.subscribe(*m.ID, p)
		}
	case msgComplete:
		if m.ID == nil || *m.ID == "" {
			c.close(CloseBadRequest, `Invalid message received: complete needs an "id"`)
			return
		}
		c.unsubscribe(*m.ID, false)
	case msgConnectionAck, msgNext, msgError:
		c.s.met.refused.WithLabelValues("bad_message").Inc()
		c.close(CloseBadRequest, "Unexpected message of type "+typ+" received")
	default:
		c.s.met.refused.WithLabelValues("bad_message").Inc()
		c.close(CloseBadRequest, "Invalid message received: unknown type "+strconv.Quote(typ))
	}
}

// handleLegacy serves subscriptions-transport-ws's protocol (wire name graphql-ws): as its
// reference server does, bad messages get an error message and the connection stays.
func (c *conn) handleLegacy(data []byte) {
	var m inMessage
	if err := json.Unmarshal(data, &m); err != nil || m.Type == nil {
		c.s.met.refused.WithLabelValues("bad_message").Inc()
		c.send(msgError, "", []byte(`{"message":"Message must be JSON-parseable."}`), time.Time{})
		return
	}
	typ := *m.Type
	c.received(typ)
	id := ""
	if m.ID != nil {
		id = *m.ID
	}
	switch typ {
	case msgConnectionInit:
		c.mu.Lock()
		if c.state == stateAcked {
			c.mu.Unlock()
			c.send(msgConnectionAck, "", nil, time.Time{})
			return
		}
		c.state = stateInit
		c.initT.Stop()
		c.initT = nil
		req := c.req
		c.req = nil
		c.mu.Unlock()
		if a := c.s.opts.Authorize; a != nil {
			if err := a(req, m.Payload); err != nil {
				c.s.met.refused.WithLabelValues("forbidden").Inc()
				msg, _ := json.Marshal(map[string]string{"message": "Forbidden: " + err.Error()})
				c.send(msgConnectionError, "", msg, time.Time{})
				c.close(CloseForbidden, "Forbidden: "+err.Error())
				return
			}
		}
		c.mu.Lock()
		c.state = stateAcked
		c.mu.Unlock()
		c.send(msgConnectionAck, "", nil, time.Time{})
		c.send(msgKeepAlive, "", nil, time.Time{})
	case msgConnectionTerminate:
		c.close(CloseNormal, "")
	case msgStart:
		var p subscribePayload
		if id == "" || len(id) > maxIDBytes || json.Unmarshal(m.Payload, &p) != nil || p.Query == nil {
			c.s.met.refused.WithLabelValues("bad_message").Inc()
			c.send(msgError, id, []byte(`{"message":"start needs an \"id\" and a \"payload\" with a \"query\""}`), time.Time{})
			return
		}
		c.mu.Lock()
		acked := c.state == stateAcked
		c.mu.Unlock()
		if !acked {
			c.s.met.refused.WithLabelValues("unauthorized").Inc()
			c.send(msgError, id, errorsPayload([]*requestError{refuse(codeBadRequest, "send connection_init first")}), time.Time{})
			return
		}
		// The reference server replaces an operation started again with the same id.
		c.unsubscribe(id, false)
		c.subscribe(id, p)
	case msgStop:
		c.unsubscribe(id, true)
	default:
		c.s.met.refused.WithLabelValues("bad_message").Inc()
		c.send(msgError, id, []byte(`{"message":"Invalid message type!"}`), time.Time{})
	}
}

// subscribe validates a subscription and registers it; a refusal is the operation's error.
func (c *conn) subscribe(id string, p subscribePayload) {
	fail := func(reason string, errs ...*requestError) {
		c.s.met.refused.WithLabelValues(reason).Inc()
		c.send(msgError, id, errorsPayload(errs), time.Time{})
	}
	c.mu.Lock()
	n := len(c.subs)
	c.mu.Unlock()
	if n >= c.s.opts.MaxSubscriptionsPerConn {
		fail("max_subscriptions", refuse(codeLimitSubs, "this connection already has %d subscriptions (limit max_subscriptions_per_connection = %d)",
			n, c.s.opts.MaxSubscriptionsPerConn))
		return
	}
	if len(*p.Query) > c.s.opts.MaxQueryBytes {
		fail("query_size", refuse(codeLimitSize, "the subscription is %d bytes long, more than the limit of %d bytes (limit max_query_bytes)",
			len(*p.Query), c.s.opts.MaxQueryBytes))
		return
	}
	vars, err := decodeVariables(p.Variables)
	if err != nil {
		fail("bad_request", refuse(codeBadRequest, "variables must be a JSON object: %v", err))
		return
	}
	name := ""
	if p.OperationName != nil {
		name = *p.OperationName
	}
	// Preparing is bounded work (the engine's parse budget and deadline); the connection's
	// reader waits for it, so a client gone meanwhile is noticed right after.
	o, errs := c.s.api.parseOperation(context.Background(), *p.Query, name, vars, c.s.lim)
	if len(errs) > 0 {
		reason := "invalid"
		switch errs[0].code {
		case codeLimitDepth:
			reason = "max_depth"
		case codeLimitCost:
			reason = "max_cost"
		case codeLimitFirst:
			reason = "max_first"
		case codeLimitSize:
			reason = "query_size"
		}
		fail(reason, errs...)
		return
	}
	sb := &sub{id: id, c: c}
	c.mu.Lock()
	if c.subs == nil {
		c.subs = map[string]*sub{}
	}
	c.subs[id] = sb
	c.mu.Unlock()
	c.s.attach(sb, o)
}

func decodeVariables(raw json.RawMessage) (map[string]any, error) {
	v := bytes.TrimSpace(raw)
	if len(v) == 0 || bytes.Equal(v, []byte("null")) {
		return nil, nil
	}
	if v[0] == '"' { // some clients send the variables as a JSON string
		var s string
		if err := json.Unmarshal(v, &s); err == nil {
			v = []byte(s)
		}
	}
	var vars map[string]any
	if err := json.Unmarshal(v, &vars); err != nil {
		return nil, err
	}
	return vars, nil
}

// unsubscribe ends a subscription the client stopped; with ack a complete message confirms it
// (legacy protocol).
func (c *conn) unsubscribe(id string, ack bool) {
	c.mu.Lock()
	sb := c.subs[id]
	delete(c.subs, id)
	c.mu.Unlock()
	if sb != nil {
		c.s.detach(sb) // after this no result of it is queued any more
	}
	if ack && sb != nil {
		c.send(msgComplete, id, nil, time.Time{})
	}
}
