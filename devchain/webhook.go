package devchain

// The dev chain's Coinbase stand-in: it watches the chain's logs and delivers each as a CDP v2
// onchain.activity.detected webhook, signed and retried the way Coinbase's Hook0 worker does, so
// the indexer's real receiver path is exercised end to end. Delay, duplicate deliveries and
// deliveries with a bad signature are dialled in to rehearse what production throws at us.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// WebhookEventType is the CDP v2 event type the sender delivers.
const WebhookEventType = "onchain.activity.detected"

// webhookSignedHeaders is the h list Coinbase documents: lowercased, sorted.
const webhookSignedHeaders = "content-type x-event-id x-event-type"

// WebhookSenderConfig configures a WebhookSender.
type WebhookSenderConfig struct {
	URL     string // where the indexer's receiver listens, e.g. http://127.0.0.1:8000/webhooks/coinbase
	Secret  string // the subscription secret the receiver is configured with
	Network string // CDP network label; default "base-sepolia"
	// Contracts selects the logs to deliver, like a subscription's contract_address filter. It is
	// asked per log, so clones created after the start are covered. Nil delivers every log.
	Contracts func(common.Address) bool
	// ABIs name the events and decode their parameters; a log no ABI knows is delivered with an
	// empty event_name and parameters.
	ABIs []abi.ABI

	Delay            time.Duration // before the first attempt of each delivery
	Jitter           time.Duration // added uniformly at random to Delay
	DuplicateRate    float64       // probability [0,1] that a delivered event is delivered once more
	BadSignatureRate float64       // probability [0,1] that an attempt carries a wrong signature
	MaxAttempts      int           // per event, retried on non-2xx with backoff; default 5
	RetryBackoff     time.Duration // first retry wait, doubling; default 50 ms
	PollInterval     time.Duration // how often Run looks for new blocks; default 25 ms
	Seed             uint64        // for the random choices and event ids; 0 = from the clock
	// FromBlock, when set, is the first block delivered (at most 128 blocks behind the head are
	// caught up); 0 starts after the head at Run, as Coinbase starts from the tip.
	FromBlock   uint64
	Concurrency int          // deliveries in flight; default 64
	Client      *http.Client // default: a client with Hook0's 15 s timeout
}

// WebhookChain is what the sender reads from the node; go-ethereum's ethclient (and the simulated
// backend's client) satisfy it.
type WebhookChain interface {
	HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error)
	HeaderByHash(ctx context.Context, hash common.Hash) (*types.Header, error)
	FilterLogs(ctx context.Context, q ethereum.FilterQuery) ([]types.Log, error)
	TransactionByHash(ctx context.Context, hash common.Hash) (*types.Transaction, bool, error)
}

// WebhookStats counts what a sender did, for tests and the demo's summary.
type WebhookStats struct {
	Events       int // distinct events (logs) delivered or attempted
	Attempts     int // HTTP requests made
	Duplicates   int // extra deliveries of an already delivered event
	BadSignature int // attempts sent with a wrong signature on purpose
	Delivered    int // events that got a 2xx
	Failed       int // events given up after MaxAttempts
}

// WebhookSender delivers signed webhooks for a chain's logs.
type WebhookSender struct {
	cfg WebhookSenderConfig
	log *slog.Logger
	sem chan struct{}
	wg  sync.WaitGroup

	mu    sync.Mutex
	rng   *rand.Rand
	stats WebhookStats
}

