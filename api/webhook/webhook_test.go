package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"
)

const (
	vecSecret = "a-subscription-secret"
	vecBody   = `{"event":"user.created"}`
	vecT      = "1800000000"
	vecV0     = "d17d66b66fca89390c5b967c45e8928fc732db07a0aabe8167b1e98213081ffe"
	vecV1     = "19a6fb8f6581715b241a93af02a58611c3b0ac7b747a8d2a5b120ee418d0c347"
)

var vecTime = time.Unix(1800000000, 0)

func TestHook0Vectors(t *testing.T) {
	if got := hex.EncodeToString(SignV0([]byte(vecSecret), vecT, []byte(vecBody))); got != vecV0 {
		t.Fatalf("v0 = %s, want %s", got, vecV0)
	}
	got := hex.EncodeToString(SignV1([]byte(vecSecret), vecT, "x-event-id x-delivery-id", []string{"evt-1", "dlv-1"}, []byte(vecBody)))
	if got != vecV1 {
		t.Fatalf("v1 = %s, want %s", got, vecV1)
	}
}

func TestVerifierVectors(t *testing.T) {
	v := verifier{secrets: [][]byte{[]byte(vecSecret)}, tolerance: 5 * time.Minute}
	h := http.Header{}
	h.Set("X-Event-Id", "evt-1")
	h.Set("X-Delivery-Id", "dlv-1")
	cases := []struct {
		name, sig string
		now       time.Time
		want      error
	}{
		{"v0", "t=" + vecT + ",v0=" + vecV0, vecTime, nil},
		{"v1 only", "t=" + vecT + ",h=x-event-id x-delivery-id,v1=" + vecV1, vecTime, nil},
		{"v0 and v1", "t=" + vecT + ",v0=" + vecV0 + ",h=x-event-id x-delivery-id,v1=" + vecV1, vecTime, nil},
		// v0 wins when present: a good v1 does not rescue a bad v0.
		{"bad v0 good v1", "t=" + vecT + ",v0=" + strings.Repeat("00", 32) + ",h=x-event-id x-delivery-id,v1=" + vecV1, vecTime, errBadSignature},
		{"v1 wrong header value", "t=" + vecT + ",h=x-event-id x-other,v1=" + vecV1, vecTime, errBadSignature},
		{"4m59 late", "t=" + vecT + ",v0=" + vecV0, vecTime.Add(299 * time.Second), nil},
		{"stale", "t=" + vecT + ",v0=" + vecV0, vecTime.Add(301 * time.Second), errStale},
		{"future", "t=" + vecT + ",v0=" + vecV0, vecTime.Add(-301 * time.Second), errStale},
		{"tampered t", "t=1800000001,v0=" + vecV0, vecTime, errBadSignature},
		{"no t", "v0=" + vecV0, vecTime, errBadHeader},
		{"no mac", "t=" + vecT, vecTime, errBadHeader},
		{"v1 without h", "t=" + vecT + ",v1=" + vecV1, vecTime, errBadHeader},
		{"short mac", "t=" + vecT + ",v0=abcd", vecTime, errBadHeader},
		{"not hex", "t=" + vecT + ",v0=" + strings.Repeat("zz", 32), vecTime, errBadHeader},
		{"garbage", "hello", vecTime, errBadHeader},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hh := h.Clone()
			hh.Set(HeaderHook0Signature, c.sig)
			if got := v.verify(hh, []byte(vecBody), c.now); got != c.want {
				t.Fatalf("verify = %v, want %v", got, c.want)
			}
		})
	}
	// One changed byte of the body fails.
	hh := h.Clone()
	hh.Set(HeaderHook0Signature, "t="+vecT+",v0="+vecV0)
	if err := v.verify(hh, []byte(`{"event":"user.created" }`), vecTime); err != errBadSignature {
		t.Fatalf("tampered body: %v", err)
	}
}

// harness is a handler with a recording sink and its own metrics registry.
type harness struct {
	h     *Handler
	reg   *prometheus.Registry
	mu    sync.Mutex
	hints []Hint
	got   chan Hint
	now   time.Time
}

