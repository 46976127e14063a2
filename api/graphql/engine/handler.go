package engine

import (
	"bytes"
	"compress/gzip"
	"embed"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	gqlerrors "github.com/graph-gophers/graphql-go/errors"
)

//go:embed graphiql/index.html graphiql/*.gz
var graphiqlFS embed.FS

// Handler serves the API over HTTP: POST with a JSON (or application/graphql) body, GET with a
// query string, GraphiQL for browsers, CORS preflight. Mount the same handler at every path
// the API answers on; GraphiQL's assets are fetched from that path with ?asset=.
type Handler struct {
	e       *Engine
	gzipper sync.Pool
	origins map[string]bool
	anyOrig bool
	noCORS  bool
}

// NewHandler serves e over HTTP.
func NewHandler(e *Engine) *Handler {
	h := &Handler{e: e, origins: map[string]bool{}}
	switch {
	case e.opts.CORSOrigins == nil:
		h.anyOrig = true
	case len(e.opts.CORSOrigins) == 0:
		h.noCORS = true
	}
	for _, o := range e.opts.CORSOrigins {
		if o == "*" {
			h.anyOrig = true
		}
		h.origins[strings.TrimRight(o, "/")] = true
	}
	h.gzipper.New = func() any {
		w, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
		return w
	}
	return h
}

// Engine is the executor behind the handler (for subscriptions: Execute at a block).
func (h *Handler) Engine() *Engine { return h.e }

// wireRequest is the JSON body of a GraphQL request.
type wireRequest struct {
	Query         string          `json:"query"`
	OperationName string          `json:"operationName"`
	Variables     json.RawMessage `json:"variables"`
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.cors(w, r)
	switch r.Method {
	case http.MethodOptions:
		w.WriteHeader(http.StatusNoContent)
		return
	case http.MethodGet, http.MethodHead:
		if a := r.URL.Query().Get("asset"); a != "" && !h.e.opts.DisableGraphiQL {
			h.asset(w, r, a)
			return
		}
		if !r.URL.Query().Has("query") {
			if !h.e.opts.DisableGraphiQL && strings.Contains(r.Header.Get("Accept"), "text/html") {
				h.asset(w, r, "index.html")
				return
			}
			h.fail(w, r, http.StatusBadRequest, "GET requests need a query parameter (or open this URL in a browser for GraphiQL)")
			return
		}
		q := r.URL.Query()
		req := wireRequest{Query: q.Get("query"), OperationName: q.Get("operationName")}
		if v := q.Get("variables"); v != "" {
			req.Variables = json.RawMessage(v)
		}
		h.serve(w, r, req)
	case http.MethodPost:
		req, status, msg := h.readBody(w, r)
		if msg != "" {
			h.fail(w, r, status, msg)
			return
		}
		h.serve(w, r, req)
	default:
		w.Header().Set("Allow", "GET, POST, OPTIONS")
		h.fail(w, r, http.StatusMethodNotAllowed, "method "+r.Method+" is not allowed: use POST or GET")
	}
}

func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) (wireRequest, int, string) {
	var req wireRequest
	limit := h.e.opts.MaxBodyBytes
	tooBig := "the request body exceeds " + strconv.FormatInt(limit, 10) + " bytes (limit api.max_body_bytes)"
	if r.ContentLength > limit {
		return req, http.StatusRequestEntityTooLarge, tooBig
	}
	// Content-Length never sizes a buffer: it is the client's word, and a client that announces
	// a megabyte and sends nothing would hold that megabyte. The buffer grows as bytes arrive.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return req, http.StatusRequestEntityTooLarge, tooBig
		}
		// The server's own refusals (too slow, too many bytes in flight) carry their status.
		var se interface{ HTTPStatus() int }
		if errors.As(err, &se) {
			if s := se.HTTPStatus(); s == http.StatusServiceUnavailable || s == http.StatusTooManyRequests {
				w.Header().Set("Retry-After", "1")
			}
			w.Header().Set("Connection", "close")
			return req, se.HTTPStatus(), err.Error()
		}
		return req, http.StatusBadRequest, "reading the request body: " + err.Error()
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/graphql" {
		req.Query = string(body)
		if v := r.URL.Query().Get("variables"); v != "" {
			req.Variables = json.RawMessage(v)
		}
		return req, 0, ""
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return req, http.StatusBadRequest, "the request body is empty: send {\"query\": \"...\"}"
	}
	if trimmed[0] == '[' {
		return req, http.StatusBadRequest, "batched requests (a JSON array) are not supported: send one {\"query\": ...} object per request"
	}
	if err := json.Unmarshal(trimmed, &req); err != nil {
		return req, http.StatusBadRequest, "the request body is not a valid GraphQL request: " + err.Error()
	}
	return req, 0, ""
}

