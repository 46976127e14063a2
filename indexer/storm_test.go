package indexer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/echain/echain-indexer/api"
	"github.com/echain/echain-indexer/api/graphql"
	"github.com/echain/echain-indexer/devchain"
	"github.com/echain/echain-indexer/indexer/source"
	"github.com/echain/echain-indexer/indexer/source/rpcproxy"
	"github.com/echain/echain-indexer/internal/testwait"
	"github.com/echain/echain-indexer/schema"
	"github.com/echain/echain-indexer/store/storetest"
)

// TestStormKeepsAPIUp follows the head through a provider that, for a stretch, answers every
// request 429 with Retry-After while the WebSocket is cut and refused. Throughout, the API over
// the same store keeps answering: GraphQL queries get 200 with data and /healthz says ok. After
// the storm no block is lost or doubled and the store equals a from-scratch index.
func TestStormKeepsAPIUp(t *testing.T) {
	c := startChain(t, devchain.Config{})
	tr := devchain.NewTraffic(c, devchain.TrafficConfig{TxsPerBlock: 5}, quietLog())
	steps(t, tr, 40)
	proxy, tcp := httpProxy(t, c), wsProxy(t, c)
	proxy.SetProvider(rpcproxy.Provider{Latency: 20 * time.Millisecond, Jitter: 10 * time.Millisecond, Seed: 7})

	s := chainSetup(c, storetest.NewDB(t))
	s.Endpoints = []source.Endpoint{{Name: "provider", HTTPURL: proxy.URL(), WSURL: "ws://" + tcp.Addr()}}
	s.Source.HeadTimeout = time.Second
	s.Source.ReconnectMax = 500 * time.Millisecond
	s.Config.FinalityDepth = 8
	in := startIndexer(t, s)
	waitSynced(t, in, c)
	base := serveAPI(t, in)

	// The API is asked all along, from before the storm to after it.
	var (
		mu       sync.Mutex
		answered int64
		failures []string
		lastSeen int64
	)
	pollCtx, stopPoll := context.WithCancel(context.Background())
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for pollCtx.Err() == nil {
			n, err := askAPI(pollCtx, base)
			mu.Lock()
			switch {
			case pollCtx.Err() != nil:
			case err != nil:
				failures = append(failures, err.Error())
			default:
				answered++
				lastSeen = max(lastSeen, n)
			}
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	}()
	answers := func() int64 {
		mu.Lock()
		defer mu.Unlock()
		return answered
	}
	testwait.Until(t, "the API to answer", func() bool { return answers() >= 5 })

	// The storm: every HTTP request refused with 429, the WebSocket cut and refused; the chain
	// keeps sealing blocks. It lasts until the follower has met it many times and the API has
	// been asked many times during it.
	before := in.fl.Status().Indexed.Number
	var refused atomic.Int64
	removeStorm := proxy.Add(rpcproxy.Rule{Status: http.StatusTooManyRequests, RetryAfter: "1",
		When: func(rpcproxy.Call) bool { refused.Add(1); return true }})
	tcp.Refuse(time.Hour)
	tcp.CutAll()
	stormAnswers := answers()
	testwait.For(t, "the storm to be met", func() (bool, string) {
		steps(t, tr, 1)
		if err, done := in.runErr(); done {
			t.Fatalf("indexer stopped: %v", err)
		}
		n := refused.Load()
		return n >= 10 && answers()-stormAnswers >= 40, fmt.Sprintf("%d requests refused, %d API answers", n, answers()-stormAnswers)
	})
	if got := in.fl.Status().Indexed.Number; got > before+1 {
		t.Logf("indexed %d → %d during the storm (some requests passed before the rule)", before, got)
	}
	removeStorm()
	tcp.Refuse(0)
	steps(t, tr, 5)
	waitSynced(t, in, c)
	testwait.Until(t, "the API to show the head", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return lastSeen == c.Head().Number.Int64()
	})
	stopPoll()
	<-polled

	mu.Lock()
	t.Logf("API answered %d times (%d during the storm); provider refused %d calls; websocket connections %d",
		answered, answered-stormAnswers, refused.Load(), tcp.Accepted())
	if len(failures) > 0 {
		t.Errorf("the API failed %d times, first: %s", len(failures), failures[0])
	}
	mu.Unlock()
	want := float64(c.Head().Number.Int64() - in.fl.StartBlock() + 1)
	testwait.Until(t, "the blocks counter to catch up", func() bool {
		return counter(t, in.reg, "echain_indexer_blocks_indexed_total", nil) >= want
	})
	if blocks := counter(t, in.reg, "echain_indexer_blocks_indexed_total", nil); blocks != want {
		t.Errorf("committed %v blocks, want %v: a block was missed or doubled", blocks, want)
	}
	in.stop()
	compareStores(t, scratchIndex(t, c), s.DB)
}

// serveAPI serves GraphQL and /healthz over the indexer's store, as the binary does.
func serveAPI(t *testing.T, in *instance) string {
	t.Helper()
	sch, err := schema.Load()
	if err != nil {
		t.Fatal(err)
	}
	log := testLogger(t)
	gql, err := graphql.NewHandler(in.st.Pool(), sch, graphql.Options{Logger: log, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.Listen(api.Options{
		Listen: "127.0.0.1:0", GraphQL: gql, Log: log, Registerer: prometheus.NewRegistry(),
		Health: func(ctx context.Context) error { return in.st.Pool().Ping(ctx) },
		Ready:  func(context.Context) api.Readiness { return api.Readiness{Ready: true} },
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	})
	return "http://" + srv.Addr()
}

// askAPI runs one query and one health check; it returns the block the query saw, or what was
// wrong with either answer.
func askAPI(ctx context.Context, base string) (int64, error) {
	do := func(req *http.Request) (int, []byte, error) {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, body, err
	}
	q, _ := json.Marshal(map[string]string{"query": `{ _meta { block { number } } events(first: 5) { id } }`})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+api.PathGraphQL, strings.NewReader(string(q)))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	code, body, err := do(req)
	if err != nil {
		return 0, fmt.Errorf("graphql: %w", err)
	}
	var r struct {
		Data *struct {
			Meta struct {
				Block struct {
					Number int64 `json:"number"`
				} `json:"block"`
			} `json:"_meta"`
			Events []struct {
				ID string `json:"id"`
			} `json:"events"`
		} `json:"data"`
		Errors []json.RawMessage `json:"errors"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &r) != nil || r.Data == nil || len(r.Errors) > 0 || len(r.Data.Events) == 0 {
		return 0, fmt.Errorf("graphql: %d %s", code, body)
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodGet, base+api.PathHealth, nil)
	if err != nil {
		return 0, err
	}
	code, body, err = do(req)
	if err != nil {
		return 0, fmt.Errorf("healthz: %w", err)
	}
	if code != http.StatusOK || !strings.Contains(string(body), `"ok"`) {
		return 0, fmt.Errorf("healthz: %d %s", code, body)
	}
	return r.Data.Meta.Block.Number, nil
}