// NewWebhookSender checks the configuration.
func NewWebhookSender(cfg WebhookSenderConfig, log *slog.Logger) (*WebhookSender, error) {
	if cfg.URL == "" {
		return nil, errors.New("webhook sender: no URL")
	}
	if cfg.Secret == "" {
		return nil, errors.New("webhook sender: no secret")
	}
	if log == nil {
		return nil, errors.New("webhook sender: nil logger")
	}
	for name, r := range map[string]float64{"duplicate rate": cfg.DuplicateRate, "bad signature rate": cfg.BadSignatureRate} {
		if r < 0 || r > 1 {
			return nil, fmt.Errorf("webhook sender: %s %v outside [0,1]", name, r)
		}
	}
	if cfg.Delay < 0 || cfg.Jitter < 0 || cfg.RetryBackoff < 0 || cfg.PollInterval < 0 {
		return nil, errors.New("webhook sender: negative duration")
	}
	if cfg.Network == "" {
		cfg.Network = "base-sepolia"
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.RetryBackoff == 0 {
		cfg.RetryBackoff = 50 * time.Millisecond
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 25 * time.Millisecond
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 64
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 15 * time.Second}
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	return &WebhookSender{
		cfg: cfg,
		log: log,
		sem: make(chan struct{}, cfg.Concurrency),
		rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}, nil
}

// Stats returns a snapshot of the counters.
func (s *WebhookSender) Stats() WebhookStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Run watches the chain from its current head on (Coinbase fires from the tip: nothing older is
// delivered) and delivers every new block's matching logs, including blocks of a new branch after
// a reorg. It returns when ctx ends, after the deliveries in flight have stopped.
func (s *WebhookSender) Run(ctx context.Context, chain WebhookChain) error {
	defer s.wg.Wait()
	var start *big.Int // nil: the head
	if s.cfg.FromBlock > 0 {
		start = new(big.Int).SetUint64(s.cfg.FromBlock - 1)
	}
	head, err := chain.HeaderByNumber(ctx, start)
	if err != nil {
		return fmt.Errorf("webhook sender: start block: %w", err)
	}
	seen := newWebhookHashRing(512)
	seen.add(head.Hash())
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := s.poll(ctx, chain, seen); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.log.Warn("webhook sender: poll", "err", err)
		}
	}
}

// poll walks back from the head to the first block already handled and delivers the logs of the
// blocks in between, oldest first.
func (s *WebhookSender) poll(ctx context.Context, chain WebhookChain, seen *webhookHashRing) error {
	h, err := chain.HeaderByNumber(ctx, nil)
	if err != nil {
		return fmt.Errorf("head: %w", err)
	}
	var fresh []*types.Header
	for h != nil && !seen.has(h.Hash()) && len(fresh) < 128 {
		fresh = append(fresh, h)
		if h.Number.Sign() == 0 {
			break
		}
		if h, err = chain.HeaderByHash(ctx, h.ParentHash); err != nil {
			return fmt.Errorf("parent of block %d: %w", fresh[len(fresh)-1].Number, err)
		}
	}
	for i := len(fresh) - 1; i >= 0; i-- {
		if err := s.deliverBlock(ctx, chain, fresh[i]); err != nil {
			return err
		}
		seen.add(fresh[i].Hash())
	}
	return nil
}

func (s *WebhookSender) deliverBlock(ctx context.Context, chain WebhookChain, h *types.Header) error {
	bh := h.Hash()
	logs, err := chain.FilterLogs(ctx, ethereum.FilterQuery{BlockHash: &bh})
	if err != nil {
		return fmt.Errorf("logs of block %d: %w", h.Number, err)
	}
	// CDP numbers a log within its transaction; the node numbers it within the block.
	firstInTx := map[common.Hash]uint{}
	txs := map[common.Hash]*types.Transaction{}
	for _, l := range logs {
		if f, ok := firstInTx[l.TxHash]; !ok || l.Index < f {
			firstInTx[l.TxHash] = l.Index
		}
	}
	for _, l := range logs {
		if l.Removed || (s.cfg.Contracts != nil && !s.cfg.Contracts(l.Address)) {
			continue
		}
		tx, ok := txs[l.TxHash]
		if !ok {
			if tx, _, err = chain.TransactionByHash(ctx, l.TxHash); err != nil {
				return fmt.Errorf("transaction %s: %w", l.TxHash, err)
			}
			txs[l.TxHash] = tx
		}
		body, err := s.payload(&l, l.Index-firstInTx[l.TxHash], h, tx)
		if err != nil {
			return err
		}
		s.Deliver(ctx, body)
	}
	return nil
}

