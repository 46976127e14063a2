package devchain

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
)

// The metadata server plays an IPFS gateway for the events' metadataURIs: GET /ipfs/<cid> answers
// a JSON document that is a pure function of the CID, so tests can compute what an indexer should
// make of any URI (Metadata) without asking the server. The CID also decides the kind of answer,
// so fallbacks get exercised: documents with every field, with `image` instead of `imageUrl`, with
// fields missing, invalid JSON, 404, 500, slow answers and answers slower than any sane timeout.

// MetadataKind is the kind of answer the gateway gives for a CID.
type MetadataKind int

// Kinds of answers, with their share of CIDs.
const (
	MetaFull        MetadataKind = iota // 50%: description, category, location, imageUrl
	MetaImageOnly                       // 12%: `image` instead of `imageUrl`
	MetaPartial                         // 10%: description only
	MetaBothImages                      // 4%: both `imageUrl` and `image` (imageUrl wins)
	MetaInvalidJSON                     // 4%: 200 with a body that is not JSON
	MetaNotFound                        // 8%: 404
	MetaServerError                     // 3%: 500
	MetaSlow                            // 5%: a full document after MetadataConfig.SlowDelay
	MetaHang                            // 4%: a full document after MetadataConfig.HangDelay
	metaKinds
)

// kindShares are the percentages of CIDs of each kind (summing to 100).
func kindShares() [metaKinds]int { return [metaKinds]int{50, 12, 10, 4, 4, 8, 3, 5, 4} }

func (k MetadataKind) String() string {
	return [...]string{"full", "image-only", "partial", "both-images", "invalid-json", "not-found",
		"server-error", "slow", "hang"}[k]
}

// MetadataConfig tunes the slow answers.
type MetadataConfig struct {
	SlowDelay time.Duration // default 1.5s: slow but within a reasonable fetch timeout
	HangDelay time.Duration // default 30s: beyond any reasonable fetch timeout
}

func (m *MetadataConfig) withDefaults() {
	if m.SlowDelay == 0 {
		m.SlowDelay = 1500 * time.Millisecond
	}
	if m.HangDelay == 0 {
		m.HangDelay = 30 * time.Second
	}
}

// MetadataDoc is what the gateway serves for a URI and what an indexer should take from it.
type MetadataDoc struct {
	CID    string
	Kind   MetadataKind
	Status int           // HTTP status
	Delay  time.Duration // wait before answering
	Body   []byte        // exact body
	// The entity fields per SPEC.md when the document is had: description and category ("" when
	// absent), location and imageUrl (imageUrl, else image; nil when absent).
	Description string
	Category    string
	Location    *string
	ImageURL    *string
}

// Usable tells whether an indexer that waits long enough gets the document (200 and valid JSON).
func (d MetadataDoc) Usable() bool { return d.Status == http.StatusOK && d.Kind != MetaInvalidJSON }

// MetadataURI is the n-th metadata URI of a seed's traffic: ipfs://<cid>.
func MetadataURI(seed int64, n uint64) string {
	var buf [16]byte
	binary.BigEndian.PutUint64(buf[:8], uint64(seed))
	binary.BigEndian.PutUint64(buf[8:], n)
	sum := sha256.Sum256(append([]byte("echain-metadata"), buf[:]...))
	enc := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:])
	return "ipfs://bafy" + strings.ToLower(enc)
}

// MetadataURIOfKind returns the first URI of the seed's sequence, from n on, whose CID has kind k,
// and its position.
func MetadataURIOfKind(seed int64, n uint64, k MetadataKind) (string, uint64) {
	for ; ; n++ {
		uri := MetadataURI(seed, n)
		if doc, ok := Metadata(uri, MetadataConfig{}); ok && doc.Kind == k {
			return uri, n
		}
	}
}

