package indexer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/echain/echain-indexer/config"
)

// The kill test runs the indexer in a child process (this test binary re-executed with childEnv
// set to a JSON setup) so that SIGKILL hits a real process at a random instant.
const childEnv = "ECHAIN_FOLLOWER_CHILD"

func runChild() int {
	var s setup
	if err := json.Unmarshal([]byte(os.Getenv(childEnv)), &s); err != nil {
		fmt.Fprintf(os.Stderr, "child: bad setup: %v\n", err)
		return 2
	}
	level := slog.LevelWarn
	switch os.Getenv("ECHAIN_TEST_LOG") {
	case "":
	case "debug":
		level = slog.LevelDebug
	default:
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	// The garbage collector as the binary sets it by default (benchmarks measure that process).
	defaults, _, err := config.Load(config.Options{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "child: built-in configuration: %v\n", err)
		return 2
	}
	defaults.Runtime.Apply(os.Getenv)
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer cancel()
	if f := os.Getenv("ECHAIN_CHILD_CPUPROFILE"); f != "" {
		out, err := os.Create(f)
		if err == nil && pprof.StartCPUProfile(out) == nil {
			defer func() { pprof.StopCPUProfile(); out.Close() }()
		}
	}
	if v := os.Getenv("ECHAIN_CHILD_HEAPPROFILE"); v != "" {
		// file:seconds -- a heap profile that many seconds after the start
		name, after, _ := strings.Cut(v, ":")
		secs, _ := strconv.ParseFloat(after, 64)
		time.AfterFunc(time.Duration(secs*float64(time.Second)), func() {
			if out, err := os.Create(name); err == nil {
				_ = pprof.Lookup("heap").WriteTo(out, 0)
				out.Close()
			}
		})
	}
	in, err := build(ctx, s, log)
	if err != nil {
		fmt.Fprintf(os.Stderr, "child: %v\n", err)
		return 1
	}
	defer in.st.Close()
	defer in.src.Close()
	if err := in.fl.Run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "child: run: %v\n", err)
		return 1
	}
	return 0
}

// startChild starts an indexer process for s.
func startChild(t testing.TB, s setup) *exec.Cmd {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(b))
	for _, k := range []string{"GODEBUG", "GOGC", "GOMEMLIMIT"} {
		if v := os.Getenv("ECHAIN_CHILD_" + k); v != "" {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child indexer: %v", err)
	}
	// Never leave an indexer behind when a test stops early.
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd
}