func newHarness(t *testing.T, mod func(*Config)) *harness {
	t.Helper()
	hs := &harness{reg: prometheus.NewRegistry(), got: make(chan Hint, 1000), now: time.Now()}
	cfg := Config{
		Secrets:       []string{"s3cret"},
		LegacySecrets: []string{"legacy"},
		Networks:      []string{"base-sepolia", "base-mainnet"},
		RateLimit:     -1,
		Now:           func() time.Time { return hs.now },
	}
	if mod != nil {
		mod(&cfg)
	}
	sink := SinkFunc(func(ctx context.Context, h Hint) error {
		hs.mu.Lock()
		hs.hints = append(hs.hints, h)
		hs.mu.Unlock()
		hs.got <- h
		return nil
	})
	h, err := New(cfg, sink, slog.New(slog.NewTextHandler(io.Discard, nil)), hs.reg)
	if err != nil {
		t.Fatal(err)
	}
	hs.h = h
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = h.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return hs
}

// signed builds a CDP v2 request as Hook0 sends it, with v0 and v1.
func signed(secret string, ts time.Time, eventID, eventType, body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/webhooks/coinbase", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if eventID != "" {
		r.Header.Set(HeaderEventID, eventID)
	}
	if eventType != "" {
		r.Header.Set(HeaderEventType, eventType)
	}
	tt := strconv.FormatInt(ts.Unix(), 10)
	hl := "content-type x-event-id x-event-type"
	v0 := SignV0([]byte(secret), tt, []byte(body))
	v1 := SignV1([]byte(secret), tt, hl, []string{"application/json", eventID, eventType}, []byte(body))
	r.Header.Set(HeaderHook0Signature, fmt.Sprintf("t=%s,v0=%x,h=%s,v1=%x", tt, v0, hl, v1))
	return r
}

func (hs *harness) do(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	hs.h.ServeHTTP(w, r)
	return w
}

func (hs *harness) counter(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := hs.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "echain_indexer_webhook_"+name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metric
				}
			}
			if m.Counter != nil {
				total += m.Counter.GetValue()
			} else if m.Gauge != nil {
				total += m.Gauge.GetValue()
			}
		}
	}
	return total
}

func (hs *harness) wait(t *testing.T) Hint {
	t.Helper()
	select {
	case h := <-hs.got:
		return h
	case <-time.After(60 * time.Second):
		t.Fatal("no hint reached the sink")
		return Hint{}
	}
}

func (hs *harness) none(t *testing.T) {
	t.Helper()
	select {
	case h := <-hs.got:
		t.Fatalf("unexpected hint %+v", h)
	case <-time.After(50 * time.Millisecond):
	}
}

// Verbatim from the reference: CDP v2 onchain.activity.detected (OpenAPI example).
const onchainBody = `{"block_number":46218191,"contract_address":"0x940181a94A35A4569E4529A3CDfB74e38FD98631",
 "event_name":"Transfer","event_signature":"Transfer(address,address,uint256)","log_index":29,
 "network":"base-mainnet",
 "parameters":{"from":"0xF33a96b5932D9E9B9A0eDA447AbD8C9d48d2e0c8","to":"0x61040E143A77F165Ba44543AF4A079F2C809D14b","value":"474891138228179365"},
 "timestamp":"2026-05-19T21:22:10Z","transaction_from":"0x3E16D476D8Df15e3E776EAa5A46f37EC44C830cD",
 "transaction_hash":"0xa58e4471bcce875b1ea49cc0864a620d3a484b9b7c1b0b4fd18ce83f5b30e5e0",
 "transaction_to":"0x61040E143A77F165Ba44543AF4A079F2C809D14b"}`

