package echain

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestParseMetadata(t *testing.T) {
	for _, tc := range []struct {
		name, doc          string
		desc, cat          string
		location, imageURL string // "<nil>" for null
		err                bool
	}{
		{name: "full", doc: `{"description":"d","category":"music","location":"Accra","imageUrl":"ipfs://img","image":"x"}`,
			desc: "d", cat: "music", location: "Accra", imageURL: "ipfs://img"},
		{name: "image fallback", doc: `{"description":"d","image":"https://i/1.png"}`,
			desc: "d", location: "<nil>", imageURL: "https://i/1.png"},
		{name: "empty imageUrl falls back to image", doc: `{"imageUrl":"","image":"i"}`,
			location: "<nil>", imageURL: "i"},
		{name: "non-string values are missing", doc: `{"description":5,"category":null,"location":{"city":"Lagos"},"imageUrl":["a"]}`,
			location: "<nil>", imageURL: "<nil>"},
		{name: "empty location is kept", doc: `{"location":""}`, location: "", imageURL: "<nil>"},
		{name: "not an object", doc: `["a"]`, err: true},
		{name: "null", doc: `null`, err: true},
		{name: "not json", doc: `<html>`, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			md, err := ParseMetadata([]byte(tc.doc))
			if tc.err {
				if err == nil {
					t.Fatalf("want an error, got %+v", md)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			str := func(p *string) string {
				if p == nil {
					return "<nil>"
				}
				return *p
			}
			if md.Description != tc.desc || md.Category != tc.cat || str(md.Location) != tc.location || str(md.ImageURL) != tc.imageURL {
				t.Errorf("got %q %q %q %q", md.Description, md.Category, str(md.Location), str(md.ImageURL))
			}
		})
	}
}

// metaServer serves documents under /ipfs/ and counts requests per path.
type metaServer struct {
	*httptest.Server
	hits map[string]*atomic.Int64
}

func newMetaServer(t *testing.T, routes map[string]http.HandlerFunc) *metaServer {
	t.Helper()
	s := &metaServer{hits: map[string]*atomic.Int64{}}
	mux := http.NewServeMux()
	for p, h := range routes {
		s.hits[p] = &atomic.Int64{}
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			s.hits[p].Add(1)
			h(w, r)
		})
	}
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func doc(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, body) }
}

func newTestFetcher(t *testing.T, gateway string, timeout time.Duration) (*metadataFetcher, *metrics) {
	t.Helper()
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	f, err := newMetadataFetcher(gateway, timeout, 100, nil, slog.New(slog.DiscardHandler), m)
	if err != nil {
		t.Fatal(err)
	}
	return f, m
}

func TestMetadataFetcher(t *testing.T) {
	release := make(chan struct{})
	srv := newMetaServer(t, map[string]http.HandlerFunc{
		"/ipfs/QmFull":    doc(`{"description":"Live","category":"music","location":"Accra","imageUrl":"ipfs://QmImg"}`),
		"/ipfs/QmPartial": doc(`{"description":"Only a description","image":"https://img/1.png"}`),
		"/ipfs/QmMissing": http.NotFound,
		"/ipfs/QmBad":     doc(`not json`),
		"/ipfs/QmBig":     doc(`{"description":"` + strings.Repeat("x", maxDocumentBytes) + `"}`),
		"/ipfs/QmSlow": func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		},
		"/direct.json": doc(`{"category":"sports"}`),
	})
	defer close(release)
	f, m := newTestFetcher(t, srv.URL, 300*time.Millisecond)
	ctx := context.Background()

	start := time.Now()
	got := f.FetchAll(ctx, []string{
		"ipfs://QmFull", "ipfs://ipfs/QmPartial", "ipfs://QmMissing", "ipfs://QmBad", "ipfs://QmBig",
		"ipfs://QmSlow", srv.URL + "/direct.json", "ar://nope", "ipfs://QmFull",
	})
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("FetchAll took %v with a 300ms timeout per document", d)
	}
	if md := got["ipfs://QmFull"]; md == nil || md.Description != "Live" || md.Category != "music" || *md.Location != "Accra" || *md.ImageURL != "ipfs://QmImg" {
		t.Errorf("full document: %+v", md)
	}
	if md := got["ipfs://ipfs/QmPartial"]; md == nil || md.Description != "Only a description" || md.Category != "" || md.Location != nil || *md.ImageURL != "https://img/1.png" {
		t.Errorf("partial document: %+v", md)
	}
	if md := got[srv.URL+"/direct.json"]; md == nil || md.Category != "sports" {
		t.Errorf("http document: %+v", md)
	}
	for _, u := range []string{"ipfs://QmMissing", "ipfs://QmBad", "ipfs://QmBig", "ipfs://QmSlow", "ar://nope"} {
		if md, ok := got[u]; ok {
			t.Errorf("%s: want unavailable, got %+v", u, md)
		}
	}
	if n := srv.hits["/ipfs/QmFull"].Load(); n != 1 {
		t.Errorf("a URI asked twice in one call was fetched %d times", n)
	}
	for result, want := range map[string]float64{"ok": 3, "not_found": 1, "invalid": 2, "timeout": 1, "unsupported": 1} {
		if got := counterValue(t, m.metadata.WithLabelValues(result)); got != want {
			t.Errorf("metadata %s = %v, want %v", result, got, want)
		}
	}

	// Cached by URI: documents are not fetched again; a failed URI is not asked again at once.
	again := f.FetchAll(ctx, []string{"ipfs://QmFull", "ipfs://QmMissing"})
	if again["ipfs://QmFull"] == nil || again["ipfs://QmMissing"] != nil {
		t.Errorf("second fetch: %+v", again)
	}
	if n, m404 := srv.hits["/ipfs/QmFull"].Load(), srv.hits["/ipfs/QmMissing"].Load(); n != 1 || m404 != 1 {
		t.Errorf("after a second fetch: %d and %d requests, want 1 and 1", n, m404)
	}
}