// Metadata computes the gateway's answer for an ipfs:// URI; ok is false for other URIs (the
// gateway does not serve them). Zero delays in cfg take the defaults.
func Metadata(uri string, cfg MetadataConfig) (doc MetadataDoc, ok bool) {
	cid, found := strings.CutPrefix(uri, "ipfs://")
	if !found || cid == "" || strings.ContainsAny(cid, "/?#") {
		return MetadataDoc{}, false
	}
	return metadataFor(cid, cfg), true
}

func metadataFor(cid string, cfg MetadataConfig) MetadataDoc {
	cfg.withDefaults()
	sum := sha256.Sum256([]byte("kind:" + cid))
	pick := int(binary.BigEndian.Uint16(sum[:2]) % 100)
	var kind MetadataKind
	shares := kindShares()
	for k, acc := MetadataKind(0), 0; k < metaKinds; k++ {
		acc += shares[k]
		if pick < acc {
			kind = k
			break
		}
	}
	d := MetadataDoc{CID: cid, Kind: kind, Status: http.StatusOK}
	categories := []string{"music", "conference", "sports", "art", "workshop", "meetup", "theatre"}
	cities := []string{"Lagos", "Nairobi", "Accra", "Lisbon", "Berlin", "Singapore", "Online"}
	short := cid[len(cid)-8:]
	desc := fmt.Sprintf("Echain dev event %s: an evening of %s.", short, categories[sum[2]%7])
	category := categories[sum[3]%7]
	location := cities[sum[4]%7]
	image := "ipfs://bafyimage" + short

	doc := map[string]any{"name": "Event " + short, "description": desc}
	switch kind {
	case MetaFull, MetaSlow, MetaHang:
		doc["category"], doc["location"], doc["imageUrl"] = category, location, image
	case MetaImageOnly:
		doc["category"], doc["location"], doc["image"] = category, location, image
	case MetaBothImages:
		doc["category"], doc["location"], doc["imageUrl"], doc["image"] = category, location, image, image+"/alt.png"
	}
	switch kind {
	case MetaSlow:
		d.Delay = cfg.SlowDelay
	case MetaHang:
		d.Delay = cfg.HangDelay
	case MetaNotFound:
		d.Status, d.Body = http.StatusNotFound, []byte(`{"error":"not found"}`)
		return d
	case MetaServerError:
		d.Status, d.Body = http.StatusInternalServerError, []byte("gateway error\n")
		return d
	case MetaInvalidJSON:
		d.Body = []byte(`{"description": "truncated`)
		return d
	}
	d.Body, _ = json.Marshal(doc) // map keys marshal sorted: a stable body
	d.Description = desc
	if v, ok := doc["category"].(string); ok {
		d.Category = v
	}
	if v, ok := doc["location"].(string); ok {
		d.Location = &v
	}
	if v, ok := doc["imageUrl"].(string); ok {
		d.ImageURL = &v
	} else if v, ok := doc["image"].(string); ok {
		d.ImageURL = &v
	}
	return d
}

type metadataServer struct {
	srv    *http.Server
	addr   string
	cancel context.CancelFunc // ends delayed answers on close
}

func startMetadataServer(addr string, cfg MetadataConfig, log *slog.Logger) (*metadataServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("devchain: metadata server listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ipfs/{cid}", func(w http.ResponseWriter, r *http.Request) {
		d := metadataFor(r.PathValue("cid"), cfg)
		if d.Delay > 0 {
			t := time.NewTimer(d.Delay)
			defer t.Stop()
			select {
			case <-t.C:
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(d.Status)
		_, _ = w.Write(d.Body)
	})
	base, cancel := context.WithCancel(context.Background())
	s := &metadataServer{
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 5 * time.Second,
			BaseContext:       func(net.Listener) context.Context { return base },
		},
		addr:   ln.Addr().String(),
		cancel: cancel,
	}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metadata server stopped", "err", err)
		}
	}()
	return s, nil
}

func (s *metadataServer) gateway() string { return "http://" + s.addr + "/ipfs/" }

func (s *metadataServer) close() error {
	s.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		return s.srv.Close()
	}
	return nil
}