// WebhookActivity is the CDP v2 onchain.activity.detected body.
type WebhookActivity struct {
	BlockNumber     uint64            `json:"block_number"`
	ContractAddress string            `json:"contract_address"`
	EventName       string            `json:"event_name"`
	EventSignature  string            `json:"event_signature"`
	LogIndex        uint              `json:"log_index"`
	Network         string            `json:"network"`
	Parameters      map[string]string `json:"parameters"`
	Timestamp       string            `json:"timestamp"`
	TransactionFrom string            `json:"transaction_from"`
	TransactionHash string            `json:"transaction_hash"`
	TransactionTo   string            `json:"transaction_to"`
}

func (s *WebhookSender) payload(l *types.Log, indexInTx uint, h *types.Header, tx *types.Transaction) ([]byte, error) {
	a := WebhookActivity{
		BlockNumber:     l.BlockNumber,
		ContractAddress: l.Address.Hex(),
		LogIndex:        indexInTx,
		Network:         s.cfg.Network,
		Parameters:      map[string]string{},
		Timestamp:       time.Unix(int64(h.Time), 0).UTC().Format(time.RFC3339),
		TransactionHash: l.TxHash.Hex(),
	}
	if tx != nil {
		if from, err := types.Sender(types.LatestSignerForChainID(tx.ChainId()), tx); err == nil {
			a.TransactionFrom = from.Hex()
		}
		if tx.To() != nil {
			a.TransactionTo = tx.To().Hex()
		}
	}
	a.EventName, a.EventSignature = decodeWebhookLog(s.cfg.ABIs, l, a.Parameters)
	body, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("webhook payload: %w", err)
	}
	return body, nil
}

// decodeWebhookLog fills params from the first ABI event that decodes the log.
func decodeWebhookLog(abis []abi.ABI, l *types.Log, params map[string]string) (name, sig string) {
	if len(l.Topics) == 0 {
		return "", ""
	}
	for i := range abis {
		ev, err := abis[i].EventByID(l.Topics[0])
		if err != nil {
			continue
		}
		vals := map[string]any{}
		var indexed abi.Arguments
		for _, in := range ev.Inputs {
			if in.Indexed {
				indexed = append(indexed, in)
			}
		}
		if len(indexed) != len(l.Topics)-1 {
			continue // same signature, other indexing (ERC-20 vs ERC-721 Transfer)
		}
		if err := abi.ParseTopicsIntoMap(vals, indexed, l.Topics[1:]); err != nil {
			continue
		}
		if err := ev.Inputs.UnpackIntoMap(vals, l.Data); err != nil {
			continue
		}
		for k, v := range vals {
			params[k] = webhookParam(v)
		}
		return ev.RawName, ev.Sig
	}
	return "", ""
}

func webhookParam(v any) string {
	switch x := v.(type) {
	case common.Address:
		return x.Hex()
	case *big.Int:
		return x.String()
	case []byte:
		return "0x" + hex.EncodeToString(x)
	case [32]byte:
		return "0x" + hex.EncodeToString(x[:])
	case common.Hash:
		return x.Hex()
	case string:
		return x
	default:
		return fmt.Sprint(x)
	}
}

