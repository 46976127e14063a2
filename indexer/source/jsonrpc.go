package source

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// A JSON-RPC client of our own rather than go-ethereum's rpc.Client over HTTP: the retry logic
// needs the HTTP status and Retry-After header, a cap on the answer size, and per-element batch
// errors, none of which rpc.Client exposes.

// RPCError is a JSON-RPC error object returned by a node.
type RPCError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

func (e *RPCError) Error() string {
	if len(e.Data) > 0 && string(e.Data) != "null" {
		return fmt.Sprintf("json-rpc error %d: %s (data %s)", e.Code, e.Message, truncate(string(e.Data), 200))
	}
	return fmt.Sprintf("json-rpc error %d: %s", e.Code, e.Message)
}

// ErrorCode makes RPCError an rpc.Error of go-ethereum.
func (e *RPCError) ErrorCode() int { return e.Code }

// ErrorData makes RPCError an rpc.DataError of go-ethereum (revert data of eth_call).
func (e *RPCError) ErrorData() any {
	var v any
	if len(e.Data) == 0 || json.Unmarshal(e.Data, &v) != nil {
		return nil
	}
	return v
}

// HTTPError is a non-200 HTTP answer.
type HTTPError struct {
	StatusCode int
	Body       string        // start of the body, for the log
	RetryAfter time.Duration // from the Retry-After header; 0 when absent
}

func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("http status %d", e.StatusCode)
	if e.Body != "" {
		msg += ": " + e.Body
	}
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return msg
}

var (
	errResponseTooLarge = errors.New("response exceeds the configured size limit")
	errNoResponse       = errors.New("batch answer has no response for this request")
)

type httpRPC struct {
	url     string
	client  *http.Client
	maxResp int64
	ids     atomic.Uint64
	// bufs keeps buffers for batch answers across garbage collections, which empty a
	// sync.Pool: a backfill reads megabytes per batch, and regrowing a buffer to that size for
	// each answer was a tenth of the indexer's allocation. Nil: no reuse.
	bufs chan *bytes.Buffer
	// requests and calls space HTTP requests and the JSON-RPC calls in them to the endpoint's
	// allowed rates; nil: no cap. waited learns how long each request queued for them.
	requests, calls *rate.Limiter
	waited          func(time.Duration)
}

// Kept buffers are live heap, and the garbage collector lets the heap grow to a multiple of
// the live heap (runtime.gc_percent 200: three times): 8 buffers of up to 16 MiB held the
// indexer's peak RSS at its memory limit (issue 21). A receipts batch of 20 blocks is about
// 3 MB, which a buffer grown by ReadFrom holds in 4 MiB; larger answers (eth_getLogs batches
// over thousands of clones) are rare and get a buffer of their own.
const (
	keptBuffers   = 4
	maxKeptBuffer = 4 << 20
)

type request struct {
	Version string `json:"jsonrpc"`
	ID      uint64 `json:"id"`
	Method  string `json:"method"`
	Params  []any  `json:"params"`
}

// singleResponse decodes the result straight into the caller's value (Result holds a pointer),
// saving a second pass over large eth_getLogs answers.
type singleResponse struct {
	ID     json.RawMessage `json:"id"`
	Error  *RPCError       `json:"error"`
	Result any             `json:"result"`
}

type batchResponse struct {
	ID     json.RawMessage `json:"id"`
	Error  *RPCError       `json:"error"`
	Result json.RawMessage `json:"result"`
}

// call performs one JSON-RPC request. result must be a pointer; a null result leaves pointer
// targets nil.
func (h *httpRPC) call(ctx context.Context, result any, method string, params ...any) error {
	if params == nil {
		params = []any{}
	}
	body, err := json.Marshal(request{Version: "2.0", ID: h.ids.Add(1), Method: method, Params: params})
	if err != nil {
		return fmt.Errorf("encode %s: %w", method, err)
	}
	resp, err := h.post(ctx, body, 1)
	if err != nil {
		return err
	}
	defer drainClose(resp.Body)
	r := &capReader{r: resp.Body, n: h.maxResp}
	out := singleResponse{Result: result}
	if err := json.NewDecoder(r).Decode(&out); err != nil {
		return decodeErr(err)
	}
	if out.Error != nil {
		return out.Error
	}
	return nil
}

// batchElem is one call of a batch; Err is set per element.
type batchElem struct {
	Method string
	Params []any
	Result any // pointer
	Err    error
}