// Verbatim: CDP v2 wallet.activity.detected.
const walletBody = `{"eventId":"123e4567-e89b-12d3-a456-426614174000","timestamp":"2025-06-01T12:00:00Z",
 "data":{"network":"base-mainnet","blockNumber":"12345678","blockTimestamp":"2025-06-01T11:59:55Z",
  "transactionHash":"0xabc123def456789012345678901234567890abcdef1234567890abcdef123456",
  "logIndex":"0","contractAddress":"0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913","eventName":"Transfer"},
 "eventType":"wallet.activity.detected"}`

// Verbatim: legacy v1 erc20_transfer fixture.
const erc20Body = `{"webhookId":"66bd79d0b9c200eae1a43165","eventType":"erc20_transfer","network":"base-mainnet",
 "blockHash":"0x60036a0f0454582f60cab6f98990cdcca519b87dd63d5ec01724ce2337129abc","blockNumber":"18452087",
 "blockTime":"2024-08-15T03:45:21.000Z","transactionHash":"0x7f7bc473ee2b94792f033f4d12d0d4d057dab0b5b4f32cd058ad95ee652af948",
 "transactionIndex":"16","logIndex":"46","contractAddress":"0x833589fcd6edb6e08f4c7c32d4f71b54bda02913",
 "from":"0xbb8b2da5db110ad625270061e81987ce342677c3","to":"0xfb2139331532e3ee59777fbbcb14af674f3fd671","value":"46737096"}`

func legacy(header, secret, body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/webhooks/coinbase", strings.NewReader(body))
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	r.Header.Set(header, hex.EncodeToString(m.Sum(nil)))
	return r
}

func TestPayloadShapes(t *testing.T) {
	hs := newHarness(t, nil)
	wrapped := `{"eventType":"onchain.activity.detected","data":` + onchainBody + `}`
	erc721 := `{"webhookId":"w1","eventType":"erc721_transfer","network":"base-sepolia","blockNumber":18452088,
 "transactionHash":"0x1111111111111111111111111111111111111111111111111111111111111111","transactionIndex":3,"logIndex":7,
 "contractAddress":"0xc8cd32F0b2a6EE43f465a3f88BC52955A805043C","from":"0x0000000000000000000000000000000000000000","to":"0xfb2139331532e3ee59777fbbcb14af674f3fd671","tokenId":"5"}`
	sce := `{"webhookId":"w2","eventType":"smart_contract_event_activity","network":"base-sepolia","blockNumber":"99",
 "transactionHash":"0x2222222222222222222222222222222222222222222222222222222222222222","logIndex":"0",
 "contractAddress":"0xA97cB40548905B05A67fCD4765438aFBEA4030fc","projectName":"p","contractName":"EventFactory","func":"createEvent","sig":"x","fourBytes":"0x76c5d08b"}`
	cases := []struct {
		name string
		req  *http.Request
		want Hint
	}{
		{"onchain flat", signed("s3cret", hs.now, "e1", "onchain.activity.detected", onchainBody), Hint{
			Network: "base-mainnet", Block: 46218191, LogIndex: 29,
			TxHash:   common.HexToHash("0xa58e4471bcce875b1ea49cc0864a620d3a484b9b7c1b0b4fd18ce83f5b30e5e0"),
			Contract: common.HexToAddress("0x940181a94A35A4569E4529A3CDfB74e38FD98631")}},
		{"wallet envelope", signed("s3cret", hs.now, "", "", walletBody), Hint{
			Network: "base-mainnet", Block: 12345678, LogIndex: 0,
			TxHash:   common.HexToHash("0xabc123def456789012345678901234567890abcdef1234567890abcdef123456"),
			Contract: common.HexToAddress("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913")}},
		{"erc20 legacy", legacy(HeaderCoinbaseSig, "legacy", erc20Body), Hint{
			Network: "base-mainnet", Block: 18452087, LogIndex: 46,
			TxHash:   common.HexToHash("0x7f7bc473ee2b94792f033f4d12d0d4d057dab0b5b4f32cd058ad95ee652af948"),
			Contract: common.HexToAddress("0x833589fcd6edb6e08f4c7c32d4f71b54bda02913")}},
		{"erc721 legacy commerce header, integers", legacy(HeaderCommerceSig, "legacy", erc721), Hint{
			Network: "base-sepolia", Block: 18452088, LogIndex: 7,
			TxHash:   common.HexToHash("0x1111111111111111111111111111111111111111111111111111111111111111"),
			Contract: common.HexToAddress("0xc8cd32F0b2a6EE43f465a3f88BC52955A805043C")}},
		{"smart contract activity", legacy(HeaderCoinbaseSig, "legacy", sce), Hint{
			Network: "base-sepolia", Block: 99, LogIndex: 0,
			TxHash:   common.HexToHash("0x2222222222222222222222222222222222222222222222222222222222222222"),
			Contract: common.HexToAddress("0xA97cB40548905B05A67fCD4765438aFBEA4030fc")}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := hs.do(c.req)
			if w.Code != http.StatusOK || strings.TrimSpace(w.Body.String()) != "accepted" {
				t.Fatalf("status %d %q", w.Code, w.Body.String())
			}
			got := hs.wait(t)
			if !got.ReceivedAt.Equal(hs.now) {
				t.Fatalf("ReceivedAt %v, want %v", got.ReceivedAt, hs.now)
			}
			got.ReceivedAt = time.Time{}
			if got != c.want {
				t.Fatalf("hint %+v\nwant %+v", got, c.want)
			}
		})
	}
	// The data-wrapped onchain payload names the same log as the flat one: a duplicate.
	if w := hs.do(signed("s3cret", hs.now, "e-wrapped", "", wrapped)); strings.TrimSpace(w.Body.String()) != "duplicate" {
		t.Fatalf("wrapped onchain: %d %q", w.Code, w.Body.String())
	}
	hs.none(t)
}

