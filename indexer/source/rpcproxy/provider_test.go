package rpcproxy

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestProviderLimits: the provider mode's rate limits answer 429 with Retry-After, its caps
// answer each provider's words, and every request, element, method and byte is counted.
func TestProviderLimits(t *testing.T) {
	c := startChain(t, 3)
	p, err := New(c.HTTPURL)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	// A request rate of 1/s (a bucket of one): the second request at once is refused.
	p.SetProvider(Provider{RequestsPerSecond: 1})
	one := `{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}`
	if code, _, _ := post(t, p.URL(), one); code != 200 {
		t.Fatalf("first request: status %d", code)
	}
	code, hdr, _ := post(t, p.URL(), one)
	if code != 429 || hdr.Get("Retry-After") == "" {
		t.Errorf("second request within the second: status %d, Retry-After %q; want 429 with Retry-After", code, hdr.Get("Retry-After"))
	}
	if u := p.Usage(); u.Requests != 2 || u.RateLimited != 1 || u.Methods["eth_blockNumber"] != 2 || u.BytesSent == 0 || u.BytesReceived != int64(2*len(one)) {
		t.Errorf("usage after two requests: %+v", u)
	}

	// Batch elements count one by one against the element rate.
	p.SetProvider(Provider{ElementsPerSecond: 3})
	batch := func(n int) string {
		var parts []string
		for i := range n {
			parts = append(parts, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"eth_chainId","params":[]}`, i))
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	if code, _, _ := post(t, p.URL(), batch(3)); code != 200 {
		t.Errorf("a batch of 3 within 3 elements/s: status %d", code)
	}
	if code, _, _ := post(t, p.URL(), batch(2)); code != 429 {
		t.Errorf("2 more elements in the same second: status %d, want 429", code)
	}
	if u := p.Usage(); u.Requests != 2 || u.Elements != 5 {
		t.Errorf("usage: %d requests, %d elements; want 2 and 5", u.Requests, u.Elements)
	}

	// Batch cap: every element refused.
	p.SetProvider(Provider{MaxBatch: 2, Style: QuickNode})
	_, _, body := post(t, p.URL(), batch(3))
	var answers []message
	if err := json.Unmarshal(body, &answers); err != nil || len(answers) != 3 {
		t.Fatalf("batch over the cap: %s (%v)", body, err)
	}
	for _, a := range answers {
		if a.Error == nil || !strings.Contains(a.Error.Message, "Batch size is too large") {
			t.Errorf("element over the batch cap: %+v", a)
		}
	}

	// Range caps in each provider's words, and a result-size cap.
	logs := func(from, to uint64) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[{"fromBlock":"%s","toBlock":"%s"}]}`, quantity(from), quantity(to))
	}
	for style, want := range map[HintStyle]string{
		Chainstack: "query exceeds max block range 2",
		QuickNode:  "eth_getLogs is limited to a 2 range",
		Infura:     "query returned more than 10000 results. Try with this block range [0x0, 0x1].",
		Alchemy:    "this block range should work: [0x0, 0x1]",
	} {
		p.SetProvider(Provider{MaxLogsRange: 2, Style: style})
		_, _, body := post(t, p.URL(), logs(0, 3))
		var a message
		if err := json.Unmarshal(body, &a); err != nil || a.Error == nil || !strings.Contains(a.Error.Message, want) {
			t.Errorf("style %d: %s, want an error containing %q", style, body, want)
		}
		if _, _, body := post(t, p.URL(), logs(0, 1)); strings.Contains(string(body), "error") {
			t.Errorf("style %d: a range within the cap was refused: %s", style, body)
		}
	}
	// The dev chain's deployment logs: more than 1 in its first blocks.
	p.SetProvider(Provider{MaxLogs: 1, Style: Infura})
	head := c.Head().Number.Uint64()
	_, _, body = post(t, p.URL(), logs(0, head))
	if !strings.Contains(string(body), "more than 10000 results") {
		t.Errorf("answer over the result cap: %s", body)
	}

	// Latency: every answer waits at least Latency-Jitter.
	p.SetProvider(Provider{Latency: 60 * time.Millisecond, Jitter: 10 * time.Millisecond})
	start := time.Now()
	post(t, p.URL(), one)
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("answer after %v with 60±10ms of latency", d)
	}

	// Server errors: every request at a share of 1.
	p.SetProvider(Provider{ServerErrors: 1})
	if code, _, _ := post(t, p.URL(), one); code != 503 {
		t.Errorf("status %d with every request failing, want 503", code)
	}
	if u := p.Usage(); u.ServerErrors != 1 {
		t.Errorf("server errors counted: %d", u.ServerErrors)
	}
}
