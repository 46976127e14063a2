package source

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/echain/echain-indexer/devchain"
)

// Two endpoints of the same chain id but different genesis blocks (two dev chains of different
// seeds): the second one checked is refused, answers nothing, and is reported out of service;
// with only it left a call fails with ErrWrongChain rather than returning its data.
func TestIdentityGenesisMismatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a := startChain(t)
	b, err := devchain.Start(ctx, devchain.Config{Seed: 2, MetadataAddr: "off"}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	reg := prometheus.NewRegistry()
	s := newSource(t, Config{ChainID: devchain.ChainID, Endpoints: []Endpoint{
		{Name: "a", HTTPURL: a.HTTPURL}, {Name: "b", HTTPURL: b.HTTPURL},
	}}, reg)
	if _, err := s.BlockNumber(ctx); err != nil { // checks a: its genesis becomes the reference
		t.Fatal(err)
	}
	err = s.ensureIdentity(ctx, s.eps[1])
	var mm *ChainMismatchError
	if !errors.As(err, &mm) || !errors.Is(err, ErrWrongChain) || mm.GotGenesis == mm.WantGenesis {
		t.Fatalf("second genesis: %v, want a genesis mismatch", err)
	}
	if st := s.Endpoints()[1]; st.WrongChain == "" {
		t.Fatalf("endpoint b not reported out of service: %+v", st)
	}
	if v := metricSum(t, reg, "echain_indexer_rpc_endpoint_wrong_chain", map[string]string{"endpoint": "b"}); v != 1 {
		t.Fatalf("rpc_endpoint_wrong_chain{b} %v", v)
	}

	// Only b: nothing it says is returned.
	only := newSource(t, Config{ChainID: devchain.ChainID, Endpoints: []Endpoint{{Name: "b", HTTPURL: b.HTTPURL}}}, prometheus.NewRegistry())
	only.genesis = s.genesis
	if n, err := only.BlockNumber(ctx); !errors.Is(err, ErrWrongChain) {
		t.Fatalf("BlockNumber from another chain's only endpoint: %d, %v; want ErrWrongChain", n, err)
	}
	if _, err := only.BlockNumber(ctx); !errors.Is(err, ErrWrongChain) { // out of service: not asked again
		t.Fatalf("second call: %v", err)
	}
}
