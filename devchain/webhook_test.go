package devchain

import (
	"context"
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/params"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/echain/echain-indexer/abis"
	"github.com/echain/echain-indexer/api/webhook"
	"github.com/echain/echain-indexer/internal/testwait"
)

// webhookTestEmitter is init code for a contract whose every call emits the ERC-721
// Transfer(address(0), msg.sender, block.number) log, the first log of a ticket purchase.
func webhookTestEmitter() []byte {
	topic := crypto.Keccak256([]byte("Transfer(address,address,uint256)"))
	runtime := append([]byte{0x43, 0x33, 0x60, 0x00, 0x7f}, topic...) // NUMBER CALLER PUSH1 0 PUSH32 topic
	runtime = append(runtime, 0x60, 0x00, 0x60, 0x00, 0xa4, 0x00)     // PUSH1 0 PUSH1 0 LOG4 STOP
	n := byte(len(runtime))
	init := []byte{0x60, n, 0x60, 0x0c, 0x60, 0x00, 0x39, 0x60, n, 0x60, 0x00, 0xf3} // CODECOPY; RETURN
	return append(init, runtime...)
}

type webhookSimChain struct {
	t       *testing.T
	backend *simulated.Backend
	client  simulated.Client
	key     *ecdsa.PrivateKey
	from    common.Address
	nonce   uint64
}

func newWebhookSimChain(t *testing.T) *webhookSimChain {
	t.Helper()
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	from := crypto.PubkeyToAddress(key.PublicKey)
	b := simulated.NewBackend(types.GenesisAlloc{from: {Balance: new(big.Int).Mul(big.NewInt(1000), big.NewInt(params.Ether))}})
	t.Cleanup(func() { _ = b.Close() })
	return &webhookSimChain{t: t, backend: b, client: b.Client(), key: key, from: from}
}

// send signs and submits a transaction (to nil = create) and mines it.
func (c *webhookSimChain) send(to *common.Address, data []byte) *types.Receipt {
	c.t.Helper()
	ctx := context.Background()
	chainID, err := c.client.ChainID(ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	tx := types.NewTx(&types.DynamicFeeTx{ChainID: chainID, Nonce: c.nonce, GasTipCap: big.NewInt(params.GWei), GasFeeCap: big.NewInt(10 * params.GWei), Gas: 200000, To: to, Data: data})
	signed, err := types.SignTx(tx, types.LatestSignerForChainID(chainID), c.key)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.client.SendTransaction(ctx, signed); err != nil {
		c.t.Fatal(err)
	}
	c.nonce++
	c.backend.Commit()
	var r *types.Receipt
	// The node indexes transactions in the background just after a block.
	testwait.For(c.t, "the receipt of a sealed transaction", func() (bool, string) {
		r, err = c.client.TransactionReceipt(ctx, signed.Hash())
		return err == nil, fmt.Sprint(err)
	})
	if r.Status != types.ReceiptStatusSuccessful {
		c.t.Fatalf("receipt %+v", r)
	}
	return r
}

func webhookTicketABI(t *testing.T) abi.ABI {
	t.Helper()
	a, err := abis.Echain(abis.EventTicket)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

type webhookReceiver struct {
	srv   *httptest.Server
	reg   *prometheus.Registry
	hints chan webhook.Hint
	mu    sync.Mutex
	raw   [][]byte // verified bodies, as delivered
}

func newWebhookReceiver(t *testing.T, secret string, contract func(common.Address) bool) *webhookReceiver {
	t.Helper()
	rc := &webhookReceiver{reg: prometheus.NewRegistry(), hints: make(chan webhook.Hint, 100)}
	h, err := webhook.New(webhook.Config{Secrets: []string{secret}, Networks: []string{"base-sepolia"}, Indexed: contract, RateLimit: -1},
		webhook.SinkFunc(func(ctx context.Context, h webhook.Hint) error { rc.hints <- h; return nil }),
		slog.New(slog.NewTextHandler(io.Discard, nil)), rc.reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = h.Run(ctx); close(done) }()
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code == 200 {
			rc.mu.Lock()
			rc.raw = append(rc.raw, body)
			rc.mu.Unlock()
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(func() { rc.srv.Close(); cancel(); <-done })
	return rc
}

func (rc *webhookReceiver) counter(t *testing.T, name, reason string) float64 {
	t.Helper()
	mfs, err := rc.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "echain_indexer_webhook_"+name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if reason != "" && (len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() != reason) {
				continue
			}
			total += m.GetCounter().GetValue()
		}
	}
	return total
}

func startWebhookSender(t *testing.T, cfg WebhookSenderConfig, chain WebhookChain) *WebhookSender {
	t.Helper()
	head, err := chain.HeaderByNumber(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.FromBlock = head.Number.Uint64() + 1
	s, err := NewWebhookSender(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, chain) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sender: %v", err)
		}
	})
	return s
}

