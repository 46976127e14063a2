package pglocal

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The throwaway path must work even where a server already runs: it is what `make test` and
// `make demo` use on a machine without PostgreSQL running.
func TestThrowawayClusterStartsAndStops(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := StartThrowaway(ctx, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, srv.URL)
	if err != nil {
		srv.Stop()
		t.Fatal(err)
	}
	var one int
	err = conn.QueryRow(ctx, "select 1").Scan(&one)
	conn.Close(ctx)
	if err != nil || one != 1 {
		srv.Stop()
		t.Fatalf("select 1: %v %d", err, one)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := pgx.Connect(ctx, srv.URL); err == nil {
		t.Fatal("server still answers after Stop")
	}
}

// A standby made with pg_basebackup -R replays the primary's commits, answers read-only
// queries while in recovery, and takes writes once promoted.
func TestStandbyReplaysAndPromotes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	primary, err := StartThrowaway(ctx, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer primary.Stop()
	standby, err := primary.StartStandby(ctx, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer standby.Stop()
	p, err := pgx.Connect(ctx, primary.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	if _, err := p.Exec(ctx, "CREATE TABLE t (n int); INSERT INTO t VALUES (7)"); err != nil {
		t.Fatal(err)
	}
	r, err := pgx.Connect(ctx, standby.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	var inRecovery bool
	if err := r.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil || !inRecovery {
		t.Fatalf("standby in recovery: %v %v", inRecovery, err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var n int
		err := r.QueryRow(ctx, "SELECT n FROM t").Scan(&n)
		if err == nil && n == 7 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the standby did not replay the primary's row within a minute: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := r.Exec(ctx, "INSERT INTO t VALUES (8)"); err == nil {
		t.Fatal("a standby in recovery took a write")
	}
	if err := primary.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if err := standby.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Exec(ctx, "INSERT INTO t VALUES (8)"); err != nil {
		t.Fatalf("write after promotion: %v", err)
	}
}
