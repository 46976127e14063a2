// Package storetest gives tests a real, fresh PostgreSQL database. A test package calls Run from
// its TestMain; each test then calls NewDB for a database of its own, dropped when the test ends.
// When no server can be had, tests fail loudly: they never skip.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/echain/echain-indexer/store/pglocal"
)

// serverEnv carries the server found by Run to NewDB within the test process (and to child
// processes a test starts, such as a killed-and-restarted indexer).
const serverEnv = "ECHAIN_TEST_PG_SERVER"

// Run finds or starts a PostgreSQL server for the package's tests, runs them and stops a
// throwaway server afterwards. Use it as: func TestMain(m *testing.M) { os.Exit(storetest.Run(m)) }
func Run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	srv, err := pglocal.Find(ctx, os.Getenv("DATABASE_URL"), slog.Default())
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "storetest: no PostgreSQL for the tests: %v\n", err)
		return 1
	}
	os.Setenv(serverEnv, srv.URL)
	code := m.Run()
	if err := srv.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "storetest: stopping PostgreSQL: %v\n", err)
	}
	return code
}

// ServerURL is the maintenance URL of the server Run found.
func ServerURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(serverEnv)
	if u == "" {
		t.Fatal("storetest: no server: call storetest.Run from TestMain")
	}
	return u
}

// NewDB creates an empty database for the test and returns its URL; the database is dropped
// when the test ends.
func NewDB(t testing.TB) string {
	t.Helper()
	server := ServerURL(t)
	name := "echain_test_" + randHex(6)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		t.Fatalf("storetest: connect %s: %v", redact(server), err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE template0"); err != nil {
		t.Fatalf("storetest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, server)
		if err != nil {
			t.Logf("storetest: drop %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("storetest: drop %s: %v", name, err)
		}
	})
	return WithDatabase(server, name)
}

// WithDatabase returns the URL with its database replaced.
func WithDatabase(serverURL, db string) string {
	u, err := url.Parse(serverURL)
	if err != nil || u.Scheme == "" {
		// key=value form
		return strings.TrimSpace(serverURL) + " dbname=" + db
	}
	u.Path = "/" + db
	return u.String()
}

func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "<url>"
	}
	return u.Redacted()
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