func TestParseWrappedAndNumbers(t *testing.T) {
	wrapped := `{"eventType":"onchain.activity.detected","data":` + onchainBody + `}`
	ev, err := parsePayload([]byte(wrapped), "")
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != "onchain.activity.detected" || ev.Block != 46218191 || ev.LogIndex != 29 || !ev.HasLog || ev.Network != "base-mainnet" {
		t.Fatalf("wrapped: %+v", ev)
	}
	for _, c := range []struct {
		body  string
		block uint64
		err   bool
	}{
		{`{"block_number":"0x10"}`, 16, false},
		{`{"block_number":" 42 "}`, 42, false},
		{`{"block_number":null}`, 0, false},
		{`{"block_number":-1}`, 0, true},
		{`{"block_number":1.5}`, 0, true},
		{`{"block_number":"abc"}`, 0, true},
		{`{"blockNumber":true}`, 0, true},
		{`{"transaction_hash":"0x12"}`, 0, true},
		{`{"contract_address":"nope"}`, 0, true},
		{`[1,2]`, 0, true},
		{`{"data":{"transaction_hash":5}}`, 0, true},
	} {
		ev, err := parsePayload([]byte(c.body), "")
		if (err != nil) != c.err || (err == nil && ev.Block != c.block) {
			t.Errorf("%s: block %d err %v", c.body, ev.Block, err)
		}
	}
}