func TestMetadataBreakerSkipsAFailingHost(t *testing.T) {
	srv := newMetaServer(t, map[string]http.HandlerFunc{
		"/ipfs/": func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusBadGateway) },
	})
	f, m := newTestFetcher(t, srv.URL, time.Second)
	now := time.Unix(1_700_000_000, 0)
	f.now = func() time.Time { return now }
	ctx := context.Background()
	for i := range breakerThreshold + 3 {
		if md := f.Fetch(ctx, fmt.Sprintf("ipfs://Qm%d", i)); md != nil {
			t.Fatalf("got a document from a failing gateway: %+v", md)
		}
	}
	if n := srv.hits["/ipfs/"].Load(); n != breakerThreshold {
		t.Errorf("%d requests to a failing host, want the breaker to stop at %d", n, breakerThreshold)
	}
	if got := counterValue(t, m.metadata.WithLabelValues("skipped")); got != 3 {
		t.Errorf("skipped = %v, want 3", got)
	}
	now = now.Add(breakerCooldown + time.Second)
	f.Fetch(ctx, "ipfs://QmAfterCooldown")
	if n := srv.hits["/ipfs/"].Load(); n != breakerThreshold+1 {
		t.Errorf("after the cooldown: %d requests, want %d", n, breakerThreshold+1)
	}
}

func TestMetadataWithoutGatewayFetchesNothing(t *testing.T) {
	srv := newMetaServer(t, map[string]http.HandlerFunc{"/doc.json": doc(`{"description":"x"}`)})
	f, _ := newTestFetcher(t, "", time.Second)
	if f.enabled() {
		t.Fatal("fetcher without gateway is enabled")
	}
	if got := f.FetchAll(context.Background(), []string{"ipfs://Qm1", srv.URL + "/doc.json"}); len(got) != 0 {
		t.Errorf("got documents without a gateway: %+v", got)
	}
	if n := srv.hits["/doc.json"].Load(); n != 0 {
		t.Errorf("%d requests without a gateway", n)
	}
}

func TestMetadataGatewayForms(t *testing.T) {
	for gw, want := range map[string]string{
		"https://ipfs.io":                   "https://ipfs.io/ipfs/Qm1/a.json",
		"https://ipfs.io/":                  "https://ipfs.io/ipfs/Qm1/a.json",
		"https://gw.example/ipfs/":          "https://gw.example/ipfs/Qm1/a.json",
		"http://127.0.0.1:8080/prefix/ipfs": "http://127.0.0.1:8080/prefix/ipfs/Qm1/a.json",
	} {
		f, _ := newTestFetcher(t, gw, time.Second)
		if got, ok := f.resolve("ipfs://Qm1/a.json"); !ok || got != want {
			t.Errorf("gateway %s: got %q %v, want %q", gw, got, ok, want)
		}
	}
	if _, err := newMetadataFetcher("ftp://x", time.Second, 1, nil, slog.New(slog.DiscardHandler), nil); err == nil {
		t.Error("an ftp gateway was accepted")
	}
}

// counterValue reads a counter (testutil would pull a dependency in for this one call).
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// A caller that gives up (shutdown) returns at once and does not make the document
// unavailable for another caller waiting on the same fetch.
func TestMetadataCancelledCallerDoesNotPoisonOthers(t *testing.T) {
	srv := newMetaServer(t, map[string]http.HandlerFunc{
		"/ipfs/QmSlowOK": func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(300 * time.Millisecond)
			fmt.Fprint(w, `{"description":"late but fine"}`)
		},
	})
	f, _ := newTestFetcher(t, srv.URL, 2*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	done := make(chan *Metadata)
	go func() { done <- f.Fetch(context.Background(), "ipfs://QmSlowOK") }()
	start := time.Now()
	if md := f.FetchAll(ctx, []string{"ipfs://QmSlowOK"}); len(md) != 0 {
		t.Errorf("cancelled caller got %v", md)
	}
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Errorf("cancelled caller returned after %v", d)
	}
	if md := <-done; md == nil || md.Description != "late but fine" {
		t.Errorf("the other caller got %+v", md)
	}
	if n := srv.hits["/ipfs/QmSlowOK"].Load(); n != 1 {
		t.Errorf("%d requests for one document", n)
	}
}
