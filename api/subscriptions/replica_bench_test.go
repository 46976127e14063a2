package subscriptions_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/echain/echain-indexer/api/subscriptions"
	"github.com/echain/echain-indexer/schema"
	"github.com/echain/echain-indexer/store"
	"github.com/echain/echain-indexer/store/pglocal"
	"github.com/echain/echain-indexer/store/storetest"
)

// replication is a throwaway primary with n hot standbys, one database on it, migrated.
type replication struct {
	st       *store.Store // on the primary
	sch      *schema.Schema
	standbys []string // database URLs
}

func startReplication(b *testing.B, n int) *replication {
	b.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	primary, err := pglocal.StartThrowaway(ctx, log)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { primary.Stop() })
	conn, err := pgx.Connect(ctx, primary.URL)
	if err != nil {
		b.Fatal(err)
	}
	// pglocal's clusters commit asynchronously (fine for tests); a walsender ships only flushed
	// WAL, so that would add up to wal_writer_delay (200ms) to every replication: commit as a
	// production primary does.
	if _, err := conn.Exec(ctx, "CREATE DATABASE echain"); err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "ALTER DATABASE echain SET synchronous_commit = on"); err != nil {
		b.Fatal(err)
	}
	conn.Close(ctx)
	sch, err := schema.Load()
	if err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(ctx, storetest.WithDatabase(primary.URL, "echain"), sch, store.Options{Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(st.Close)
	if err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	r := &replication{st: st, sch: sch}
	for range n {
		sb, err := primary.StartStandby(ctx, log)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { sb.Stop() })
		r.standbys = append(r.standbys, storetest.WithDatabase(sb.URL, "echain"))
	}
	return r
}

// replayed waits until the standby's cursor is block n.
func replayed(b *testing.B, conn *pgx.Conn, n int64) time.Time {
	for deadline := time.Now().Add(time.Minute); ; {
		p, err := store.PollHead(context.Background(), conn)
		if err == nil && p.Number == n {
			return time.Now()
		}
		if time.Now().After(deadline) {
			b.Fatalf("the standby did not replay block %d within a minute: %+v %v", n, p, err)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// BenchmarkReplicaPush measures a commit on the primary to the push on a subscriber of a
// server reading a hot standby (push-p50-ms, push-p99-ms), next to the standby's replay of the
// same commit (apply-p50-ms, apply-p99-ms: the cursor read there in a 0.2 ms loop). What the
// replica adds is the difference: the poll interval (Options.ReplicaPoll, 10 ms by default) and
// one execution.
func BenchmarkReplicaPush(b *testing.B) {
	ctx := context.Background()
	rep := startReplication(b, 1)
	w := &chainWriter{t: b, st: rep.st, sch: rep.sch}
	w.commit(event("1", 0))
	probe, err := pgx.Connect(ctx, rep.standbys[0])
	if err != nil {
		b.Fatal(err)
	}
	defer probe.Close(ctx)
	replayed(b, probe, 1)
	r := startReplica(b, rep.standbys[0], rep.sch, subscriptions.Options{})
	c := dial(b, r.url, subscriptions.ProtoTransportWS)
	c.initTransport()
	c.subscribe("1", `subscription { event(id: "1") { ticketsSold } }`, nil)
	c.expectResult("next", "1", "", 1)
	var push, apply []float64
	b.ResetTimer()
	for i := range b.N {
		n := int64(i + 2)
		w.commit(event("1", n))
		committed := time.Now()
		applied := make(chan time.Time, 1)
		go func() { applied <- replayed(b, probe, n) }()
		c.expectResult("next", "1", fmt.Sprintf(`{"event":{"ticketsSold":"%d"}}`, n), n)
		push = append(push, ms(time.Since(committed)))
		apply = append(apply, ms((<-applied).Sub(committed)))
	}
	b.StopTimer()
	b.ReportMetric(pct(push, 50), "push-p50-ms")
	b.ReportMetric(pct(push, 99), "push-p99-ms")
	b.ReportMetric(pct(apply, 50), "apply-p50-ms")
	b.ReportMetric(pct(apply, 99), "apply-p99-ms")
}

// BenchmarkReplicaQueries measures queries/s against one server on one hot standby and against
// two, each on its own standby, with requests spread round-robin (the load balancer). On one
// machine both share its CPUs, so the ratio says what replicas add only where they have their
// own hosts.
func BenchmarkReplicaQueries(b *testing.B) {
	rep := startReplication(b, 2)
	w := &chainWriter{t: b, st: rep.st, sch: rep.sch}
	for i := range 50 {
		ents := map[string]map[string]map[string]any{"Event": {}}
		for j := range 20 {
			id := fmt.Sprintf("%d", i*20+j)
			ents["Event"][id] = event(id, int64(j))["Event"][id]
		}
		w.commit(ents)
	}
	var urls []string
	for _, db := range rep.standbys {
		conn, err := pgx.Connect(context.Background(), db)
		if err != nil {
			b.Fatal(err)
		}
		replayed(b, conn, 50)
		conn.Close(context.Background())
		r := startReplica(b, db, rep.sch, subscriptions.Options{})
		urls = append(urls, "http://"+r.http.Addr()+"/graphql")
	}
	body := []byte(`{"query":"{ _meta { block { number } } events(first: 20, orderBy: ticketsSold, orderDirection: desc, where: {ticketsSold_gt: 5}) { id title ticketsSold } }"}`)
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprintf("replicas=%d", n), func(b *testing.B) {
			var next atomic.Uint64
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			b.SetParallelism(8)
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					u := urls[int(next.Add(1))%n]
					resp, err := client.Post(u, "application/json", bytes.NewReader(body))
					if err != nil {
						b.Error(err)
						return
					}
					var buf bytes.Buffer
					_, _ = buf.ReadFrom(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK || bytes.Contains(buf.Bytes(), []byte(`"errors"`)) {
						b.Errorf("status %d: %.300s", resp.StatusCode, buf.Bytes())
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "queries/s")
			client.CloseIdleConnections()
		})
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func pct(xs []float64, p int) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}
