package source

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// A node may answer a batch in any order, or leave calls out; geth answers in order. The fake
// server is for exactly that: answers a real node does not give.
func TestBatchAnswersOutOfOrderAndMissing(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var reqs []struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		if err := json.Unmarshal(body, &reqs); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		var out []map[string]any
		for i := len(reqs) - 1; i >= 0; i-- { // reversed
			switch reqs[i].Method {
			case "a":
				out = append(out, map[string]any{"jsonrpc": "2.0", "id": reqs[i].ID, "result": "0x1"})
			case "b":
				out = append(out, map[string]any{"jsonrpc": "2.0", "id": reqs[i].ID, "result": []int{7, 8}})
			case "c":
				out = append(out, map[string]any{"jsonrpc": "2.0", "id": reqs[i].ID, "error": map[string]any{"code": -32000, "message": "nope"}})
			}
			// "d" gets no answer
		}
		_ = json.NewEncoder(w).Encode(out)
	}))
	defer srv.Close()
	h := &httpRPC{url: srv.URL, client: srv.Client(), maxResp: 1 << 20}
	var a string
	var b []int
	var c, d json.RawMessage
	elems := []batchElem{{Method: "a", Result: &a}, {Method: "b", Result: &b}, {Method: "c", Result: &c}, {Method: "d", Result: &d}}
	if err := h.batch(context.Background(), elems); err != nil {
		t.Fatal(err)
	}
	if a != "0x1" || len(b) != 2 || b[1] != 8 || elems[0].Err != nil || elems[1].Err != nil {
		t.Fatalf("a=%q b=%v errs %v %v", a, b, elems[0].Err, elems[1].Err)
	}
	var re *RPCError
	if !errors.As(elems[2].Err, &re) || re.Message != "nope" {
		t.Fatalf("c: %v", elems[2].Err)
	}
	if !errors.Is(elems[3].Err, errNoResponse) {
		t.Fatalf("d: %v", elems[3].Err)
	}
	if _, cls, _ := classify(elems[3].Err); cls != transient {
		t.Fatal("a missing answer should be retried")
	}
}

func TestHTTPErrorsKeepTheNodesWords(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/429":
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(429)
			_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":1,"error":{"code":-32005,"message":"rate limited"}}`))
		case "/400":
			w.WriteHeader(400)
			_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"Log response size exceeded. this block range should work: [0x1, 0x2]"}}`))
		}
	}))
	defer srv.Close()
	h := &httpRPC{url: srv.URL + "/429", client: srv.Client(), maxResp: 1 << 20}
	var out any
	err := h.call(context.Background(), &out, "eth_blockNumber")
	var he *HTTPError
	if !errors.As(err, &he) || he.StatusCode != 429 || he.RetryAfter.Seconds() != 3 {
		t.Fatalf("429: %v", err)
	}
	h.url = srv.URL + "/400"
	err = h.call(context.Background(), &out, "eth_getLogs")
	var rte *RangeTooLargeError
	if !errors.As(logsError(err, true, 1, 10, 0, false), &rte) || rte.SuggestedTo != 2 {
		t.Fatalf("400 with a JSON-RPC error: %v", err)
	}
}

// TestBatchDecodesInPlace: results whose id comes first are decoded in place (geth's order),
// others from their extent; a result that is well-formed JSON but not what was asked for is
// that element's error and leaves its neighbours decoded; a repeated id counts once.
func TestBatchDecodesInPlace(t *testing.T) {
	const good = `[{"transactionHash":"0x0100000000000000000000000000000000000000000000000000000000000000",` +
		`"blockHash":"0x0200000000000000000000000000000000000000000000000000000000000000","blockNumber":"0x5",` +
		`"transactionIndex":"0x0","gasUsed":"0x5208","effectiveGasPrice":"0x3b9aca00",` +
		`"from":"0x0300000000000000000000000000000000000000","to":null,"logs":[],"logsBloom":"0x00"}]`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var reqs []struct {
			ID json.RawMessage `json:"id"`
		}
		if err := json.Unmarshal(body, &reqs); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		id := func(i int) string { return string(reqs[i].ID) }
		_, _ = io.WriteString(w, `[`+
			`{"jsonrpc":"2.0","id":`+id(0)+`,"result":`+good+`},`+
			`{"jsonrpc":"2.0","id":`+id(1)+`,"result":[{"transactionHash":"0xzz"}]},`+
			`{"jsonrpc":"2.0","result":`+good+`,"id":`+id(2)+`},`+
			`{"jsonrpc":"2.0","id":`+id(3)+`,"result":null},`+
			`{"jsonrpc":"2.0","id":`+id(0)+`,"result":[]}]`)
	}))
	defer srv.Close()
	h := &httpRPC{url: srv.URL, client: srv.Client(), maxResp: 1 << 20}
	lists := make([]receiptList, 4)
	elems := make([]batchElem, 4)
	for i := range elems {
		elems[i] = batchElem{Method: "eth_getBlockReceipts", Result: &lists[i]}
	}
	if err := h.batch(context.Background(), elems); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 2} {
		if elems[i].Err != nil || len(lists[i].List) != 1 || lists[i].List[0].GasUsed != 21000 || lists[i].List[0].BlockNumber != 5 {
			t.Fatalf("element %d: err %v, %+v", i, elems[i].Err, lists[i].List)
		}
	}
	if !errors.Is(elems[1].Err, errBadResponse) {
		t.Fatalf("element 1: %v, want a bad response", elems[1].Err)
	}
	if elems[3].Err != nil || !lists[3].Null {
		t.Fatalf("element 3: err %v null %v", elems[3].Err, lists[3].Null)
	}
}