// batch sends elems as one JSON-RPC batch. The returned error is for the whole batch (transport,
// HTTP status, or a single error object instead of an array); per-call errors are in elem.Err.
func (h *httpRPC) batch(ctx context.Context, elems []batchElem) error {
	reqs := make([]request, len(elems))
	ids := make([]uint64, len(elems))
	for i, e := range elems {
		ids[i] = h.ids.Add(1)
		p := e.Params
		if p == nil {
			p = []any{}
		}
		reqs[i] = request{Version: "2.0", ID: ids[i], Method: e.Method, Params: p}
	}
	body, err := json.Marshal(reqs)
	if err != nil {
		return fmt.Errorf("encode batch: %w", err)
	}
	resp, err := h.post(ctx, body, len(elems))
	if err != nil {
		return err
	}
	defer drainClose(resp.Body)
	// Answers are read into a reused buffer: a backfill reads many large ones, and the decoders
	// copy what they keep.
	var buf *bytes.Buffer
	select {
	case buf = <-h.bufs:
	default:
		buf = new(bytes.Buffer)
	}
	defer func() {
		if buf.Cap() > maxKeptBuffer {
			return // a rare giant answer: not worth holding on to
		}
		buf.Reset()
		select {
		case h.bufs <- buf:
		default:
		}
	}()
	if _, err := buf.ReadFrom(&capReader{r: resp.Body, n: h.maxResp}); err != nil {
		return decodeErr(err)
	}
	raw := bytes.TrimSpace(buf.Bytes())
	if len(raw) > 0 && raw[0] == '{' {
		// A node refusing the whole batch (geth's "batch too large", rate limits) answers with
		// one error object.
		var single batchResponse
		if err := json.Unmarshal(raw, &single); err != nil {
			return decodeErr(err)
		}
		if single.Error != nil {
			return single.Error
		}
		return fmt.Errorf("%w: batch answered with a single object", errBadResponse)
	}
	return decodeBatch(raw, elems, ids)
}

// scanDecoder is a batch result that reads itself from the answer's scanner. decodeBatch hands
// it its result in place when the answer's id came first (as geth writes it), so the answer is
// scanned once rather than once for its extent and again to decode it.
type scanDecoder interface {
	scan(s *scanner) error
}

// unmarshalScan is json.Unmarshaler's work for a scanDecoder: all of b, nothing after it.
func unmarshalScan(b []byte, d scanDecoder) error {
	s := &scanner{b: b}
	if err := d.scan(s); err != nil {
		return err
	}
	return s.end()
}

// decodeBatch matches the answers to the requests by id and decodes each result into its target:
// a target that decodes itself (scanDecoder or json.Unmarshaler: the large answers, see scan.go)
// is handed its bytes directly, without encoding/json's separate validation pass. A malformed
// answer as a whole is an error; a result that does not decode, or a missing answer, is that
// element's Err. Where a node answers an id twice the first answer counts.
func decodeBatch(raw []byte, elems []batchElem, ids []uint64) error {
	type answer struct {
		id, err, result []byte
		hasResult       bool
		inline          int // the element decoded in place, else -1
	}
	byID := make(map[uint64]int, len(elems))
	for i, id := range ids {
		byID[id] = i
	}
	elemOf := func(id []byte) (int, bool) {
		n, err := strconv.ParseUint(strings.Trim(string(id), `"`), 10, 64)
		if err != nil {
			return 0, false
		}
		i, ok := byID[n]
		return i, ok
	}
	seen := make([]bool, len(elems))
	var answers []answer
	s := &scanner{b: raw}
	err := s.array(func() error {
		a := answer{inline: -1}
		err := s.object(func(key []byte) error {
			var err error
			switch string(key) {
			case "id":
				a.id, err = s.raw()
			case "error":
				if s.null() {
					return nil
				}
				a.err, err = s.raw()
			case "result":
				a.hasResult = true
				if i, ok := elemOf(a.id); ok && !seen[i] && a.inline < 0 {
					if d, ok := elems[i].Result.(scanDecoder); ok {
						seen[i], a.inline = true, i
						at := s.i
						if derr := d.scan(s); derr != nil {
							// Well-formed JSON that is not what was asked for: this element's
							// error; the scanner resumes after the value.
							elems[i].Err = fmt.Errorf("%w: %s: %v", errBadResponse, elems[i].Method, derr)
							s.i = at
							return s.skip()
						}
						return nil
					}
				}
				a.result, err = s.raw()
			default:
				err = s.skip()
			}
			return err
		})
		answers = append(answers, a)
		return err
	})
	if err == nil {
		err = s.end()
	}
	if err != nil {
		return fmt.Errorf("%w: %v", errBadResponse, err)
	}
	for _, a := range answers {
		i, ok := a.inline, a.inline >= 0
		if !ok {
			if i, ok = elemOf(a.id); !ok || seen[i] {
				continue
			}
			seen[i] = true
		}
		switch {
		case a.err != nil:
			var re RPCError
			if err := json.Unmarshal(a.err, &re); err != nil {
				elems[i].Err = fmt.Errorf("%w: %s: error object: %v", errBadResponse, elems[i].Method, err)
			} else {
				elems[i].Err = &re
			}
		case a.inline >= 0:
			// decoded in place; Err already says whether it failed
		case !a.hasResult:
			elems[i].Err = fmt.Errorf("%w: no result and no error", errBadResponse)
		default:
			var err error
			if u, ok := elems[i].Result.(json.Unmarshaler); ok {
				err = u.UnmarshalJSON(a.result)
			} else {
				err = json.Unmarshal(a.result, elems[i].Result)
			}
			if err != nil {
				elems[i].Err = fmt.Errorf("%w: %s: %v", errBadResponse, elems[i].Method, err)
			}
		}
	}
	for i := range elems {
		if !seen[i] {
			elems[i].Err = errNoResponse
		}
	}
	return nil
}

