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
