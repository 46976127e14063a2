package indexer

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/echain/echain-indexer/indexer/source"
	"github.com/echain/echain-indexer/store"
)

// New builds a follower over a source, a migrated store and a handler.
func New(cfg Config, src *source.Source, st *store.Store, h Handler, log *slog.Logger, reg prometheus.Registerer) (*Follower, error) {
	if src == nil || st == nil {
		return nil, fmt.Errorf("indexer.New: source and store are required")
	}
	return newFollower(cfg, rpcSource{src}, pgStore{st}, h, log, reg)
}

// pgStore adapts *store.Store to storage.
type pgStore struct{ s *store.Store }

func (p pgStore) Head(ctx context.Context) (*store.BlockPtr, error)    { return p.s.Head(ctx) }
func (p pgStore) Window(ctx context.Context) ([]store.BlockPtr, error) { return p.s.Window(ctx) }
func (p pgStore) DataSources(ctx context.Context) ([]store.DataSource, error) {
	return p.s.DataSources(ctx)
}
func (p pgStore) NewBatch() writeBatch { return p.s.NewBatch() }
func (p pgStore) Commit(ctx context.Context, b writeBatch, c commitInfo) error {
	return p.s.Commit(ctx, b.(*store.Batch), store.Commit{Head: c.Head, Window: c.Window, Finalized: c.Finalized})
}
func (p pgStore) RevertTo(ctx context.Context, to store.BlockPtr) error { return p.s.RevertTo(ctx, to) }
func (p pgStore) EnsureIndexes(ctx context.Context) error               { return p.s.EnsureIndexes(ctx) }
func (p pgStore) LockConnConfig() *pgx.ConnConfig                       { return p.s.Pool().Config().ConnConfig.Copy() }

func (p pgStore) RequestResync(ctx context.Context, from int64) (int64, error) {
	return p.s.RequestResync(ctx, from, "echain-indexer resync")
}

func (p pgStore) NextResync(ctx context.Context) (*resyncRequest, error) {
	r, err := p.s.NextResync(ctx)
	return fromStoreResync(r), err
}

func (p pgStore) GetResync(ctx context.Context, id int64) (*resyncRequest, error) {
	r, err := p.s.GetResync(ctx, id)
	return fromStoreResync(r), err
}

func (p pgStore) FinishResync(ctx context.Context, id int64, errMsg string) error {
	return p.s.FinishResync(ctx, id, errMsg)
}

func fromStoreResync(r *store.ResyncRequest) *resyncRequest {
	if r == nil {
		return nil
	}
	return &resyncRequest{ID: r.ID, FromBlock: r.FromBlock, Status: r.Status, Error: r.Error}
}