// opNameRE finds the operation name when the client did not send operationName.
var opNameRE = regexp.MustCompile(`^\s*(?:#[^\n]*\n\s*)*(?:query|mutation|subscription)\s+([_A-Za-z][_0-9A-Za-z]*)`)

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, wr wireRequest) {
	start := time.Now()
	m := h.e.met
	m.inFlight.Inc()
	defer m.inFlight.Dec()
	name := wr.OperationName
	if name == "" {
		if sm := opNameRE.FindStringSubmatch(wr.Query); sm != nil {
			name = sm[1]
		}
	}
	op := h.e.ops.label(name)
	m.requests.WithLabelValues(op).Inc()
	defer func() { m.duration.WithLabelValues(op).Observe(time.Since(start).Seconds()) }()

	if strings.TrimSpace(wr.Query) == "" {
		m.errors.WithLabelValues(op, codeBadRequest).Inc()
		h.fail(w, r, http.StatusBadRequest, "the request has no query")
		return
	}
	var vars map[string]any
	if v := bytes.TrimSpace(wr.Variables); len(v) > 0 && !bytes.Equal(v, []byte("null")) {
		if v[0] == '"' { // some clients send the variables as a JSON string
			var s string
			if err := json.Unmarshal(v, &s); err == nil {
				v = []byte(s)
			}
		}
		if err := json.Unmarshal(v, &vars); err != nil {
			m.errors.WithLabelValues(op, codeBadRequest).Inc()
			h.fail(w, r, http.StatusBadRequest, "variables must be a JSON object: "+err.Error())
			return
		}
	}
	res := h.e.awaitExecute(r.Context(), Request{Query: wr.Query, OperationName: wr.OperationName, Variables: vars}, ExecOptions{})
	m.statements.Observe(float64(res.Statements))
	status := http.StatusOK
	for _, qe := range res.Errors {
		code := codeOf(qe)
		m.errors.WithLabelValues(op, code).Inc()
		if code == codeLimitBusy {
			status = http.StatusServiceUnavailable
			w.Header().Set("Retry-After", "1")
		}
	}
	m.respBytes.Observe(float64(h.writeResult(w, r, status, res)))
}

// writeResult sends {"data": ..., "errors": ...} without copying data, graphql-go's output,
// into another buffer. It returns the body's length before compression.
func (h *Handler) writeResult(w http.ResponseWriter, r *http.Request, status int, res *Result) int {
	if len(res.Errors) > 0 || res.Data == nil {
		body := res.JSON()
		h.write(w, r, status, body)
		return len(body)
	}
	pre, post := []byte(`{"data":`), []byte(`}`)
	n := len(pre) + len(res.Data) + len(post)
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json; charset=utf-8")
	hdr.Add("Vary", "Accept-Encoding")
	if n >= gzipMin && acceptsGzip(r) {
		hdr.Set("Content-Encoding", "gzip")
		w.WriteHeader(status)
		gz := h.gzipper.Get().(*gzip.Writer)
		gz.Reset(w)
		_, _ = gz.Write(pre)
		_, _ = gz.Write(res.Data)
		_, _ = gz.Write(post)
		_ = gz.Close()
		h.gzipper.Put(gz)
		return n
	}
	hdr.Set("Content-Length", strconv.Itoa(n))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(pre)
		_, _ = w.Write(res.Data)
		_, _ = w.Write(post)
	}
	return n
}

