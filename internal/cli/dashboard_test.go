package cli

import (
	"context"
	"log/slog"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/echain/echain-indexer/config"
	"github.com/echain/echain-indexer/devchain"
	"github.com/echain/echain-indexer/store/storetest"
)

// registeredMetrics builds a complete indexing process (without serving) and lists the metric
// names its packages register, whether or not a series has been observed yet.
func registeredMetrics(t *testing.T) map[string]bool {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	chain, err := devchain.Start(ctx, devchain.Config{}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer chain.Close()
	t.Chdir(t.TempDir())
	cfg, _, err := config.Load(config.Options{Set: map[string]string{
		"rpc.http_url": chain.HTTPURL, "rpc.ws_url": chain.WSURL, "metrics.listen": "", "api.listen": "127.0.0.1:0",
	}})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Database.URL = storetest.NewDB(t)
	cfg.Webhook.Secrets = []string{"0123456789abcdef0123456789abcdef"}
	a, err := build(ctx, &env{cfg: cfg, log: log}, cfg, parts{follower: true, api: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	ch := make(chan *prometheus.Desc, 1024)
	go func() { a.reg.Describe(ch); close(ch) }()
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	names := map[string]bool{}
	for d := range ch {
		if m := fq.FindStringSubmatch(d.String()); m != nil {
			names[m[1]] = true
		}
	}
	return names
}

// TestDashboardAndREADMEMetricsExist: every series the Grafana dashboard plots and the README
// lists is registered by some package, so neither rots when a metric is renamed.
func TestDashboardAndREADMEMetricsExist(t *testing.T) {
	dash, err := os.ReadFile("../../deploy/grafana/echain-indexer.json")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	names := registeredMetrics(t)
	base := func(n string) string {
		for _, s := range []string{"_bucket", "_sum", "_count"} {
			if strings.HasSuffix(n, s) && !names[n] {
				return strings.TrimSuffix(n, s)
			}
		}
		return n
	}
	seen := map[string]bool{}
	for _, n := range regexp.MustCompile(`\b(?:echain_indexer|go|process)_[a-z_]+`).FindAllString(string(dash), -1) {
		if n = base(n); !seen[n] {
			seen[n] = true
			if !names[n] {
				t.Errorf("deploy/grafana/echain-indexer.json plots %s, which nothing registers", n)
			}
		}
	}
	if len(seen) < 40 {
		t.Errorf("the dashboard plots only %d series", len(seen))
	}

	sec := string(readme)
	sec = sec[strings.Index(sec, "**Metrics**"):]
	sec = sec[:strings.Index(sec, "**Status.**")]
	for _, m := range regexp.MustCompile("`([a-z_]+)(?:\\{[a-z_,]*\\})?`").FindAllStringSubmatch(sec, -1) {
		n := m[1]
		if n == "echain_indexer_" || strings.HasPrefix(n, "go_") || strings.HasPrefix(n, "process_") || strings.HasSuffix(n, "_") {
			continue
		}
		if !names["echain_indexer_"+n] {
			t.Errorf("README.md lists %s, which nothing registers", n)
		}
	}

	var unplotted []string
	for n := range names {
		if strings.HasPrefix(n, "echain_indexer_") && !seen[n] {
			unplotted = append(unplotted, n)
		}
	}
	sort.Strings(unplotted)
	t.Logf("%d registered echain_indexer_* series, %d not on the dashboard: %s", len(names), len(unplotted), strings.Join(unplotted, " "))
}
