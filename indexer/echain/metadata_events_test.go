package echain

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/echain/echain-indexer/devchain"
)

// metadataEvents creates one event per kind of gateway answer, plus URIs the gateway does not
// serve, and returns the event id of each URI.
func metadataEvents(x *harness) map[string]uint64 {
	org := x.dc.User(0)
	x.send(x.dc.VerifyOrganizer(x.ctx, org))
	x.mine()
	var uris []string
	for k := devchain.MetaFull; k <= devchain.MetaHang; k++ {
		u, _ := devchain.MetadataURIOfKind(1, 0, k)
		uris = append(uris, u)
	}
	uris = append(uris, "ar://not-a-gateway-scheme", "")
	now := x.dc.Head().Time
	var txs []common.Hash
	hashes := map[common.Hash]string{}
	for i, u := range uris {
		h := x.send(x.dc.CreateEvent(x.ctx, org, devchain.EventParams{
			Name: fmt.Sprintf("Event %d", i), MetadataURI: u, TicketPrice: gwei(1), MaxTickets: 5, StartTime: now + 10, EndTime: now + 20,
		}))
		hashes[h] = u
		txs = append(txs, h)
	}
	out := map[string]uint64{}
	for _, r := range x.mine(txs...) {
		c := x.created(r)
		out[hashes[r.TxHash]] = c.EventID
	}
	if len(out) != len(uris) {
		x.t.Fatalf("%d events for %d URIs", len(out), len(uris))
	}
	return out
}

func TestEventMetadataKinds(t *testing.T) {
	x := newHarness(t, harnessOpts{archive: true})
	ids := metadataEvents(x)
	x.index()
	st := x.compare()
	for uri, id := range ids {
		e := st.Get("Event", fmt.Sprint(id))
		doc, served := devchain.Metadata(uri, devchain.MetadataConfig{SlowDelay: 200 * time.Millisecond})
		var wantDesc string
		var wantImage any
		if served && doc.Usable() && doc.Delay < metaTimeout {
			wantDesc = doc.Description
			if doc.ImageURL != nil {
				wantImage = *doc.ImageURL
			}
		}
		if e["description"] != wantDesc || e["imageUrl"] != wantImage || e["metadataUri"] != uri {
			t.Errorf("%s (%v): description %q imageUrl %v, want %q %v", uri, doc.Kind, e["description"], e["imageUrl"], wantDesc, wantImage)
		}
	}
}

func TestEventMetadataWithoutGateway(t *testing.T) {
	x := newHarness(t, harnessOpts{archive: true, noGateway: true})
	ids := metadataEvents(x)
	x.index()
	st := x.compare()
	for uri, id := range ids {
		e := st.Get("Event", fmt.Sprint(id))
		if e["description"] != "" || e["category"] != "" || e["location"] != nil || e["imageUrl"] != nil || e["metadataUri"] != uri {
			t.Errorf("%s without a gateway: %v", uri, e)
		}
	}
	if got := counterValue(t, x.h.m.metadata.WithLabelValues("ok")); got != 0 {
		t.Errorf("%v documents fetched without a gateway", got)
	}
}

// TestEventUpdatedWithUnavailableDocument: when the gateway is down, an update that keeps the URI
// keeps the fields read from it; an update to a new URI resets them.
func TestEventUpdatedWithUnavailableDocument(t *testing.T) {
	x := newHarness(t, harnessOpts{archive: true})
	org := x.dc.User(0)
	full, _ := devchain.MetadataURIOfKind(1, 0, devchain.MetaFull)
	other, _ := devchain.MetadataURIOfKind(1, 100, devchain.MetaFull)
	doc, _ := devchain.Metadata(full, devchain.MetadataConfig{})
	x.send(x.dc.VerifyOrganizer(x.ctx, org))
	x.mine()
	now := x.dc.Head().Time
	c := x.send(x.dc.CreateEvent(x.ctx, org, devchain.EventParams{Name: "A", MetadataURI: full, TicketPrice: gwei(1), MaxTickets: 5, StartTime: now + 10, EndTime: now + 20}))
	ev := x.created(x.mine(c)[0])
	id := fmt.Sprint(ev.EventID)
	x.index()
	if e := x.state().Get("Event", id); e["description"] != doc.Description || e["location"] != *doc.Location {
		t.Fatalf("created: %v", e)
	}

	// A restarted indexer (empty cache) whose gateway is gone.
	cfg := x.cfg
	cfg.MetadataGateway = "http://127.0.0.1:1"
	cfg.MetadataTimeout = 500 * time.Millisecond
	h, err := New(cfg, x.chain, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	x.h = h
	x.send(x.dc.UpdateEvent(x.ctx, org, ev.EventID, "A renamed", full))
	x.mine()
	x.index()
	e := x.state().Get("Event", id)
	if e["title"] != "A renamed" || e["description"] != doc.Description || e["category"] != doc.Category ||
		e["location"] != *doc.Location || e["imageUrl"] != *doc.ImageURL {
		t.Errorf("same URI, document unavailable: %v; want the fields kept", e)
	}
	x.send(x.dc.UpdateEvent(x.ctx, org, ev.EventID, "A moved", other))
	x.mine()
	x.index()
	e = x.state().Get("Event", id)
	if e["metadataUri"] != other || e["description"] != "" || e["category"] != "" || e["location"] != nil || e["imageUrl"] != nil {
		t.Errorf("new URI, document unavailable: %v; want the defaults", e)
	}
}

// TestMetadataPersistentCache: documents fetched once are read back from indexer.metadata_cache
// by a restarted indexer whose gateway is gone.
func TestMetadataPersistentCache(t *testing.T) {
	x := newHarness(t, harnessOpts{archive: true, pgCache: true})
	ids := metadataEvents(x)
	x.index()
	var n int
	if err := x.st.Pool().QueryRow(x.ctx, `SELECT count(*) FROM indexer.metadata_cache`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	fetched := int(counterValue(t, x.h.m.metadata.WithLabelValues("ok")))
	if n == 0 || n != fetched {
		t.Fatalf("%d cached documents, %d fetched", n, fetched)
	}

	cfg := x.cfg
	cfg.MetadataGateway = "http://127.0.0.1:1"
	h, err := New(cfg, x.chain, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	// Each event moves to the next event's URI: a new URI, whose document only the cache has.
	org := x.dc.User(0)
	var uris []string
	for uri := range ids {
		uris = append(uris, uri)
	}
	for i, uri := range uris {
		x.send(x.dc.UpdateEvent(x.ctx, org, ids[uri], "renamed", uris[(i+1)%len(uris)]))
	}
	x.mine()
	before := x.state()
	x.h = h
	x.index()
	after := x.state()
	for i, uri := range uris {
		a := after.Get("Event", fmt.Sprint(ids[uri]))
		b := before.Get("Event", fmt.Sprint(ids[uris[(i+1)%len(uris)]])) // the event that had that URI
		if a["description"] != b["description"] || a["imageUrl"] != b["imageUrl"] || a["location"] != b["location"] || a["title"] != "renamed" {
			t.Errorf("event %d moved to %s after a restart without gateway: %v, want the fields of %v", ids[uri], b["metadataUri"], a, b)
		}
	}
	if got := counterValue(t, h.m.metadata.WithLabelValues("cache")); int(got) != n {
		t.Errorf("%v documents from the persistent cache, want %d", got, n)
	}
	x.compare()
}