// Deliver sends one event body in the background, with the configured delay, retries, duplicates
// and bad signatures. It blocks only while Concurrency deliveries are already in flight.
func (s *WebhookSender) Deliver(ctx context.Context, body []byte) {
	s.mu.Lock()
	id := s.uuid()
	delay := s.cfg.Delay
	if s.cfg.Jitter > 0 {
		delay += time.Duration(s.rng.Int64N(int64(s.cfg.Jitter)))
	}
	dup := s.rng.Float64() < s.cfg.DuplicateRate
	s.stats.Events++
	s.mu.Unlock()
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() { <-s.sem }()
		if !webhookSleep(ctx, delay) {
			return
		}
		ok := s.attempts(ctx, id, body)
		s.mu.Lock()
		if ok {
			s.stats.Delivered++
		} else if ctx.Err() == nil {
			s.stats.Failed++
		}
		s.mu.Unlock()
		if ok && dup {
			// Hook0 redelivers with the same event id, signed anew.
			s.mu.Lock()
			s.stats.Duplicates++
			s.mu.Unlock()
			s.attempts(ctx, id, body)
		}
	}()
}

// attempts posts until a 2xx or MaxAttempts, doubling the wait between attempts.
func (s *WebhookSender) attempts(ctx context.Context, id string, body []byte) bool {
	wait := s.cfg.RetryBackoff
	for n := 0; n < s.cfg.MaxAttempts; n++ {
		if n > 0 {
			if !webhookSleep(ctx, wait) {
				return false
			}
			wait *= 2
		}
		s.mu.Lock()
		bad := s.rng.Float64() < s.cfg.BadSignatureRate
		s.stats.Attempts++
		if bad {
			s.stats.BadSignature++
		}
		s.mu.Unlock()
		status, err := s.post(ctx, id, body, bad)
		if err == nil && status >= 200 && status < 300 {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		s.log.Debug("webhook sender: attempt failed", "event", id, "status", status, "bad_signature", bad, "err", err)
	}
	return false
}

func (s *WebhookSender) post(ctx context.Context, id string, body []byte, badSig bool) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Event-Id", id)
	req.Header.Set("X-Event-Type", WebhookEventType)
	req.Header.Set("User-Agent", "hook0-output-worker/devchain")
	secret := []byte(s.cfg.Secret)
	if badSig {
		secret = append([]byte("not-"), secret...)
	}
	req.Header.Set("X-Hook0-Signature", WebhookSignature(secret, time.Now().Unix(), body,
		[]string{"application/json", id, WebhookEventType}))
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("webhook post: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// WebhookSignature builds an X-Hook0-Signature value with v0 and v1 over content-type, x-event-id
// and x-event-type (values in that order), as Coinbase sends it.
func WebhookSignature(secret []byte, unix int64, body []byte, headerValues []string) string {
	t := strconv.FormatInt(unix, 10)
	v0 := hmac.New(sha256.New, secret)
	fmt.Fprintf(v0, "%s.", t)
	v0.Write(body)
	v1 := hmac.New(sha256.New, secret)
	fmt.Fprintf(v1, "%s.%s.", t, webhookSignedHeaders)
	for _, v := range headerValues {
		fmt.Fprintf(v1, "%s.", v)
	}
	v1.Write(body)
	return fmt.Sprintf("t=%s,v0=%x,h=%s,v1=%x", t, v0.Sum(nil), webhookSignedHeaders, v1.Sum(nil))
}

// uuid returns a version-4 UUID from the seeded generator (reproducible runs); s.mu is held.
func (s *WebhookSender) uuid() string {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		v := s.rng.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func webhookSleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// webhookHashRing remembers the last n block hashes handled.
type webhookHashRing struct {
	set  map[common.Hash]struct{}
	ring []common.Hash
	next int
}

func newWebhookHashRing(n int) *webhookHashRing {
	return &webhookHashRing{set: make(map[common.Hash]struct{}, n), ring: make([]common.Hash, n)}
}

func (r *webhookHashRing) has(h common.Hash) bool { _, ok := r.set[h]; return ok }

func (r *webhookHashRing) add(h common.Hash) {
	if r.has(h) {
		return
	}
	delete(r.set, r.ring[r.next])
	r.ring[r.next] = h
	r.set[h] = struct{}{}
	r.next = (r.next + 1) % len(r.ring)
}