func TestRejections(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.MaxBody = 2048 })
	good := onchainBody
	big := `{"pad":"` + strings.Repeat("x", 3000) + `"}`
	chunked := signed("s3cret", hs.now, "big2", "", big)
	chunked.ContentLength = -1 // as with Transfer-Encoding: chunked: only the reader's limit catches it
	noSig := signed("s3cret", hs.now, "x", "", good)
	noSig.Header.Del(HeaderHook0Signature)
	get := signed("s3cret", hs.now, "x", "", good)
	get.Method = http.MethodGet
	legacyNoSecret := legacy(HeaderCoinbaseSig, "legacy", good)
	cases := []struct {
		name   string
		req    *http.Request
		status int
		reason string
	}{
		{"wrong method", get, 405, "method"},
		{"missing signature", noSig, 401, "missing_signature"},
		{"wrong secret", signed("other", hs.now, "x", "", good), 401, "bad_signature"},
		{"stale", signed("s3cret", hs.now.Add(-6*time.Minute), "x", "", good), 401, "stale"},
		{"future", signed("s3cret", hs.now.Add(6*time.Minute), "x", "", good), 401, "stale"},
		{"oversized", signed("s3cret", hs.now, "big", "", big), 413, "too_large"},
		{"oversized chunked", chunked, 413, "too_large"},
		{"malformed json", signed("s3cret", hs.now, "x", "", `{"block_number":`), 400, "malformed"},
		{"bad hash", signed("s3cret", hs.now, "x", "", `{"transaction_hash":"0xzz"}`), 400, "malformed"},
		{"legacy wrong secret", legacy(HeaderCoinbaseSig, "nope", good), 401, "bad_signature"},
		{"legacy garbage", func() *http.Request {
			r := legacy(HeaderCommerceSig, "legacy", good)
			r.Header.Set(HeaderCommerceSig, "xyz")
			return r
		}(), 401, "malformed_signature"},
		{"legacy valid", legacyNoSecret, 200, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := hs.counter(t, "rejected_total", "reason", c.reason)
			w := hs.do(c.req)
			if w.Code != c.status {
				t.Fatalf("status %d, want %d (%s)", w.Code, c.status, w.Body.String())
			}
			if c.status == 405 && w.Header().Get("Allow") != "POST" {
				t.Fatalf("Allow = %q", w.Header().Get("Allow"))
			}
			if c.reason != "" {
				if got := hs.counter(t, "rejected_total", "reason", c.reason); got != before+1 {
					t.Fatalf("rejected{%s} = %v, want %v", c.reason, got, before+1)
				}
			}
		})
	}
	// Only the one valid request produced a hint.
	hs.wait(t)
	hs.none(t)
	// malformed json and bad hash verified (their signatures were good) before failing to parse.
	if got := hs.counter(t, "verified_total"); got != 3 {
		t.Fatalf("verified = %v, want 3", got)
	}
}

func TestLegacyRejectedWithoutLegacySecret(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.LegacySecrets = nil })
	w := hs.do(legacy(HeaderCoinbaseSig, "legacy", onchainBody))
	if w.Code != 401 || hs.counter(t, "rejected_total", "reason", "no_secret") != 1 {
		t.Fatalf("status %d", w.Code)
	}
}

func TestDuplicates(t *testing.T) {
	hs := newHarness(t, nil)
	body := func(tx string, li int) string {
		return fmt.Sprintf(`{"block_number":7,"contract_address":"0x940181a94A35A4569E4529A3CDfB74e38FD98631","log_index":%d,"network":"base-sepolia","transaction_hash":"%s"}`, li, tx)
	}
	tx1 := "0x" + strings.Repeat("11", 32)
	tx2 := "0x" + strings.Repeat("22", 32)
	steps := []struct {
		id, body, want string
	}{
		{"evt-a", body(tx1, 0), "accepted"},
		{"evt-a", body(tx1, 0), "duplicate"}, // a retry: same event id, re-signed
		{"evt-b", body(tx1, 0), "duplicate"}, // same log under a new id
		{"evt-a", body(tx2, 0), "duplicate"}, // same id, whatever the body
		{"evt-c", body(tx1, 1), "accepted"},  // another log of the same transaction
		{"", body(tx2, 3), "accepted"},       // no id at all: the natural key still works
		{"", body(tx2, 3), "duplicate"},
	}
	for i, s := range steps {
		hs.now = hs.now.Add(time.Second) // each retry is signed afresh
		w := hs.do(signed("s3cret", hs.now, s.id, "onchain.activity.detected", s.body))
		if w.Code != 200 || strings.TrimSpace(w.Body.String()) != s.want {
			t.Fatalf("step %d: %d %q, want %s", i, w.Code, w.Body.String(), s.want)
		}
	}
	for range 3 {
		hs.wait(t)
	}
	hs.none(t)
	if got := hs.counter(t, "duplicates_total"); got != 4 {
		t.Fatalf("duplicates = %v", got)
	}
}

