package cli

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/echain/echain-indexer/store/storetest"
)

// TestStatusOnEmptyDatabase: `status` on a database nobody migrated says so once and names the
// database.
func TestStatusOnEmptyDatabase(t *testing.T) {
	db := storetest.NewDB(t)
	cfg, err := pgx.ParseConfig(db)
	if err != nil {
		t.Fatal(err)
	}
	c := startChild(t, []string{"ECHAIN_DATABASE_URL=" + db, "ECHAIN_RPC_HTTP_URL=http://127.0.0.1:1", "ECHAIN_RPC_WS_URL=",
		"ECHAIN_METRICS_LISTEN="}, "status")
	if code := c.wait(60 * time.Second); code != exitFail {
		t.Errorf("exit %d, want %d", code, exitFail)
	}
	out := c.stderr.String()
	if n := strings.Count(out, "migrate"); n != 1 {
		t.Errorf("the advice to migrate appears %d times:\n%s", n, out)
	}
	if !strings.Contains(out, "database "+cfg.Database+" on ") {
		t.Errorf("the database %s is not named:\n%s", cfg.Database, out)
	}
}

// TestStatusLeaderWithNodeDown: an indexer that holds the lock but cannot reach its node is the
// leader, starting, not "standby, leader".
func TestStatusLeaderWithNodeDown(t *testing.T) {
	db := storetest.NewDB(t)
	met := freePort(t)
	env := []string{"ECHAIN_DATABASE_URL=" + db, "ECHAIN_RPC_HTTP_URL=http://127.0.0.1:1", "ECHAIN_RPC_WS_URL=",
		"ECHAIN_API_LISTEN=" + freePort(t), "ECHAIN_METRICS_LISTEN=" + met}
	run := startChild(t, env, "run")
	run.waitFor(60*time.Second, "the indexer to take the lead", func() bool {
		l, err := liveOf("http://" + met)
		return err == nil && l.Leader
	})
	st := startChild(t, env, "status")
	if code := st.wait(60 * time.Second); code != 0 {
		t.Fatalf("status: exit %d\n%s", code, st.stderr)
	}
	if out := st.stdout.String(); !strings.Contains(out, ", leader (") || strings.Contains(out, "standby, leader") {
		t.Errorf("status of a leader whose node is down:\n%s", out)
	}
	if code, _ := run.stop(syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Errorf("SIGTERM: exit %d", code)
	}
}
