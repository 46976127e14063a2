package cli

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/echain/echain-indexer/api"
	"github.com/echain/echain-indexer/config"
	"github.com/echain/echain-indexer/store"
)

// measureReplication reads how far the hot standby behind st trails its primary: in seconds
// from the standby itself, in blocks when the primary is known (nil primary: not configured).
// The primary may be gone (a failover under way): the lag in seconds still stands then. nil
// when the database is no (longer a) standby.
func measureReplication(ctx context.Context, st *store.Store, primary store.Querier, indexed int64) (*api.Replication, error) {
	rs, err := st.ReplicationState(ctx)
	if err != nil {
		return nil, err
	}
	if !rs.InRecovery {
		return nil, nil
	}
	rep := &api.Replication{LagSeconds: rs.LagSeconds, ReplayPaused: rs.ReplayPaused}
	if primary != nil {
		if p, err := store.PollHead(ctx, primary); err == nil {
			lag := max(p.Number-indexed, 0)
			rep.PrimaryHead, rep.LagBlocks = &p.Number, &lag
		}
	}
	return rep, nil
}

// replication reports how far this hot standby trails its primary, and why that is too far
// for /readyz (api.ready_max_replication_lag in seconds; api.ready_max_lag_blocks in blocks when
// the primary is known), or "" when it is not.
func (a *app) replication(ctx context.Context, indexed int64) (*api.Replication, string) {
	limit := a.cfg.API.ReadyMaxReplicationLag
	var primary store.Querier
	if a.primary != nil {
		primary = a.primary
	}
	rep, err := measureReplication(ctx, a.store, primary, indexed)
	if err != nil {
		return nil, "database: " + err.Error()
	}
	if rep == nil { // promoted since start-up
		return nil, ""
	}
	rep.MaxLagSeconds = limit.Seconds()
	switch {
	case rep.LagSeconds > limit.Seconds():
		return rep, fmt.Sprintf("replication: replay trails the primary by %.1fs (allowed %s)", rep.LagSeconds, limit)
	case rep.LagBlocks != nil && *rep.LagBlocks > int64(a.cfg.API.ReadyMaxLagBlocks):
		return rep, fmt.Sprintf("replication: replayed block %d is %d blocks behind the primary's %d (allowed %d)",
			indexed, *rep.LagBlocks, *rep.PrimaryHead, a.cfg.API.ReadyMaxLagBlocks)
	}
	return rep, ""
}

// statusReplication is measureReplication for `status`, which connects to the primary
// (database.primary_url) only for this.
func statusReplication(ctx context.Context, st *store.Store, cfg *config.Config, indexed *blockRef) (*api.Replication, error) {
	var n int64
	if indexed != nil {
		n = indexed.Number
	}
	var primary store.Querier
	if cfg.Database.PrimaryURL != "" {
		conn, err := pgx.Connect(ctx, cfg.Database.PrimaryURL)
		if err == nil {
			defer conn.Close(context.WithoutCancel(ctx))
			primary = conn
		}
	}
	return measureReplication(ctx, st, primary, n)
}