func TestIgnored(t *testing.T) {
	ticket := common.HexToAddress("0xc8cd32F0b2a6EE43f465a3f88BC52955A805043C")
	var mu sync.Mutex
	indexed := map[common.Address]bool{}
	hs := newHarness(t, func(c *Config) {
		c.Networks = []string{"base-sepolia"}
		c.Indexed = func(a common.Address) bool { mu.Lock(); defer mu.Unlock(); return indexed[a] }
	})
	b := func(network string) string {
		return `{"block_number":7,"contract_address":"` + ticket.Hex() + `","log_index":0,"network":"` + network + `","transaction_hash":"0x` + strings.Repeat("ab", 32) + `"}`
	}
	cases := []struct {
		name, typ, body, reason string
	}{
		{"other network", "onchain.activity.detected", b("base-mainnet"), "network"},
		{"unknown type", "onramp.transaction.updated", b("base-sepolia"), "event_type"},
		{"no tx", "onchain.activity.detected", `{"network":"base-sepolia","contract_address":"` + ticket.Hex() + `"}`, "no_transaction"},
		{"no contract", "onchain.activity.detected", `{"network":"base-sepolia","transaction_hash":"0x` + strings.Repeat("ab", 32) + `"}`, "no_contract"},
		{"not yet indexed", "onchain.activity.detected", b("base-sepolia"), "contract"},
	}
	for i, c := range cases {
		w := hs.do(signed("s3cret", hs.now, fmt.Sprint("i", i), c.typ, c.body))
		if w.Code != 200 || hs.counter(t, "ignored_total", "reason", c.reason) != 1 {
			t.Fatalf("%s: %d %q", c.name, w.Code, w.Body.String())
		}
	}
	hs.none(t)
	// The clone set grew: the same log is now wanted, and was not remembered as seen while ignored.
	mu.Lock()
	indexed[ticket] = true
	mu.Unlock()
	if w := hs.do(signed("s3cret", hs.now, "i4-retry", "onchain.activity.detected", b("base-sepolia"))); strings.TrimSpace(w.Body.String()) != "accepted" {
		t.Fatalf("after growth: %q", w.Body.String())
	}
	if h := hs.wait(t); h.Contract != ticket || h.Block != 7 {
		t.Fatalf("hint %+v", h)
	}
}

func TestRotation(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.Secrets = []string{"new-secret", "old-secret"} })
	for i, s := range []string{"new-secret", "old-secret"} {
		body := fmt.Sprintf(`{"block_number":%d,"contract_address":"0x940181a94A35A4569E4529A3CDfB74e38FD98631","log_index":0,"network":"base-sepolia","transaction_hash":"0x%064x"}`, i+1, i+1)
		if w := hs.do(signed(s, hs.now, "", "", body)); w.Code != 200 {
			t.Fatalf("secret %s: %d", s, w.Code)
		}
		hs.wait(t)
	}
	if w := hs.do(signed("retired-secret", hs.now, "", "", onchainBody)); w.Code != 401 {
		t.Fatalf("retired secret: %d", w.Code)
	}
}

func TestRateLimitPerSource(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.RateLimit = 1; c.RateBurst = 3 })
	from := func(ip string) int {
		r := signed("s3cret", hs.now, "", "", `{}`)
		r.RemoteAddr = ip + ":4242"
		return hs.do(r).Code
	}
	for i := range 3 {
		if c := from("192.0.2.1"); c != 200 {
			t.Fatalf("request %d: %d", i, c)
		}
	}
	if c := from("192.0.2.1"); c != 429 {
		t.Fatalf("4th request: %d, want 429", c)
	}
	if c := from("192.0.2.2"); c != 200 {
		t.Fatalf("other source: %d", c)
	}
	hs.now = hs.now.Add(time.Second) // one token back
	if c := from("192.0.2.1"); c != 200 {
		t.Fatalf("after refill: %d", c)
	}
	if c := from("192.0.2.1"); c != 429 {
		t.Fatalf("after refill, 2nd: %d", c)
	}
	if got := hs.counter(t, "rejected_total", "reason", "rate_limited"); got != 2 {
		t.Fatalf("rate_limited = %v", got)
	}
}

