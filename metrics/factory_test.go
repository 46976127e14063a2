package metrics

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestFactory(t *testing.T) {
	reg := prometheus.NewRegistry()
	f := With(reg)
	c := f.CounterVec("things_total", "Things.", "kind")
	c.WithLabelValues("a").Inc()
	f.Histogram("wait_seconds", "Waits.", []float64{1, 2}).Observe(1.5)
	// A second component on the same registry shares identical series.
	if again := With(reg).CounterVec("things_total", "Things.", "kind"); again != c {
		t.Error("an identical metric registered twice is not the first one")
	}
	if f.Err() != nil {
		t.Fatal(f.Err())
	}
	got := gather(t, reg)
	if got["echain_indexer_things_total"] == nil || got["echain_indexer_wait_seconds"] == nil {
		t.Errorf("gathered %v", got)
	}
	// The same name with other labels is a clash: an error naming the metric.
	g := With(reg)
	g.CounterVec("things_total", "Things.", "other")
	if err := g.Err(); err == nil || !strings.Contains(err.Error(), "echain_indexer_things_total") {
		t.Errorf("clash: %v", err)
	}
	// Without a registerer: usable collectors, nothing registered, no error.
	n := With(nil)
	n.Gauge("alone", "Alone.").Set(1)
	if n.Err() != nil {
		t.Error(n.Err())
	}
}

// TestOneWayToRegister: packages create and register metrics through Factory only, so names get
// the prefix and registration errors are handled one way.
func TestOneWayToRegister(t *testing.T) {
	direct := regexp.MustCompile(`prometheus\.New(Counter|Gauge|Histogram|Summary|Untyped)|\bMustRegister\(|Registerer\.Register\(|\breg\.Register\(`)
	err := filepath.WalkDir("..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "metrics" || strings.HasPrefix(d.Name(), ".")) && path != ".." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(src), "\n") {
			if direct.MatchString(line) {
				t.Errorf("%s:%d creates or registers a metric itself; use metrics.With(reg): %s", path, i+1, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
