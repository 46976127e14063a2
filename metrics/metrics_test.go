package metrics

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/echain/echain-indexer/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Run(m)) }

func gather(t *testing.T, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

func value(mf *dto.MetricFamily) float64 {
	m := mf.GetMetric()[0]
	if m.GetCounter() != nil {
		return m.GetCounter().GetValue()
	}
	return m.GetGauge().GetValue()
}

func TestRegisterProcess(t *testing.T) {
	reg := prometheus.NewRegistry()
	start := time.Unix(1_800_000_000, 0)
	if err := RegisterProcess(reg, Build{Version: "v1.2.3", Revision: "abc"}, start); err != nil {
		t.Fatal(err)
	}
	mfs := gather(t, reg)
	info := mfs["echain_indexer_build_info"]
	if info == nil || value(info) != 1 {
		t.Fatalf("build_info: %v", info)
	}
	labels := map[string]string{}
	for _, lp := range info.GetMetric()[0].GetLabel() {
		labels[lp.GetName()] = lp.GetValue()
	}
	if labels["version"] != "v1.2.3" || labels["revision"] != "abc" || labels["goversion"] == "" {
		t.Errorf("build_info labels %v", labels)
	}
	if v := value(mfs["echain_indexer_start_time_seconds"]); v != 1_800_000_000 {
		t.Errorf("start time %v", v)
	}
	for _, n := range []string{"go_goroutines", "go_memstats_heap_inuse_bytes", "process_resident_memory_bytes"} {
		if mfs[n] == nil {
			t.Errorf("%s missing", n)
		}
	}
	// A second registration on the same registry is refused, not silently doubled.
	if err := RegisterProcess(reg, Build{}, start); err == nil {
		t.Error("registering twice succeeded")
	}
}

// TestPoolCollector reads a real pool's statistics as they change.
func TestPoolCollector(t *testing.T) {
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(storetest.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 3
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewPoolCollector(pool, "main"))

	before := gather(t, reg)
	if v := value(before["echain_indexer_db_pool_max_connections"]); v != 3 {
		t.Errorf("max connections %v, want 3", v)
	}
	c1, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	during := gather(t, reg)
	if v := value(during["echain_indexer_db_pool_acquired_connections"]); v != 2 {
		t.Errorf("acquired %v, want 2", v)
	}
	c1.Release()
	c2.Release()
	after := gather(t, reg)
	if v := value(after["echain_indexer_db_pool_acquired_connections"]); v != 0 {
		t.Errorf("acquired after release %v, want 0", v)
	}
	if v := value(after["echain_indexer_db_pool_idle_connections"]); v != 2 {
		t.Errorf("idle %v, want 2", v)
	}
	if got, was := value(after["echain_indexer_db_pool_acquires_total"]), value(before["echain_indexer_db_pool_acquires_total"]); got != was+2 {
		t.Errorf("acquires %v -> %v, want +2", was, got)
	}
	if v := value(after["echain_indexer_db_pool_new_connections_total"]); v < 2 {
		t.Errorf("new connections %v", v)
	}
	if l := after["echain_indexer_db_pool_connections"].GetMetric()[0].GetLabel(); len(l) != 1 || l[0].GetValue() != "main" {
		t.Errorf("pool label %v", l)
	}
}