// wait holds a request of n calls until the endpoint's rates allow it. Waiting here, before the
// request is sent, is cheaper than the provider's answer to excess: a 429 and a Retry-After of a
// second or more, during which the endpoint is cooled down for every caller.
func (h *httpRPC) wait(ctx context.Context, n int) error {
	var rs []*rate.Reservation
	if h.requests != nil {
		rs = append(rs, h.requests.Reserve())
	}
	if h.calls != nil {
		// A batch larger than the limiter's burst (half a second's calls) takes its calls a burst at
		// a time: the wait is the same, the batch is only sent once all are had.
		for left := n; left > 0; {
			k := min(left, h.calls.Burst())
			rs = append(rs, h.calls.ReserveN(time.Now(), k))
			left -= k
		}
	}
	var d time.Duration
	for _, r := range rs {
		d = max(d, r.Delay())
	}
	if d == 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		if h.waited != nil {
			h.waited(d)
		}
		return nil
	case <-ctx.Done():
		for _, r := range rs {
			r.Cancel() // give the slots back to the requests still waiting
		}
		return fmt.Errorf("wait for the endpoint's request rate: %w", context.Cause(ctx))
	}
}

// post sends body, a request of n calls.
func (h *httpRPC) post(ctx context.Context, body []byte, n int) (*http.Response, error) {
	if err := h.wait(ctx, n); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := h.client.Do(req)
	if err != nil {
		// url.Error repeats the URL, which may carry an API key.
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) && ue.Unwrap() != nil {
			return nil, fmt.Errorf("post: %w", ue.Unwrap())
		}
		return nil, fmt.Errorf("post: %w", err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer drainClose(resp.Body)
	head, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
	herr := &HTTPError{StatusCode: resp.StatusCode, Body: truncate(strings.TrimSpace(string(head)), 300)}
	herr.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	// Some providers answer JSON-RPC errors with 4xx statuses; keep the node's words for
	// classification unless the status itself says what happened.
	if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestEntityTooLarge {
		var single batchResponse
		if json.Unmarshal(head, &single) == nil && single.Error != nil {
			return nil, single.Error
		}
	}
	return nil, herr
}

func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(secs * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

var errBadResponse = errors.New("malformed JSON-RPC answer")

func decodeErr(err error) error {
	switch {
	case errors.Is(err, errResponseTooLarge):
		return err
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fmt.Errorf("read answer: %w", io.ErrUnexpectedEOF)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return fmt.Errorf("read answer: %w", err)
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	if errors.As(err, &se) || errors.As(err, &te) {
		return fmt.Errorf("%w: %v", errBadResponse, err)
	}
	// Anything else came from reading the body: the connection broke.
	return fmt.Errorf("read answer: %w", err)
}

type capReader struct {
	r io.Reader
	n int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		var one [1]byte
		if n, err := c.r.Read(one[:]); n == 0 && err != nil {
			return 0, err // the answer ended exactly at the limit
		}
		return 0, errResponseTooLarge
	}
	if int64(len(p)) > c.n {
		p = p[:c.n]
	}
	n, err := c.r.Read(p)
	c.n -= int64(n)
	return n, err
}

func drainClose(rc io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, rc, 64<<10)
	_ = rc.Close()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
