package echain

import (
	"context"
	"fmt"
	"sync"

	"github.com/echain/echain-indexer/indexer"
	"github.com/echain/echain-indexer/schema/entity"
	"github.com/echain/echain-indexer/store"
)

// Metadata documents never hold a commit. Apply writes an Event with what is already in memory
// (usually the defaults) and notes the Event here; the fetcher gets the document in the
// background; WriteLate, which the follower runs in every commit after the commit's blocks,
// writes the filled fields as a new version at the commit's head block, through the same batch,
// so subscriptions push it and time travel shows when it arrived.
//
// The notes are memory only. What makes them complete again after a restart, a revert (which may
// take away a block that carried a fill) or a failed commit is that an Event is only ever noted
// off when a commit reads it already equal to its document: after a start and after every
// revert the current Events still showing the defaults are read from the store and noted again.

// maxFillsPerCommit bounds the Events WriteLate reads in one commit (each may be a query).
const maxFillsPerCommit = 256

// filler holds the Events whose metadata fields may not yet match their document.
type filler struct {
	mu       sync.Mutex
	want     map[string]string // event id -> the metadata URI its fields must come from
	rescan   bool              // read the store's Events again (start, revert)
	scanning bool
}

func newFiller() *filler { return &filler{want: map[string]string{}, rescan: true} }

func (fl *filler) note(id, uri string) {
	fl.mu.Lock()
	fl.want[id] = uri
	fl.mu.Unlock()
}

// done notes the Event off, unless a later Apply noted it for another URI.
func (fl *filler) done(id, uri string) {
	fl.mu.Lock()
	if fl.want[id] == uri {
		delete(fl.want, id)
	}
	fl.mu.Unlock()
}

// metadataFor is what Apply writes for a URI now: the document when it is in memory, else nil
// (the defaults). Unless the document is had or never will be, the Event is noted for WriteLate.
func (h *Handler) metadataFor(id, uri string) (*Metadata, docState) {
	md, st := h.meta.lookup(uri)
	if st == docPending {
		h.fill.note(id, uri)
	}
	return md, st
}

var _ indexer.LateWriter = (*Handler)(nil)

// WriteLate writes the documents that arrived since the last commit into the commit's batch, at
// its head block. It never waits for a document.
func (h *Handler) WriteLate(ctx context.Context, head store.BlockPtr, b indexer.Batch) error {
	if !h.meta.enabled() {
		return nil
	}
	h.startScan()
	type entry struct{ id, uri string }
	var ready []entry
	h.fill.mu.Lock()
	for id, uri := range h.fill.want {
		if len(ready) == maxFillsPerCommit {
			break
		}
		if _, st := h.meta.lookup(uri); st != docPending {
			ready = append(ready, entry{id, uri})
		}
	}
	h.fill.mu.Unlock()
	for _, e := range ready {
		ev, err := entity.LoadEvent(ctx, b, e.id)
		if err != nil {
			return fmt.Errorf("metadata of event %s: %w", e.id, err)
		}
		if ev == nil || ev.MetadataURI != e.uri {
			// Reverted, or moved to another URI (noted for that one).
			h.fill.done(e.id, e.uri)
			continue
		}
		md, _ := h.meta.lookup(e.uri)
		if metadataMatches(ev, md) {
			h.fill.done(e.id, e.uri)
			continue
		}
		// updatedAt stays: it is the block of the Event's latest log (SPEC.md), and a fill is no
		// log. The entry stays until a later commit reads the fields back (a failed commit or a
		// revert then loses nothing).
		setMetadata(ev, md)
		ev.Save(b)
		h.m.metadataFills.Inc()
		h.log.Debug("event metadata written", "event", e.id, "block", head.Number)
	}
	return nil
}

// Reverted notes that the store lost the blocks after `to`: fills they carried must be written
// again, so the Events are read from the store again.
func (h *Handler) Reverted(to int64) {
	h.fill.mu.Lock()
	h.fill.rescan = true
	h.fill.mu.Unlock()
}

// startScan reads, in the background, the current Events whose fields are still the defaults
// and notes them. It runs at the first commit after a start and after each revert.
func (h *Handler) startScan() {
	fl := h.fill
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if !fl.rescan || fl.scanning || h.cfg.MetadataStore == nil || h.meta.ctx.Err() != nil {
		return
	}
	fl.rescan, fl.scanning = false, true
	h.meta.wg.Add(1)
	go func() {
		defer h.meta.wg.Done()
		err := h.scan(h.meta.ctx)
		fl.mu.Lock()
		defer fl.mu.Unlock()
		fl.scanning = false
		if err != nil && h.meta.ctx.Err() == nil {
			h.log.Warn("reading events for their metadata failed; will retry", "err", err)
			fl.rescan = true
		}
	}()
}

func (h *Handler) scan(ctx context.Context) error {
	n := 0
	err := h.cfg.MetadataStore.CurrentRows(ctx, entity.TypeEvent, func(row []any) error {
		ev, err := entity.EventFromRow(row)
		if err != nil {
			return err
		}
		// Had documents too: a revert may have taken away the version that carried one.
		if ev.MetadataURI != "" && metadataMatches(ev, nil) {
			if _, st := h.meta.lookup(ev.MetadataURI); st != docNever {
				h.fill.note(ev.ID, ev.MetadataURI)
				n++
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read events: %w", err)
	}
	h.log.Debug("events awaiting their metadata document", "events", n)
	return nil
}

// metadataMatches reports whether the Event's fields are what md (nil: the defaults) gives.
func metadataMatches(ev *entity.Event, md *Metadata) bool {
	if md == nil {
		md = &Metadata{}
	}
	return ev.Description == md.Description && ev.Category == md.Category &&
		eqStrPtr(ev.Location, md.Location) && eqStrPtr(ev.ImageURL, md.ImageURL)
}

func eqStrPtr(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
