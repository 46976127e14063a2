package echain

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/echain/echain-indexer/internal/testwait"
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
	t.Cleanup(f.close)
	return f, m
}

// waitState polls the fetcher until every URI leaves docPending (or, for those in pending,
// until its first attempt ended) and returns the states.
func waitState(t *testing.T, f *metadataFetcher, uris []string, pending map[string]bool) map[string]docState {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		out := map[string]docState{}
		left := 0
		for _, u := range uris {
			_, st := f.lookup(u)
			out[u] = st
			f.mu.Lock()
			settled := f.settled[u]
			f.mu.Unlock()
			if st == docPending && (!pending[u] || !settled) {
				left++
			}
		}
		if left == 0 {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a minute %d documents are still being fetched: %v", left, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
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
	uris := []string{"ipfs://QmFull", "ipfs://ipfs/QmPartial", "ipfs://QmMissing", "ipfs://QmBad", "ipfs://QmBig",
		"ipfs://QmSlow", srv.URL + "/direct.json", "ar://nope", "ipfs://QmFull"}
	got := waitState(t, f, uris, map[string]bool{"ipfs://QmSlow": true})
	for u, want := range map[string]docState{"ipfs://QmFull": docHave, "ipfs://ipfs/QmPartial": docHave, srv.URL + "/direct.json": docHave,
		"ipfs://QmMissing": docNever, "ipfs://QmBad": docNever, "ipfs://QmBig": docNever, "ar://nope": docNever, "ipfs://QmSlow": docPending} {
		if got[u] != want {
			t.Errorf("%s: state %v, want %v", u, got[u], want)
		}
	}
	if md, _ := f.lookup("ipfs://QmFull"); md == nil || md.Description != "Live" || md.Category != "music" || *md.Location != "Accra" || *md.ImageURL != "ipfs://QmImg" {
		t.Errorf("full document: %+v", md)
	}
	if md, _ := f.lookup("ipfs://ipfs/QmPartial"); md == nil || md.Description != "Only a description" || md.Category != "" || md.Location != nil || *md.ImageURL != "https://img/1.png" {
		t.Errorf("partial document: %+v", md)
	}
	if md, _ := f.lookup(srv.URL + "/direct.json"); md == nil || md.Category != "sports" {
		t.Errorf("http document: %+v", md)
	}
	if n := srv.hits["/ipfs/QmFull"].Load(); n != 1 {
		t.Errorf("a URI asked for several times was fetched %d times", n)
	}
	for result, want := range map[string]float64{"ok": 3, "not_found": 1, "invalid": 2} {
		if got := counterValue(t, m.metadata.WithLabelValues(result)); got != want {
			t.Errorf("metadata %s = %v, want %v", result, got, want)
		}
	}
	if got := counterValue(t, m.metadata.WithLabelValues("timeout")); got < 1 {
		t.Errorf("metadata timeout = %v, want at least 1", got)
	}
	// Final failures are not asked again.
	waitState(t, f, []string{"ipfs://QmMissing"}, nil)
	if n := srv.hits["/ipfs/QmMissing"].Load(); n != 1 {
		t.Errorf("a 404 was asked %d times", n)
	}
}

// TestMetadataRetriesUntilHad: a gateway that fails (502) for a while is asked one request at a
// time while it fails, and every document is had once it answers again: none is skipped for good.
func TestMetadataRetriesUntilHad(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	var inFlight, maxInFlight, failures atomic.Int64
	srv := newMetaServer(t, map[string]http.HandlerFunc{
		"/ipfs/": func(w http.ResponseWriter, r *http.Request) {
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			if failures.Load() > 0 && n > maxInFlight.Load() {
				maxInFlight.Store(n)
			}
			if down.Load() {
				time.Sleep(5 * time.Millisecond)
				failures.Add(1)
				http.Error(w, "down", http.StatusBadGateway)
				return
			}
			fmt.Fprintf(w, `{"description":%q}`, r.URL.Path)
		},
	})
	f, m := newTestFetcher(t, srv.URL, time.Second)
	f.retryMin, f.hostMin, f.hostMax = 20*time.Millisecond, 5*time.Millisecond, 20*time.Millisecond
	var uris []string
	for i := range 40 {
		uris = append(uris, fmt.Sprintf("ipfs://Qm%d", i))
	}
	for _, u := range uris {
		f.lookup(u)
	}
	for failures.Load() < 60 {
		time.Sleep(5 * time.Millisecond)
	}
	// The first failures may overlap (they were sent before any failed); once the host is known to
	// fail, requests go one at a time.
	maxInFlight.Store(0)
	for failures.Load() < 90 {
		time.Sleep(5 * time.Millisecond)
	}
	if n := maxInFlight.Load(); n > 1 {
		t.Errorf("%d requests at once to a failing host, want 1", n)
	}
	down.Store(false)
	got := waitState(t, f, uris, nil)
	for _, u := range uris {
		if md, _ := f.lookup(u); got[u] != docHave || md == nil || md.Description != "/ipfs/"+strings.TrimPrefix(u, "ipfs://") {
			t.Errorf("%s after the gateway came back: %v %+v", u, got[u], md)
		}
	}
	if ok := counterValue(t, m.metadata.WithLabelValues("ok")); ok != 40 {
		t.Errorf("%v documents fetched, want 40", ok)
	}
}

func TestMetadataWithoutGatewayFetchesNothing(t *testing.T) {
	srv := newMetaServer(t, map[string]http.HandlerFunc{"/doc.json": doc(`{"description":"x"}`)})
	for _, gw := range []string{"", "off"} {
		f, _ := newTestFetcher(t, gw, time.Second)
		if f.enabled() {
			t.Fatalf("fetcher with gateway %q is enabled", gw)
		}
		for _, u := range []string{"ipfs://Qm1", srv.URL + "/doc.json"} {
			if md, st := f.lookup(u); md != nil || st != docNever {
				t.Errorf("gateway %q: %s gave %v %+v", gw, u, st, md)
			}
		}
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

// TestMetadataTimeoutBacksOffOnlyTheDocument: one document that hangs (an IPFS CID no node
// serves) times out and is retried on its own back-off, while the gateway's other documents are
// all fetched: the timeout of a request the host took does not back the host off. A host that
// cannot be reached still is.
func TestMetadataTimeoutBacksOffOnlyTheDocument(t *testing.T) {
	stop := make(chan struct{})
	srv := newMetaServer(t, map[string]http.HandlerFunc{
		"/ipfs/QmHang": func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-stop:
			case <-r.Context().Done():
			}
		},
		"/ipfs/": func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"description":%q}`, r.URL.Path)
		},
	})
	defer close(stop)
	f, m := newTestFetcher(t, srv.URL, 200*time.Millisecond)
	// A host back-off would outlast the test: any document held by one would stay pending.
	f.retryMin, f.hostMin, f.hostMax = 20*time.Millisecond, time.Hour, time.Hour

	f.lookup("ipfs://QmHang")
	waitState(t, f, []string{"ipfs://QmHang"}, map[string]bool{"ipfs://QmHang": true})
	if n := counterValue(t, m.metadata.WithLabelValues("timeout")); n < 1 {
		t.Fatalf("the hanging document's first attempt ended without a timeout (%v)", n)
	}
	f.mu.Lock()
	backedOff := len(f.hosts)
	f.mu.Unlock()
	if backedOff != 0 {
		t.Errorf("a document's timeout backed off %d hosts", backedOff)
	}

	var uris []string
	for i := range 30 {
		uris = append(uris, fmt.Sprintf("ipfs://QmFast%d", i))
	}
	for _, u := range uris {
		f.lookup(u)
	}
	got := waitState(t, f, uris, nil)
	for _, u := range uris {
		if md, _ := f.lookup(u); got[u] != docHave || md == nil || md.Description != "/ipfs/"+strings.TrimPrefix(u, "ipfs://") {
			t.Errorf("%s: %v %+v", u, got[u], md)
		}
	}
	if n := counterValue(t, m.metadata.WithLabelValues("ok")); n != 30 {
		t.Errorf("%v documents fetched, want 30", n)
	}
	// The hanging document is still chased on its own back-off.
	testwait.For(t, "the hanging document to be asked again", func() (bool, string) {
		n := srv.hits["/ipfs/QmHang"].Load()
		return n >= 3, fmt.Sprintf("asked %d times", n)
	})
	if _, st := f.lookup("ipfs://QmHang"); st != docPending {
		t.Errorf("the hanging document is %v, want pending (retried)", st)
	}

	// A gateway that refuses connections is backed off as a host.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	g, gm := newTestFetcher(t, closed, time.Second)
	g.retryMin, g.hostMin, g.hostMax = time.Hour, time.Hour, time.Hour
	g.lookup("ipfs://QmAny")
	waitState(t, g, []string{"ipfs://QmAny"}, map[string]bool{"ipfs://QmAny": true})
	g.mu.Lock()
	backedOff = len(g.hosts)
	g.mu.Unlock()
	if n := counterValue(t, gm.metadata.WithLabelValues("error")); n != 1 || backedOff != 1 {
		t.Errorf("a refused connection: %v errors, %d hosts backed off; want 1 and 1", n, backedOff)
	}
}