func TestWebhookSenderEndToEnd(t *testing.T) {
	chain := newWebhookSimChain(t)
	emitter := chain.send(nil, webhookTestEmitter()).ContractAddress
	other := chain.send(nil, webhookTestEmitter()).ContractAddress
	rc := newWebhookReceiver(t, "dev-secret", func(a common.Address) bool { return a == emitter })
	s := startWebhookSender(t, WebhookSenderConfig{URL: rc.srv.URL, Secret: "dev-secret", ABIs: []abi.ABI{webhookTicketABI(t)}, Seed: 7}, chain.client)

	buy := chain.send(&emitter, nil)
	chain.send(&other, nil) // delivered by the sender, ignored by the webhookReceiver (contract not indexed)
	var h webhook.Hint
	select {
	case h = <-rc.hints:
	case <-testwait.After(t):
		t.Fatal("no hint")
	}
	want := webhook.Hint{Network: "base-sepolia", Block: buy.BlockNumber.Uint64(), TxHash: buy.TxHash, LogIndex: 0, Contract: emitter, ReceivedAt: h.ReceivedAt}
	if h != want {
		t.Fatalf("hint %+v\nwant %+v", h, want)
	}
	testwait.Until(t, "the other contract's log delivered and ignored", func() bool { return rc.counter(t, "ignored_total", "contract") >= 1 })
	if rc.counter(t, "ignored_total", "contract") != 1 {
		t.Fatal("the other contract's log was not delivered and ignored")
	}
	// The body is the CDP shape, decoded with the ticket ABI.
	var a WebhookActivity
	testwait.Until(t, "the purchase's webhook body", func() bool {
		rc.mu.Lock()
		for _, raw := range rc.raw {
			var x WebhookActivity
			if err := json.Unmarshal(raw, &x); err != nil {
				t.Fatal(err)
			}
			if x.TransactionHash == buy.TxHash.Hex() {
				a = x
			}
		}
		rc.mu.Unlock()
		return a.TransactionHash != ""
	})
	if a.EventName != "Transfer" || a.EventSignature != "Transfer(address,address,uint256)" ||
		a.Parameters["from"] != (common.Address{}).Hex() || a.Parameters["to"] != chain.from.Hex() ||
		a.Parameters["tokenId"] != buy.BlockNumber.String() || a.TransactionFrom != chain.from.Hex() ||
		a.TransactionTo != emitter.Hex() || a.ContractAddress != emitter.Hex() || a.Timestamp == "" {
		t.Fatalf("payload %+v", a)
	}
	testwait.Until(t, "both events delivered", func() bool { return s.Stats().Delivered >= 2 })
	if st := s.Stats(); st.Events != 2 || st.Delivered != 2 || st.Attempts != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// Duplicates and bad signatures go through the webhookReceiver's real checks; every event still arrives
// once, as with Coinbase's retries.
func TestWebhookSenderFaults(t *testing.T) {
	chain := newWebhookSimChain(t)
	emitter := chain.send(nil, webhookTestEmitter()).ContractAddress
	rc := newWebhookReceiver(t, "dev-secret", nil)
	s := startWebhookSender(t, WebhookSenderConfig{URL: rc.srv.URL, Secret: "dev-secret", DuplicateRate: 1, BadSignatureRate: 0.4,
		MaxAttempts: 30, RetryBackoff: time.Millisecond, Delay: 20 * time.Millisecond, Seed: 42}, chain.client)
	const n = 10
	txs := map[common.Hash]bool{}
	for range n {
		txs[chain.send(&emitter, nil).TxHash] = true
	}
	for range n {
		select {
		case h := <-rc.hints:
			if !txs[h.TxHash] {
				t.Fatalf("hint for unknown tx %s", h.TxHash)
			}
			delete(txs, h.TxHash)
		case <-testwait.After(t):
			t.Fatalf("%d hints missing; sender %+v", len(txs), s.Stats())
		}
	}
	testwait.Until(t, fmt.Sprintf("%d duplicates refused", n), func() bool { return rc.counter(t, "duplicates_total", "") >= n })
	select {
	case h := <-rc.hints:
		t.Fatalf("duplicate reached the sink: %+v", h)
	case <-time.After(50 * time.Millisecond):
	}
	st := s.Stats()
	if rc.counter(t, "duplicates_total", "") != n || st.Duplicates != n {
		t.Fatalf("duplicates: webhookReceiver %v, sender %+v", rc.counter(t, "duplicates_total", ""), st)
	}
	if st.BadSignature == 0 || rc.counter(t, "rejected_total", "bad_signature") != float64(st.BadSignature) {
		t.Fatalf("bad signatures: webhookReceiver %v, sender %+v", rc.counter(t, "rejected_total", "bad_signature"), st)
	}
}

func TestWebhookSignatureMatchesHook0(t *testing.T) {
	// The webhookReceiver's published vector, rebuilt by the sender's own code.
	got := WebhookSignature([]byte("a-subscription-secret"), 1800000000, []byte(`{"event":"user.created"}`), []string{"application/json", "e", "t"})
	if !strings.HasPrefix(got, "t=1800000000,v0=d17d66b66fca89390c5b967c45e8928fc732db07a0aabe8167b1e98213081ffe,h=content-type x-event-id x-event-type,v1=") {
		t.Fatalf("signature %s", got)
	}
	v1 := got[strings.LastIndex(got, "v1=")+3:]
	want := webhook.SignV1([]byte("a-subscription-secret"), "1800000000", "content-type x-event-id x-event-type", []string{"application/json", "e", "t"}, []byte(`{"event":"user.created"}`))
	if v1 != hex.EncodeToString(want) {
		t.Fatalf("v1 %s, want %x", v1, want)
	}
}

func TestNewWebhookSenderRejectsBadConfig(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for name, c := range map[string]WebhookSenderConfig{
		"no url":    {Secret: "s"},
		"no secret": {URL: "http://x"},
		"dup rate":  {URL: "http://x", Secret: "s", DuplicateRate: 1.5},
		"bad rate":  {URL: "http://x", Secret: "s", BadSignatureRate: -0.1},
		"delay":     {URL: "http://x", Secret: "s", Delay: -time.Second},
	} {
		if _, err := NewWebhookSender(c, log); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// A ticket purchase on the dev chain arrives at the real receiver as one hint per log, with the
// CDP payload decoded by the real Echain ABI; the clone joins the delivered set after it exists.
func TestWebhookSenderOnDevchain(t *testing.T) {
	ctx := context.Background()
	c, err := Start(ctx, Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var mu sync.Mutex
	watched := map[common.Address]bool{c.Addresses.EventFactory: true}
	isWatched := func(a common.Address) bool { mu.Lock(); defer mu.Unlock(); return watched[a] }
	var echainABIs []abi.ABI
	for _, n := range []string{abis.EventFactory, abis.EventTicket} {
		a, err := abis.Echain(n)
		if err != nil {
			t.Fatal(err)
		}
		echainABIs = append(echainABIs, a)
	}
	rc := newWebhookReceiver(t, "dev-secret", isWatched)
	startWebhookSender(t, WebhookSenderConfig{URL: rc.srv.URL, Secret: "dev-secret", Contracts: isWatched, ABIs: echainABIs, Seed: 3}, c.Client())

	org := c.User(0)
	h1, err := c.VerifyOrganizer(ctx, org)
	if err != nil {
		t.Fatal(err)
	}
	h2, err := c.CreateEvent(ctx, org, EventParams{Name: "Gig", MetadataURI: MetadataURI(1, 0), TicketPrice: big.NewInt(1e15), MaxTickets: 10, StartTime: 2e9, EndTime: 2e9 + 3600})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := c.Mine(ctx, h1, h2)
	if err != nil {
		t.Fatal(err)
	}
	created, err := c.CreatedEvent(rs[1])
	if err != nil {
		t.Fatal(err)
	}
	// OrganizerVerified and EventCreated from the factory.
	for range 2 {
		select {
		case h := <-rc.hints:
			if h.Contract != c.Addresses.EventFactory || h.Block != rs[0].BlockNumber.Uint64() {
				t.Fatalf("factory hint %+v", h)
			}
		case <-testwait.After(t):
			t.Fatal("no factory hint")
		}
	}
	mu.Lock()
	watched[created.TicketContract] = true
	mu.Unlock()
	h3, err := c.BuyTickets(ctx, c.User(1), created.TicketContract, 2)
	if err != nil {
		t.Fatal(err)
	}
	rs, err = c.Mine(ctx, h3)
	if err != nil {
		t.Fatal(err)
	}
	buy := rs[0]
	seen := map[uint64]bool{}
	for range len(buy.Logs) {
		select {
		case h := <-rc.hints:
			if h.Contract != created.TicketContract || h.TxHash != buy.TxHash || h.Block != buy.BlockNumber.Uint64() || seen[h.LogIndex] {
				t.Fatalf("purchase hint %+v", h)
			}
			seen[h.LogIndex] = true
		case <-testwait.After(t):
			t.Fatalf("purchase hints: got %d of %d", len(seen), len(buy.Logs))
		}
	}
	// The wrapper records a body once the handler answered, which may be after the hint.
	names := map[string]int{}
	testwait.Until(t, "four purchase event bodies", func() bool {
		names = rc.eventNames(t, buy.TxHash, c.User(1).Address)
		return names["Transfer"]+names["TicketMinted"] >= 4
	})
	if names["Transfer"] != 2 || names["TicketMinted"] != 2 {
		t.Fatalf("purchase events delivered: %v", names)
	}
}

func (rc *webhookReceiver) eventNames(t *testing.T, tx common.Hash, buyer common.Address) map[string]int {
	t.Helper()
	names := map[string]int{}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, raw := range rc.raw {
		var a WebhookActivity
		if err := json.Unmarshal(raw, &a); err != nil {
			t.Fatal(err)
		}
		if a.TransactionHash == tx.Hex() {
			names[a.EventName]++
			if a.EventName == "TicketMinted" && a.Parameters["to"] != buyer.Hex() {
				t.Errorf("TicketMinted parameters %v", a.Parameters)
			}
		}
	}
	return names
}
