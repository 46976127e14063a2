package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/echain/echain-indexer/store"
)

// TestEstimatedRowsAfterStatisticsReset: a crash restart of PostgreSQL resets the statistics
// counters (pg_stat_reset does the same), so the live-row count restarts from the rows written
// since; the estimate must not fall to that count while the table still holds the rest
// (status showed 25-27x too few versions, and the id filter was sized 25x too small).
func TestEstimatedRowsAfterStatisticsReset(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t, echainSchema(t), store.Options{})
	// One connection: pg_stat_force_next_flush reports the statistics of its own backend.
	conn, err := st.Pool().Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	exec := func(sql string) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`CREATE TABLE public.estimate_probe (x int)`)
	exec(`INSERT INTO public.estimate_probe SELECT generate_series(1, 5000)`)
	exec(`ANALYZE public.estimate_probe`)     // reltuples = 5000, as after a vacuum before the crash
	exec(`SELECT pg_stat_force_next_flush()`) // the inserts' counts reach the statistics before the reset
	exec(`SELECT pg_stat_reset()`)
	exec(`INSERT INTO public.estimate_probe SELECT generate_series(1, 200)`)
	exec(`SELECT pg_stat_force_next_flush()`)
	// The live-row counter reaches the statistics once the inserting backend reports.
	deadline := time.Now().Add(60 * time.Second)
	for {
		var live int64
		if err := conn.QueryRow(ctx, `SELECT coalesce(n_live_tup, 0) FROM pg_stat_user_tables WHERE relname = 'estimate_probe'`).Scan(&live); err != nil {
			t.Fatal(err)
		}
		if live > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the statistics never counted the rows inserted after the reset")
		}
		exec(`SELECT pg_stat_force_next_flush()`)
		time.Sleep(100 * time.Millisecond)
	}
	n, err := st.EstimatedRows(ctx, "public.estimate_probe")
	if err != nil {
		t.Fatal(err)
	}
	if n < 5000 || n > 5200 {
		t.Errorf("estimate %d rows; the table has 5200 (5000 of them counted by the last ANALYZE)", n)
	}
}
