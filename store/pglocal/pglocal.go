// Package pglocal finds a PostgreSQL server to use, or starts a throwaway one. It backs both the
// test helper (store/storetest) and the demo when no database is configured.
//
// The order is: an explicit URL ($DATABASE_URL), then a server answering on 127.0.0.1:5432, then
// a fresh cluster made with the installed initdb/pg_ctl in a temporary directory.
package pglocal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Server is a PostgreSQL server: URL is a connection string for its maintenance database.
// Stop shuts a throwaway cluster down and removes its files; for a server we did not start it
// does nothing.
type Server struct {
	URL       string
	Throwaway bool
	dir       string
	pgCtl     string
	runAs     []string
	port      int
}

// DefaultLocalURL is the server tried when DATABASE_URL is not set.
const DefaultLocalURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// InstallHint says what to install when no PostgreSQL binaries are found.
const InstallHint = "install PostgreSQL (Debian/Ubuntu: apt-get install -y postgresql) or set DATABASE_URL"

// Find returns the server named by explicitURL (when not empty), else a server answering on
// 127.0.0.1:5432, else a throwaway cluster it starts. The caller must Stop it.
func Find(ctx context.Context, explicitURL string, log *slog.Logger) (*Server, error) {
	if explicitURL != "" {
		return &Server{URL: explicitURL}, nil
	}
	if ping(ctx, DefaultLocalURL) == nil {
		log.Debug("using the PostgreSQL server on 127.0.0.1:5432")
		return &Server{URL: DefaultLocalURL}, nil
	}
	return StartThrowaway(ctx, log)
}

func ping(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.Ping(ctx)
}

// StartThrowaway creates a cluster in a temporary directory with initdb and starts it with
// pg_ctl on a free port of 127.0.0.1, with durability off (it is thrown away anyway).
func StartThrowaway(ctx context.Context, log *slog.Logger) (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "echain-pg-")
	if err != nil {
		return nil, fmt.Errorf("throwaway postgres: %w", err)
	}
	s, err := newThrowaway(bin, dir)
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if out, err := s.run(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust",
		"-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w: %s", err, out)
	}
	if err := s.start(ctx); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	log.Info("started a throwaway PostgreSQL", "dir", dir, "port", s.port)
	return s, nil
}

// newThrowaway prepares a Server for a cluster in dir on a free port. initdb and the server
// refuse to run as root: then they run as the postgres user the package created, who must own dir.
func newThrowaway(bin, dir string) (*Server, error) {
	s := &Server{Throwaway: true, dir: dir, pgCtl: filepath.Join(bin, "pg_ctl")}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("throwaway postgres: running as root needs a 'postgres' user to own the cluster (%s): %w", InstallHint, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("throwaway postgres: %w", err)
		}
		s.runAs = []string{"runuser", "-u", "postgres", "--"}
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.port = port
	s.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	return s, nil
}

// start runs the cluster in s.dir/data with pg_ctl and waits until it accepts connections (a
// hot standby accepts them once it reached a consistent state).
func (s *Server) start(ctx context.Context) error {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200", s.port, s.dir)
	if out, err := s.run(ctx, s.pgCtl, "-D", filepath.Join(s.dir, "data"), "-l", filepath.Join(s.dir, "log"), "-o", opts, "-w", "-t", "60", "start"); err != nil {
		logTail, _ := os.ReadFile(filepath.Join(s.dir, "log"))
		return fmt.Errorf("pg_ctl start: %w: %s %s", err, out, logTail)
	}
	return nil
}

// StartStandby makes a hot standby of this throwaway cluster the way an operator would:
// pg_basebackup -R (a copy of the data directory plus primary_conninfo and standby.signal),
// then pg_ctl start. It streams from the primary over the replication protocol; the caller
// must Stop it.
func (s *Server) StartStandby(ctx context.Context, log *slog.Logger) (*Server, error) {
	if !s.Throwaway {
		return nil, errors.New("pglocal: a standby is made of a throwaway cluster only")
	}
	bin := filepath.Dir(s.pgCtl)
	dir, err := os.MkdirTemp("", "echain-pg-standby-")
	if err != nil {
		return nil, fmt.Errorf("standby: %w", err)
	}
	r, err := newThrowaway(bin, dir)
	if err != nil {
		return nil, err
	}
	// -X stream: the WAL written during the copy travels with it; -c fast: no wait for a
	// checkpoint the idle primary would take minutes to reach.
	if out, err := r.run(ctx, filepath.Join(bin, "pg_basebackup"), "-D", filepath.Join(dir, "data"), "-R", "-X", "stream",
		"-c", "fast", "-d", fmt.Sprintf("host=127.0.0.1 port=%d user=postgres", s.port)); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pg_basebackup: %w: %s", err, out)
	}
	if err := r.start(ctx); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	log.Info("started a throwaway hot standby", "dir", dir, "port", r.port, "primary_port", s.port)
	return r, nil
}

// Promote ends a standby's recovery (pg_ctl promote): it becomes a primary on a timeline of
// its own, as in a failover.
func (s *Server) Promote(ctx context.Context) error {
	if !s.Throwaway {
		return errors.New("pglocal: only a throwaway cluster is promoted")
	}
	if out, err := s.run(ctx, s.pgCtl, "-D", filepath.Join(s.dir, "data"), "-w", "-t", "60", "promote"); err != nil {
		return fmt.Errorf("pg_ctl promote: %w: %s", err, out)
	}
	return nil
}

// Kill stops a throwaway cluster at once (pg_ctl stop -m immediate), as a lost machine would,
// and keeps its files until Stop.
func (s *Server) Kill(ctx context.Context) error {
	if !s.Throwaway {
		return errors.New("pglocal: only a throwaway cluster is killed")
	}
	if out, err := s.run(ctx, s.pgCtl, "-D", filepath.Join(s.dir, "data"), "-m", "immediate", "-w", "stop"); err != nil {
		return fmt.Errorf("pg_ctl stop: %w: %s", err, out)
	}
	return nil
}

// Stop shuts a throwaway cluster down and deletes it.
func (s *Server) Stop() error {
	if !s.Throwaway {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := s.run(ctx, s.pgCtl, "-D", filepath.Join(s.dir, "data"), "-m", "immediate", "-w", "stop")
	rmErr := os.RemoveAll(s.dir)
	if err != nil && !strings.Contains(out, "Is server running?") { // Kill stopped it already
		return fmt.Errorf("pg_ctl stop: %w: %s", err, out)
	}
	return rmErr
}

func (s *Server) run(ctx context.Context, name string, args ...string) (string, error) {
	argv := append(append([]string{}, s.runAs...), name)
	argv = append(argv, args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = os.TempDir()
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// binDir finds the directory holding initdb and pg_ctl: $PATH first, then Debian's layout
// (/usr/lib/postgresql/<version>/bin, newest version first).
func binDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("pg_ctl"); err == nil {
			if real, err := filepath.EvalSymlinks(p); err == nil {
				return filepath.Dir(real), nil
			}
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("no PostgreSQL server answers on 127.0.0.1:5432 and initdb/pg_ctl are not installed: " + InstallHint)
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