func codeOf(qe *gqlerrors.QueryError) string {
	if c, ok := qe.Extensions["code"].(string); ok {
		return c
	}
	if qe.ResolverError != nil {
		return codeInternal
	}
	return "GRAPHQL_VALIDATION"
}

// fail answers a request that could not be read as a GraphQL request.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	h.write(w, r, status, encodeResponse(nil, []*gqlerrors.QueryError{queryError(&Error{Code: codeBadRequest, Msg: msg})}))
}

const gzipMin = 1024

func (h *Handler) write(w http.ResponseWriter, r *http.Request, status int, body []byte) {
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json; charset=utf-8")
	hdr.Add("Vary", "Accept-Encoding")
	if len(body) >= gzipMin && acceptsGzip(r) {
		hdr.Set("Content-Encoding", "gzip")
		w.WriteHeader(status)
		gz := h.gzipper.Get().(*gzip.Writer)
		gz.Reset(w)
		_, _ = gz.Write(body)
		_ = gz.Close()
		h.gzipper.Put(gz)
		return
	}
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(enc) == "gzip" && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

func (h *Handler) cors(w http.ResponseWriter, r *http.Request) {
	if h.noCORS {
		return
	}
	origin := r.Header.Get("Origin")
	hdr := w.Header()
	switch {
	case h.anyOrig:
		hdr.Set("Access-Control-Allow-Origin", "*")
	case origin != "" && h.origins[origin]:
		hdr.Set("Access-Control-Allow-Origin", origin)
		hdr.Add("Vary", "Origin")
	default:
		return
	}
	if r.Method == http.MethodOptions {
		hdr.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
			hdr.Set("Access-Control-Allow-Headers", req)
		} else {
			hdr.Set("Access-Control-Allow-Headers", "Content-Type, Authorization")
		}
		hdr.Set("Access-Control-Max-Age", "600")
	}
}

var assetTypes = map[string]string{
	"index.html":                  "text/html; charset=utf-8",
	"graphiql.min.js":             "text/javascript; charset=utf-8",
	"graphiql.min.css":            "text/css; charset=utf-8",
	"react.production.min.js":     "text/javascript; charset=utf-8",
	"react-dom.production.min.js": "text/javascript; charset=utf-8",
}

// asset serves GraphiQL from the binary; the big files are stored gzipped and sent as they are
// to clients that accept gzip (every browser).
func (h *Handler) asset(w http.ResponseWriter, r *http.Request, name string) {
	ct, ok := assetTypes[name]
	if !ok {
		h.fail(w, r, http.StatusNotFound, "no such asset")
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", ct)
	if name == "index.html" {
		b, _ := graphiqlFS.ReadFile("graphiql/index.html")
		hdr.Set("Cache-Control", "no-cache")
		_, _ = w.Write(b)
		return
	}
	gz, err := graphiqlFS.ReadFile("graphiql/" + name + ".gz")
	if err != nil {
		h.fail(w, r, http.StatusNotFound, "no such asset")
		return
	}
	hdr.Set("Cache-Control", "public, max-age=86400")
	hdr.Add("Vary", "Accept-Encoding")
	if acceptsGzip(r) {
		hdr.Set("Content-Encoding", "gzip")
		hdr.Set("Content-Length", strconv.Itoa(len(gz)))
		_, _ = w.Write(gz)
		return
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, "asset: "+err.Error())
		return
	}
	_, _ = io.Copy(w, zr)
}

// encodeResponse renders {"data": ..., "errors": [...]}: data is omitted when nil, errors when
// empty.
func encodeResponse(data []byte, errs []*gqlerrors.QueryError) []byte {
	var b bytes.Buffer
	b.Grow(len(data) + 32)
	b.WriteByte('{')
	if data != nil {
		b.WriteString(`"data":`)
		b.Write(data)
	}
	if len(errs) > 0 {
		if data != nil {
			b.WriteByte(',')
		}
		b.WriteString(`"errors":`)
		eb, err := json.Marshal(errs)
		if err != nil {
			eb = []byte(`[{"message":"internal error: cannot encode errors"}]`)
		}
		b.Write(eb)
	}
	b.WriteByte('}')
	return b.Bytes()
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