// A sink that never returns must not slow the handler: the queue fills, further hints are dropped,
// every delivery still gets its 200.
func TestQueueNeverBlocksHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	release := make(chan struct{})
	entered := make(chan struct{}, 100)
	sink := SinkFunc(func(ctx context.Context, h Hint) error {
		entered <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return ctx.Err()
	})
	now := time.Now()
	h, err := New(Config{Secrets: []string{"s3cret"}, QueueSize: 2, RateLimit: -1, SinkTimeout: time.Hour, Now: func() time.Time { return now }},
		sink, slog.New(slog.NewTextHandler(io.Discard, nil)), reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = h.Run(ctx); close(done) }()
	hs := &harness{h: h, reg: reg}
	send := func(i int) *httptest.ResponseRecorder {
		body := fmt.Sprintf(`{"block_number":%d,"contract_address":"0x940181a94A35A4569E4529A3CDfB74e38FD98631","log_index":0,"network":"base-sepolia","transaction_hash":"0x%064x"}`, i, i)
		return hs.do(signed("s3cret", now, "", "", body))
	}
	if w := send(0); w.Code != 200 {
		t.Fatal(w.Code)
	}
	<-entered // the worker holds hint 0 and is stuck
	for i := 1; i <= 50; i++ {
		if w := send(i); w.Code != 200 || strings.TrimSpace(w.Body.String()) != "accepted" {
			t.Fatalf("request %d: %d %q", i, w.Code, w.Body.String())
		}
	}
	if got := hs.counter(t, "dropped_total"); got != 48 {
		t.Fatalf("dropped = %v, want 48 (queue of 2 full)", got)
	}
	if got := hs.counter(t, "queue_hints"); got != 2 {
		t.Fatalf("queue = %v", got)
	}
	// Shutdown does not wait for the stuck sink beyond its context.
	cancel()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not return on cancel")
	}
	close(release)
}

func TestNewRejectsBadConfig(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sink := SinkFunc(func(context.Context, Hint) error { return nil })
	for name, c := range map[string]Config{
		"no secrets":     {},
		"negative tol":   {Secrets: []string{"s"}, Tolerance: -time.Second},
		"negative queue": {Secrets: []string{"s"}, QueueSize: -1},
	} {
		if _, err := New(c, sink, log, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := New(Config{Secrets: []string{"s"}}, nil, log, nil); err == nil {
		t.Error("nil sink accepted")
	}
	reg := prometheus.NewRegistry()
	if _, err := New(Config{Secrets: []string{"s"}}, sink, log, reg); err != nil {
		t.Fatal(err)
	}
	// A second receiver on the same registry shares its series (metrics.With), as two
	// components of one process do.
	if _, err := New(Config{Secrets: []string{"s"}}, sink, log, reg); err != nil {
		t.Errorf("second receiver on the same registry: %v", err)
	}
	if got := ParseSecrets(" a, ,b ,"); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("ParseSecrets = %q", got)
	}
}

func TestSeenSetBounded(t *testing.T) {
	s := newSeenSet(time.Minute, 10)
	now := time.Unix(0, 0)
	for i := range 100 {
		s.add(now, fmt.Sprint(i))
	}
	if n := s.len(); n > 10 {
		t.Fatalf("%d keys kept, bound 10", n)
	}
	if !s.add(now, "99") {
		t.Fatal("most recent key forgotten")
	}
	if s.add(now, "0") {
		t.Fatal("oldest key survived the bound")
	}
	s2 := newSeenSet(time.Minute, 1000)
	s2.add(now, "k")
	if !s2.add(now.Add(20*time.Second), "k") {
		t.Fatal("forgotten within TTL/2")
	}
	if s2.add(now.Add(2*time.Minute), "k") {
		t.Fatal("remembered after the TTL")
	}
}
