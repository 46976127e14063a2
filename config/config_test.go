package config

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/spf13/pflag"

	"github.com/echain/echain-indexer/devchain"
	srcpkg "github.com/echain/echain-indexer/indexer/source"
	"github.com/echain/echain-indexer/indexer/source/rpcproxy"
)

// isolate runs the test in an empty directory (no ./config.yaml) with no ECHAIN_ variables.
func isolate(t *testing.T) {
	t.Helper()
	t.Chdir(t.TempDir())
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "ECHAIN_") || name == "DATABASE_URL" {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
}

func load(t *testing.T, o Options) *Config {
	t.Helper()
	c, _, err := Load(o)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

func loadErr(t *testing.T, o Options) string {
	t.Helper()
	_, _, err := Load(o)
	if err == nil {
		t.Fatal("Load succeeded; want an error")
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("error spans several lines: %q", msg)
	}
	if !strings.HasPrefix(msg, "config: ") {
		t.Errorf("error does not start with config: %q", msg)
	}
	return msg
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "my.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEmbeddedCopyIsCurrent(t *testing.T) {
	repo, err := os.ReadFile("../config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, body, ok := bytes.Cut(builtin, []byte("\n"))
	if !ok || !bytes.Equal(body, repo) {
		t.Fatal("config/default.gen.yaml differs from config.yaml: run `make generate`")
	}
}

func TestBuiltinDefaults(t *testing.T) {
	isolate(t)
	c := load(t, Options{})
	if c.File != "" || c.Profile != "" {
		t.Errorf("file %q profile %q, want none", c.File, c.Profile)
	}
	if c.ChainID != 1337 {
		t.Errorf("chain id %d", c.ChainID)
	}
	if got := strings.Join(c.RPC.WSURLs, ","); got != "ws://127.0.0.1:8546" {
		t.Errorf("ws urls %q", got)
	}
	if got := strings.Join(c.RPC.HTTPURLs, ","); got != "http://127.0.0.1:8545" {
		t.Errorf("http urls %q", got)
	}
	if c.Finality.Tag != "none" || c.Finality.Depth != 64 {
		t.Errorf("finality %+v", c.Finality)
	}
	if c.API.Listen != "127.0.0.1:8000" || c.Metrics.Listen != "127.0.0.1:9100" {
		t.Errorf("listen %q / %q", c.API.Listen, c.Metrics.Listen)
	}
	if c.ShutdownTimeout != 30*time.Second || c.RPC.Timeout != 15*time.Second || c.RPC.MaxAttempts != 6 {
		t.Errorf("timeouts %v %v", c.ShutdownTimeout, c.RPC.Timeout)
	}
	if u, err := c.RequireURL(); c.Database.URL != "" || err == nil || !strings.Contains(err.Error(), "ECHAIN_DATABASE_URL=postgres://") {
		t.Errorf("database url %q, %q %v: want no default, and an error saying how to name one", c.Database.URL, u, err)
	}
	if c.Metadata.Gateway != "http://127.0.0.1:8547/ipfs/" {
		t.Errorf("gateway %q", c.Metadata.Gateway)
	}
	for _, ct := range c.Contracts.All() {
		if ct.Name == "" || ct.Address == (common.Address{}) || ct.StartBlock.Auto {
			t.Errorf("contract %+v", ct)
		}
	}
}

func TestBaseSepoliaProfile(t *testing.T) {
	isolate(t)
	for _, o := range []Options{{Profile: "base-sepolia"}, {Profile: "BASE-SEPOLIA"}} {
		c := load(t, o)
		if c.ChainID != 84532 || c.Profile != "base-sepolia" {
			t.Fatalf("chain %d profile %q", c.ChainID, c.Profile)
		}
		want := map[string]string{ // the published Base Sepolia deployment (echain SOURCE.txt)
			"EventFactory":     "0xA97cB40548905B05A67fCD4765438aFBEA4030fc",
			"POAPAttendance":   "0x08344CfBfB3afB2e114A0dbABbaF40e7eB62FD33",
			"IncentiveManager": "0x1cfDae689817B954b72512bC82f23F35B997617D",
			"Marketplace":      "0xD061393A54784da5Fea48CC845163aBc2B11537A",
		}
		for _, ct := range c.Contracts.All() {
			if ct.Address.Hex() != want[ct.Name] {
				t.Errorf("%s at %s, want %s", ct.Name, ct.Address.Hex(), want[ct.Name])
			}
			if !ct.StartBlock.Auto {
				t.Errorf("%s start block %v, want auto", ct.Name, ct.StartBlock)
			}
		}
		if len(c.RPC.WSURLs) != 0 || c.Finality.Tag != "finalized" || c.Metadata.Gateway != "https://ipfs.io/ipfs/" {
			t.Errorf("ws %v finality %+v", c.RPC.WSURLs, c.Finality)
		}
		// Keys the profile leaves alone keep the top level's value.
		if c.API.MaxFirst != 1000 || c.Backfill.RangeBlocks != 1000 || c.Finality.Depth != 64 {
			t.Errorf("max_first %d range %d", c.API.MaxFirst, c.Backfill.RangeBlocks)
		}
	}
	t.Setenv("ECHAIN_PROFILE", "base-sepolia")
	if c := load(t, Options{}); c.ChainID != 84532 {
		t.Errorf("ECHAIN_PROFILE ignored: chain %d", c.ChainID)
	}
	msg := loadErr(t, Options{Profile: "mainnet"})
	if !strings.Contains(msg, "profile") || !strings.Contains(msg, "base-sepolia") {
		t.Errorf("unknown profile error %q", msg)
	}
}

func TestPrecedence(t *testing.T) {
	isolate(t)
	file := writeFile(t, "chain_id: 5\napi:\n  max_first: 50\nprofiles:\n  base-sepolia:\n    api:\n      max_skip: 7\n")
	c := load(t, Options{File: file, Profile: "base-sepolia"})
	// The operator's file beats the profile, which beats the built-in top level.
	if c.ChainID != 5 || c.API.MaxFirst != 50 || c.API.MaxSkip != 7 {
		t.Errorf("chain %d first %d skip %d", c.ChainID, c.API.MaxFirst, c.API.MaxSkip)
	}
	if c.Contracts.EventFactory.Address.Hex() != "0xA97cB40548905B05A67fCD4765438aFBEA4030fc" {
		t.Errorf("profile address lost: %s", c.Contracts.EventFactory.Address.Hex())
	}
	// Environment beats the file; flags beat the environment.
	t.Setenv("ECHAIN_CHAIN_ID", "6")
	t.Setenv("ECHAIN_API_MAX_FIRST", "60")
	c = load(t, Options{File: file, Set: map[string]string{"api.max_first": "70"}})
	if c.ChainID != 6 || c.API.MaxFirst != 70 {
		t.Errorf("chain %d first %d", c.ChainID, c.API.MaxFirst)
	}
	// ECHAIN_CONFIG names the file; ./config.yaml is read when present.
	os.Unsetenv("ECHAIN_CHAIN_ID")
	t.Setenv("ECHAIN_CONFIG", file)
	if c := load(t, Options{}); c.File != file || c.ChainID != 5 {
		t.Errorf("ECHAIN_CONFIG: file %q chain %d", c.File, c.ChainID)
	}
	os.Unsetenv("ECHAIN_CONFIG")
	if err := os.WriteFile(DefaultFile, []byte("chain_id: 9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if c := load(t, Options{}); c.File != "./"+DefaultFile || c.ChainID != 9 {
		t.Errorf("./config.yaml: file %q chain %d", c.File, c.ChainID)
	}
}

// TestShippedDefaultsAreNotTheOperatorsFile: run from the checkout, ./config.yaml is the
// repository's own file; copied as a template, its unchanged values are still the repository's.
// Neither overrides the profile the operator chose, and every value names where it came from.
func TestShippedDefaultsAreNotTheOperatorsFile(t *testing.T) {
	shipped, err := os.ReadFile("../config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	isolate(t)
	if err := os.WriteFile(DefaultFile, shipped, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ECHAIN_PROFILE", "base-sepolia")
	c, warnings, err := Load(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.ChainID != 84532 || !c.Contracts.EventFactory.StartBlock.Auto ||
		c.Contracts.EventFactory.Address.Hex() != "0xA97cB40548905B05A67fCD4765438aFBEA4030fc" {
		t.Errorf("the checkout's ./config.yaml overrode the profile: chain %d, EventFactory %s from %s",
			c.ChainID, c.Contracts.EventFactory.Address.Hex(), c.Contracts.EventFactory.StartBlock)
	}
	for key, want := range map[string]string{"chain_id": "profile base-sepolia", "api.max_first": "./config.yaml"} {
		if got := c.Source(key); got != want {
			t.Errorf("%s from %q, want %q", key, got, want)
		}
	}
	if len(warnings) != 0 {
		t.Errorf("the repository's own file warns: %q", warnings)
	}

	// A template: the operator changed api.listen and left the rest as shipped.
	tmpl := strings.Replace(string(shipped), "listen: 127.0.0.1:8000", "listen: 0.0.0.0:8001", 1)
	if tmpl == string(shipped) {
		t.Fatal("config.yaml has no api listen line to change")
	}
	file := writeFile(t, tmpl)
	c, warnings, err = Load(Options{File: file})
	if err != nil {
		t.Fatal(err)
	}
	if c.ChainID != 84532 || c.API.Listen != "0.0.0.0:8001" || c.Source("api.listen") != file {
		t.Errorf("template: chain %d, api.listen %s from %s", c.ChainID, c.API.Listen, c.Source("api.listen"))
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "chain_id") || !strings.Contains(warnings[0], "profile base-sepolia") {
		t.Errorf("template warnings %q; want one naming chain_id and the profile", warnings)
	}
	// A value the operator changed in the template wins over the profile, and says so in errors.
	bad := strings.Replace(tmpl, "chain_id: 1337", "chain_id: 0", 1)
	badFile := writeFile(t, bad)
	if msg := loadErr(t, Options{File: badFile}); !strings.HasPrefix(msg, "config: chain_id: 0 ") || !strings.HasSuffix(msg, "(from "+badFile+")") {
		t.Errorf("template's bad chain_id: %q", msg)
	}
}

// TestErrorsNameTheirSource: rules between keys, and the checks made after Load, name where the
// value came from as well.
func TestErrorsNameTheirSource(t *testing.T) {
	isolate(t)
	t.Setenv("ECHAIN_BACKFILL_RANGE_BLOCKS", "20000")
	msg := loadErr(t, Options{})
	if want := "config: backfill.range_blocks: 20000 is above backfill.max_range_blocks 10000 (from $ECHAIN_BACKFILL_RANGE_BLOCKS)"; msg != want {
		t.Errorf("got %q\nwant %q", msg, want)
	}
	os.Unsetenv("ECHAIN_BACKFILL_RANGE_BLOCKS")
	c := load(t, Options{Profile: "base-sepolia"})
	if got := c.KeyError("chain_id", errors.New("84532, but x serves chain 1")).Error(); got != "config: chain_id: 84532, but x serves chain 1 (from profile base-sepolia)" {
		t.Errorf("KeyError: %q", got)
	}
	// A config file that cannot be read or parsed is a configuration error naming the file.
	var ce *Error
	if _, _, err := Load(Options{File: "/nonexistent/echain.yaml"}); !errors.As(err, &ce) || err.Error() != "config: /nonexistent/echain.yaml: no such file or directory (from --config)" {
		t.Errorf("missing file: %v", err)
	}
	if _, _, err := Load(Options{File: writeFile(t, "api: [\n")}); !errors.As(err, &ce) || !strings.Contains(err.Error(), "does not parse") {
		t.Errorf("malformed file: %v", err)
	}
}

func TestEnvLists(t *testing.T) {
	isolate(t)
	t.Setenv("ECHAIN_RPC_WS_URL", "wss://base-sepolia.core.chainstack.com/ws/KEY1, wss://b.example/ws")
	t.Setenv("ECHAIN_RPC_HTTP_URL", "https://base-sepolia.core.chainstack.com/KEY1,https://a.example/KEY2")
	t.Setenv("ECHAIN_API_CORS_ORIGINS", "https://app.echain.xyz,http://localhost:3000")
	c := load(t, Options{})
	if len(c.RPC.WSURLs) != 2 || c.RPC.WSURLs[1] != "wss://b.example/ws" {
		t.Errorf("ws urls %q", c.RPC.WSURLs)
	}
	if len(c.RPC.HTTPURLs) != 2 || len(c.API.CORSOrigins) != 2 {
		t.Errorf("http %q cors %q", c.RPC.HTTPURLs, c.API.CORSOrigins)
	}
}

func TestSecretsOnlyFromEnv(t *testing.T) {
	isolate(t)
	t.Setenv("DATABASE_URL", "postgres://u:pw@db:5432/a")
	if c := load(t, Options{}); c.Database.URL != "postgres://u:pw@db:5432/a" {
		t.Errorf("DATABASE_URL: %q", c.Database.URL)
	}
	t.Setenv("ECHAIN_DATABASE_URL", "postgres://u:pw@db:5432/b")
	if c := load(t, Options{}); c.Database.URL != "postgres://u:pw@db:5432/b" {
		t.Errorf("ECHAIN_DATABASE_URL should win: %q", c.Database.URL)
	}
	t.Setenv("ECHAIN_WEBHOOK_SECRETS", "0123456789abcdef0123,fedcba9876543210fedc")
	if c := load(t, Options{}); len(c.Webhook.Secrets) != 2 {
		t.Errorf("secrets %d", len(c.Webhook.Secrets))
	}

	msg := loadErr(t, Options{File: writeFile(t, "database:\n  url: postgres://u:secret@h/db\n")})
	if !strings.Contains(msg, "database.url") || !strings.Contains(msg, "ECHAIN_DATABASE_URL") || strings.Contains(msg, "secret@") {
		t.Errorf("secret in file: %q", msg)
	}
	msg = loadErr(t, Options{File: writeFile(t, "profiles:\n  x:\n    webhook:\n      secrets: [abcdefabcdefabcdefab]\n")})
	if !strings.Contains(msg, "profiles.x.webhook.secrets") || strings.Contains(msg, "abcdef") {
		t.Errorf("secret in profile: %q", msg)
	}
	msg = loadErr(t, Options{Set: map[string]string{"database.url": "postgres://h/db"}})
	if !strings.Contains(msg, "database.url") || !strings.Contains(msg, "environment") {
		t.Errorf("secret by flag: %q", msg)
	}
	t.Setenv("ECHAIN_DATABASE_URL", "postgres://u:hunter2@h:notaport/db")
	msg = loadErr(t, Options{})
	if !strings.Contains(msg, "database.url") || strings.Contains(msg, "hunter2") {
		t.Errorf("bad database url leaks or lacks the key: %q", msg)
	}
}

func TestUnknownKeys(t *testing.T) {
	isolate(t)
	cases := map[string]string{
		"rpc:\n  wsurl: [ws://x:1]\n":                 "rpc.wsurl: unknown key (did you mean rpc.ws_url?)",
		"chainid: 5\n":                                "chainid: unknown key (did you mean chain_id?)",
		"rpc: ws://x:1\n":                             "rpc: expected a mapping",
		"profiles:\n  p:\n    api:\n      lisen: x\n": "profiles.p.api.lisen: unknown key (did you mean api.listen?)",
		"totally_unrelated_setting: 1\n":              "totally_unrelated_setting: unknown key",
	}
	for body, want := range cases {
		msg := loadErr(t, Options{File: writeFile(t, body)})
		if !strings.Contains(msg, want) || !strings.Contains(msg, "my.yaml") {
			t.Errorf("%q: got %q, want it to contain %q and the file", body, msg, want)
		}
	}
	msg := loadErr(t, Options{Set: map[string]string{"api.lissten": "x"}})
	if !strings.Contains(msg, "api.lissten") || !strings.Contains(msg, "did you mean api.listen") {
		t.Errorf("--set unknown key: %q", msg)
	}
	t.Setenv("ECHAIN_RPC_WSURL", "ws://x:1")
	_, warnings, err := Load(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "ECHAIN_RPC_WSURL") {
		t.Errorf("warnings %q", warnings)
	}
}

// TestEveryKeyRejectsABadValue gives each key a bad value through the environment and checks the
// one-line error names the key and the variable. A key added without a case here fails.
func TestEveryKeyRejectsABadValue(t *testing.T) {
	bad := map[string]string{
		"chain_id":                                "mainnet",
		"rpc.ws_url":                              "http://127.0.0.1:8546",
		"rpc.http_url":                            "ws://127.0.0.1:8545",
		"rpc.timeout":                             "30",
		"rpc.max_attempts":                        "0",
		"rpc.requests_per_second":                 "-1",
		"rpc.calls_per_second":                    "lots",
		"contracts.event_factory.address":         "0x1234",
		"contracts.event_factory.start_block":     "soon",
		"contracts.marketplace.address":           "0xd061393a54784da5fea48cc845163abc2b11537A",
		"contracts.marketplace.start_block":       "-5",
		"contracts.poap_attendance.address":       "0x0000000000000000000000000000000000000000",
		"contracts.poap_attendance.start_block":   "1.5",
		"contracts.incentive_manager.address":     "1cfDae689817B954b72512bC82f23F35B997617D",
		"contracts.incentive_manager.start_block": "99999999999",
		"finality.tag":                            "latest",
		"finality.depth":                          "0",
		"database.url":                            "postgres://h:port/db",
		"database.max_conns":                      "1",
		"history.retention_blocks":                "forever",
		"backfill.range_blocks":                   "0",
		"backfill.concurrency":                    "1000",
		"backfill.max_range_blocks":               "many",
		"backfill.log_source":                     "traces",
		"api.listen":                              "8000",
		"api.cors_origins":                        "app.echain.xyz",
		"api.max_first":                           "0",
		"api.max_skip":                            "0",
		"api.query_timeout":                       "0s",
		"api.ready_max_lag_blocks":                "x",
		"api.ready_max_replication_lag":           "0s",
		"api.replica_await_block":                 "2h",
		"subscriptions.replica_poll":              "fast",
		"database.primary_url":                    "postgres://h:port/db",
		"api.ready_max_rpc_silence":               "0s",
		"api.max_depth":                           "1",
		"api.max_concurrent":                      "none",
		"api.max_tokens":                          "10",
		"api.max_fields":                          "many",
		"api.max_aliases":                         "0",
		"api.max_fragment_spreads":                "-1",
		"api.max_cost":                            "1e9",
		"api.max_response_bytes":                  "huge",
		"api.max_errors":                          "0",
		"api.read_header_timeout":                 "5",
		"api.read_body_timeout":                   "0s",
		"api.idle_timeout":                        "long",
		"api.max_header_bytes":                    "1KiB",
		"api.max_body_bytes":                      "1TiB",
		"api.max_inflight_bytes":                  "-1",
		"api.max_conns_per_client":                "-1",
		"api.client_rate":                         "fast",
		"api.client_burst":                        "0",
		"api.client_limit_exempt":                 "localhost",
		"api.trusted_proxies":                     "10.0.0.0/33",
		"subscriptions.max_message_bytes":         "1",
		"subscriptions.handshake_timeout":         "10",
		"webhook.max_body_bytes":                  "big",
		"webhook.legacy_secrets":                  "tiny",
		"webhook.networks":                        "Base Sepolia",
		"metrics.listen":                          "localhost:http",
		"subscriptions.max_connections":           "0",
		"subscriptions.max_per_connection":        "lots",
		"subscriptions.keepalive":                 "12",
		"subscriptions.workers":                   "-2",
		"webhook.secrets":                         "short",
		"webhook.tolerance":                       "5",
		"metadata.gateway":                        "ipfs.io",
		"metadata.timeout":                        "ten seconds",
		"log.level":                               "verbose",
		"log.format":                              "xml",
		"shutdown_timeout":                        "forever",
		"runtime.gc_percent":                      "off",
		"runtime.memory_limit":                    "lots",
		"devchain.http_listen":                    "127.0.0.1",
		"devchain.ws_listen":                      "127.0.0.1:99999",
		"devchain.seed":                           "0x1",
		"devchain.metadata_listen":                "nowhere",
		"devchain.block_time":                     "1",
		"devchain.txs_per_block":                  "lots",
		"devchain.reorg_every":                    "-3",
		"devchain.reorg_depth":                    "0",
	}
	isolate(t)
	for _, k := range Keys() {
		val, ok := bad[k.Name]
		if !ok {
			t.Errorf("no bad-value case for key %s", k.Name)
			continue
		}
		delete(bad, k.Name)
		t.Run(k.Name, func(t *testing.T) {
			t.Setenv(k.Env[0], val)
			msg := loadErr(t, Options{})
			if !strings.HasPrefix(msg, "config: "+k.Name+": ") || !strings.HasSuffix(msg, "(from $"+k.Env[0]+")") {
				t.Errorf("error %q does not name %s and $%s", msg, k.Name, k.Env[0])
			}
			_, _, e := Load(Options{})
			var ce *Error
			if !errors.As(e, &ce) || ce.Key != k.Name {
				t.Errorf("not a *config.Error for %s", k.Name)
			}
		})
	}
	for k := range bad {
		t.Errorf("bad-value case for a key that does not exist: %s", k)
	}
}

func TestBadValuesInFileAndFlags(t *testing.T) {
	isolate(t)
	msg := loadErr(t, Options{File: writeFile(t, "rpc:\n  timeout: 30\n")})
	if !strings.Contains(msg, "rpc.timeout: 30 has no unit") || !strings.Contains(msg, "my.yaml") {
		t.Errorf("file: %q", msg)
	}
	msg = loadErr(t, Options{Set: map[string]string{"log.level": "loud"}})
	if msg != `config: log.level: "loud" is not one of debug, info, warn, error (from --log-level)` {
		t.Errorf("flag: %q", msg)
	}
	// YAML reads a short 0x literal as a number: refused, not truncated.
	msg = loadErr(t, Options{File: writeFile(t, "contracts:\n  event_factory:\n    address: 0x1f\n")})
	if !strings.Contains(msg, "contracts.event_factory.address: expected a quoted 0x… address") {
		t.Errorf("numeric address: %q", msg)
	}
	// A full-length address needs no quotes.
	c := load(t, Options{File: writeFile(t, "contracts:\n  event_factory:\n    address: 0x1cfDae689817B954b72512bC82f23F35B997617D\n")})
	if c.Contracts.EventFactory.Address.Hex() != "0x1cfDae689817B954b72512bC82f23F35B997617D" {
		t.Errorf("unquoted address: %s", c.Contracts.EventFactory.Address.Hex())
	}
	// Several problems still make one line.
	msg = loadErr(t, Options{Set: map[string]string{"log.level": "loud", "log.format": "xml"}})
	if !strings.Contains(msg, "log.level") || !strings.Contains(msg, "log.format") {
		t.Errorf("two errors: %q", msg)
	}
}

func TestCrossKeyRules(t *testing.T) {
	isolate(t)
	cases := []struct {
		set  map[string]string
		want string
	}{
		{map[string]string{"rpc.http_url": ""}, "config: rpc.http_url: at least one HTTP endpoint"},
		{map[string]string{"rpc.ws_url": "ws://a:1,ws://b:1"}, "config: rpc.ws_url: 2 WebSocket URLs for 1 HTTP URLs"},
		{map[string]string{"backfill.range_blocks": "20000"}, "config: backfill.range_blocks: 20000 is above backfill.max_range_blocks 10000"},
		{map[string]string{"metrics.listen": "0.0.0.0:8000"}, "config: metrics.listen: 0.0.0.0:8000 is also api.listen"},
		{map[string]string{"contracts.marketplace.address": "0xf9d1a0aE6Ef88328FfC7B71Cf555Ed86744e0211"},
			"config: contracts.marketplace.address: same address as contracts.event_factory.address"},
	}
	for _, tc := range cases {
		if msg := loadErr(t, Options{Set: tc.set}); !strings.HasPrefix(msg, tc.want) {
			t.Errorf("%v: got %q, want %q", tc.set, msg, tc.want)
		}
	}
	// Finality by tag alone is fine.
	c := load(t, Options{Set: map[string]string{"finality.tag": "finalized"}})
	if c.Finality.Tag != "finalized" || c.Finality.Depth != 64 {
		t.Errorf("finality %+v", c.Finality)
	}
	// Metrics can be switched off.
	if c := load(t, Options{Set: map[string]string{"metrics.listen": ""}}); c.Metrics.Listen != "" {
		t.Errorf("metrics listen %q", c.Metrics.Listen)
	}
}

func TestFlags(t *testing.T) {
	isolate(t)
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	AddFlags(fs)
	if err := fs.Parse([]string{"--profile", "base-sepolia", "--rpc-ws-url", "wss://n.example/ws/k", "--set", "api.max_first=9", "--log-level=debug"}); err != nil {
		t.Fatal(err)
	}
	o, err := OptionsFromFlags(fs)
	if err != nil {
		t.Fatal(err)
	}
	c := load(t, o)
	if c.Profile != "base-sepolia" || c.API.MaxFirst != 9 || len(c.RPC.WSURLs) != 1 || c.Log.Level.String() != "DEBUG" {
		t.Errorf("flags not applied: %+v", c)
	}
	fs = pflag.NewFlagSet("x", pflag.ContinueOnError)
	AddFlags(fs)
	_ = fs.Parse([]string{"--set", "novalue"})
	if _, err := OptionsFromFlags(fs); err == nil || !strings.Contains(err.Error(), "key=value") {
		t.Errorf("--set without =: %v", err)
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"wss://base-sepolia.core.chainstack.com/ws/0123abcd": "wss://base-sepolia.core.chainstack.com/…",
		"https://user:pw@node.example:8545":                  "https://node.example:8545/…",
		"http://127.0.0.1:8545":                              "http://127.0.0.1:8545",
		"https://rpc.example/?key=abc":                       "https://rpc.example/…",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestFindFirstLogBlock resolves `start_block: auto` on a node without historical state (the dev
// chain keeps the state of its last 128 blocks, like a full node), through a provider that caps
// eth_getLogs at 40 blocks with and without a suggested range; the blocks found are kept, and a
// second resolution reads them instead of searching.
func TestFindFirstLogBlock(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	c, err := devchain.Start(ctx, devchain.Config{MetadataAddr: "off"}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 20; i++ { // blocks without Echain logs first
		if _, err := c.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	tr := devchain.NewTraffic(c, devchain.TrafficConfig{TxsPerBlock: 3}, log)
	for i := 0; i < 180; i++ {
		if _, err := tr.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// What the old search needed: state at an old block. This node refuses it.
	if _, err := c.Client().CodeAt(ctx, c.Addresses.Marketplace, big.NewInt(2)); err == nil {
		t.Fatal("the dev chain served eth_getCode at block 2: the test needs a node without historical state")
	}
	// The expected answers, from every log of the chain.
	all, err := c.Client().FilterLogs(ctx, ethereum.FilterQuery{FromBlock: big.NewInt(0)})
	if err != nil {
		t.Fatal(err)
	}
	want := map[common.Address]uint64{}
	for _, l := range all {
		if n, ok := want[l.Address]; !ok || l.BlockNumber < n {
			want[l.Address] = l.BlockNumber
		}
	}

	for _, style := range []rpcproxy.HintStyle{rpcproxy.Infura, rpcproxy.NoHint} {
		proxy, err := rpcproxy.New(c.HTTPURL)
		if err != nil {
			t.Fatal(err)
		}
		defer proxy.Close()
		proxy.Add(rpcproxy.MaxLogsRange(40, style))
		src, err := srcpkg.New(ctx, srcpkg.Config{Endpoints: []srcpkg.Endpoint{{HTTPURL: proxy.URL()}}, ChainID: devchain.ChainID}, log, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		for _, addr := range []common.Address{c.Addresses.EventFactory, c.Addresses.Marketplace, c.Addresses.POAPAttendance, c.Addresses.IncentiveManager} {
			got, found, _, err := FindFirstLogBlock(ctx, src, addr, 0, nil)
			if err != nil {
				t.Fatalf("style %v, %s: %v", style, addr, err)
			}
			if w, ok := want[addr]; found != ok || got != w {
				t.Errorf("style %v, %s: first log block %d (found %v), want %d (%v)", style, addr, got, found, w, ok)
			}
		}
		if proxy.Faults("eth_getLogs") == 0 {
			t.Errorf("style %v: the range cap never refused a range", style)
		}

		isolate(t)
		cfg := load(t, Options{Set: map[string]string{}})
		for _, ct := range cfg.Contracts.All() {
			ct.StartBlock = StartBlock{Auto: true}
		}
		cfg.Contracts.Marketplace.Address = c.Addresses.Marketplace
		cfg.Contracts.EventFactory.Address = c.Addresses.EventFactory
		kept := keptBlocks{}
		if err := cfg.ResolveStartBlocks(ctx, src, kept, log); err != nil {
			t.Fatal(err)
		}
		if sb := cfg.Contracts.Marketplace.StartBlock; sb.Auto || sb.Number != want[c.Addresses.Marketplace] {
			t.Errorf("resolved start block %v, want %d", sb, want[c.Addresses.Marketplace])
		}
		if kept[c.Addresses.Marketplace] != want[c.Addresses.Marketplace] || len(kept) != 4 {
			t.Errorf("kept %v", kept)
		}
		// A restart reads what was kept: no search (the node is not even asked).
		for _, ct := range cfg.Contracts.All() {
			ct.StartBlock = StartBlock{Auto: true}
		}
		calls := proxy.Calls("eth_getLogs")
		if err := cfg.ResolveStartBlocks(ctx, src, kept, log); err != nil {
			t.Fatal(err)
		}
		if proxy.Calls("eth_getLogs") != calls || cfg.Contracts.EventFactory.StartBlock.Number != want[c.Addresses.EventFactory] {
			t.Errorf("second resolution searched again or differs: %v", cfg.Contracts.EventFactory.StartBlock)
		}
	}
}

// keptBlocks is a StartBlockStore in memory (the store's own is tested in package store).
type keptBlocks map[common.Address]uint64

func (k keptBlocks) StartBlocks(context.Context) (map[common.Address]uint64, error) { return k, nil }

func (k keptBlocks) SaveStartBlock(_ context.Context, _ string, addr common.Address, block uint64) error {
	k[addr] = block
	return nil
}

// TestREADMEDocumentsEveryKey keeps the configuration reference complete.
func TestREADMEDocumentsEveryKey(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Keys() {
		if !bytes.Contains(readme, []byte("`"+k.Name+"`")) {
			t.Errorf("README.md does not document %s", k.Name)
		}
		if k.Secret && !bytes.Contains(readme, []byte(k.Env[0])) {
			t.Errorf("README.md does not name %s for the secret %s", k.Env[0], k.Name)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "4096": 4096, "384MiB": 384 << 20, "1 GiB": 1 << 30, "64kB": 64_000, "2GB": 2e9, "1_000B": 1000} {
		got, err := parseBytes(in)
		if err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1MiB", "12 parsecs", "1.5GiB", "MiB", "99999999PiB", "2000000TB"} {
		if _, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) accepted", in)
		}
	}
}

// TestMetadataGatewayOff: an empty gateway or "off" (bare in YAML, where it reads as false)
// turns metadata fetching off; an address without a scheme is still refused.
func TestMetadataGatewayOff(t *testing.T) {
	isolate(t)
	for name, o := range map[string]Options{
		"empty in file":   {File: writeFile(t, "metadata:\n  gateway: \"\"\n")},
		"bare off":        {File: writeFile(t, "metadata:\n  gateway: off\n")},
		"quoted off":      {File: writeFile(t, "metadata:\n  gateway: \"off\"\n")},
		"off from a flag": {Set: map[string]string{"metadata.gateway": "off"}},
	} {
		if c := load(t, o); c.Metadata.Gateway != "" {
			t.Errorf("%s: gateway %q, want off", name, c.Metadata.Gateway)
		}
	}
	if msg := loadErr(t, Options{Set: map[string]string{"metadata.gateway": "ipfs.io"}}); !strings.Contains(msg, "metadata.gateway") {
		t.Errorf("gateway without a scheme: %q", msg)
	}
}
