package config

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/jackc/pgx/v5/pgconn"
)

// The parsers accept what YAML, the environment (always strings) and flags produce, and nothing
// looser: viper's own getters turn "ten" into 0 without a word, which is how a typo becomes an
// outage.

func scalar(raw any) (string, error) {
	switch v := raw.(type) {
	case nil:
		return "", nil
	case string:
		return strings.TrimSpace(v), nil
	case int, int64, int32, uint, uint64, uint32, float64, float32, bool:
		return fmt.Sprint(v), nil
	default:
		return "", fmt.Errorf("expected a single value, got %s", describe(raw))
	}
}

func describe(raw any) string {
	switch raw.(type) {
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	default:
		return fmt.Sprintf("%T", raw)
	}
}

func parseString(raw any) (string, error) { return scalar(raw) }

func parseEnum(values ...string) func(any) (string, error) {
	return func(raw any) (string, error) {
		s, err := scalar(raw)
		if err != nil {
			return "", err
		}
		for _, v := range values {
			if strings.EqualFold(s, v) {
				return v, nil
			}
		}
		return "", fmt.Errorf("%q is not one of %s", s, strings.Join(values, ", "))
	}
}

func parseUint(min, max uint64) func(any) (uint64, error) {
	return func(raw any) (uint64, error) {
		if f, ok := raw.(float64); ok && f != math.Trunc(f) {
			return 0, fmt.Errorf("%v is not a whole number", f)
		}
		s, err := scalar(raw)
		if err != nil {
			return 0, err
		}
		if s == "" {
			return 0, errors.New("missing: expected a whole number")
		}
		n, err := strconv.ParseUint(strings.ReplaceAll(s, "_", ""), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a whole number >= 0", s)
		}
		if n < min || n > max {
			return 0, fmt.Errorf("%d is out of range [%d, %d]", n, min, max)
		}
		return n, nil
	}
}

func parseInt(min, max int) func(any) (int, error) {
	p := parseUint(uint64(min), uint64(max))
	return func(raw any) (int, error) {
		n, err := p(raw)
		return int(n), err
	}
}

func parseInt32(min, max int32) func(any) (int32, error) {
	p := parseUint(uint64(min), uint64(max))
	return func(raw any) (int32, error) {
		n, err := p(raw)
		return int32(n), err
	}
}

func parseInt64(raw any) (int64, error) {
	s, err := scalar(raw)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a whole number", s)
	}
	return n, nil
}

func parseFloat(min, max float64) func(any) (float64, error) {
	return func(raw any) (float64, error) {
		s, err := scalar(raw)
		if err != nil {
			return 0, err
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) {
			return 0, fmt.Errorf("%q is not a number", s)
		}
		if f < min || f > max {
			return 0, fmt.Errorf("%v is out of range [%v, %v]", f, min, max)
		}
		return f, nil
	}
}

func parseDuration(min, max time.Duration) func(any) (time.Duration, error) {
	return func(raw any) (time.Duration, error) {
		switch raw.(type) {
		case int, int64, float64:
			return 0, fmt.Errorf("%v has no unit: write it like 30s, 500ms or 5m", raw)
		}
		s, err := scalar(raw)
		if err != nil {
			return 0, err
		}
		if _, err := strconv.ParseFloat(s, 64); err == nil && s != "0" {
			return 0, fmt.Errorf("%s has no unit: write it like 30s, 500ms or 5m", s)
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration like 30s, 500ms or 5m", s)
		}
		if d < min || d > max {
			return 0, fmt.Errorf("%s is out of range [%s, %s]", d, min, max)
		}
		return d, nil
	}
}

// list accepts a YAML list, or a string of comma-separated items (the environment and flags).
func list(raw any) ([]string, error) {
	var items []string
	switch v := raw.(type) {
	case nil:
	case []any:
		for _, it := range v {
			s, err := scalar(it)
			if err != nil {
				return nil, fmt.Errorf("list item: %w", err)
			}
			items = append(items, s)
		}
	case []string:
		items = append(items, v...)
	default:
		s, err := scalar(raw)
		if err != nil {
			return nil, err
		}
		items = strings.Split(s, ",")
	}
	out := items[:0]
	for _, it := range items {
		if it = strings.TrimSpace(it); it != "" {
			out = append(out, it)
		}
	}
	return out, nil
}

func parseURLs(schemes ...string) func(any) ([]string, error) {
	return func(raw any) ([]string, error) {
		items, err := list(raw)
		if err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		for _, it := range items {
			if err := checkURL(it, schemes...); err != nil {
				return nil, err
			}
			if seen[it] {
				return nil, fmt.Errorf("%s is listed twice", Redact(it))
			}
			seen[it] = true
		}
		return items, nil
	}
}

func checkURL(s string, schemes ...string) error {
	want := strings.Join(schemes, ":// or ") + "://"
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%s is not a %s URL", Redact(s), want)
	}
	for _, sc := range schemes {
		if u.Scheme == sc {
			return nil
		}
	}
	return fmt.Errorf("%s is not a %s URL", Redact(s), want)
}

// Redact shortens a URL to scheme://host[:port], with "/…" when it had a path or query, so that
// API keys carried in paths (Chainstack), query strings or user info never reach a log.
func Redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		if len(s) > 12 {
			return s[:8] + "…"
		}
		return s
	}
	out := u.Scheme + "://" + u.Host
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		out += "/…"
	}
	return out
}

func parseAddress(raw any) (common.Address, error) {
	s, ok := raw.(string)
	if !ok {
		if raw == nil {
			return common.Address{}, errors.New("missing: expected a 0x… address")
		}
		return common.Address{}, fmt.Errorf("expected a quoted 0x… address, got %v", raw)
	}
	s = strings.TrimSpace(s)
	if !common.IsHexAddress(s) || !strings.HasPrefix(s, "0x") {
		return common.Address{}, fmt.Errorf("%q is not a 0x-prefixed 20-byte hex address", s)
	}
	a := common.HexToAddress(s)
	// Mixed case is an EIP-55 checksum: a mismatch means a mistyped address.
	if s != strings.ToLower(s) && s[2:] != strings.ToUpper(s[2:]) && a.Hex() != s {
		return common.Address{}, fmt.Errorf("%q fails its EIP-55 checksum (expected %s)", s, a.Hex())
	}
	if a == (common.Address{}) {
		return common.Address{}, errors.New("the zero address is not a contract")
	}
	return a, nil
}

func parseStartBlock(raw any) (StartBlock, error) {
	s, err := scalar(raw)
	if err != nil {
		return StartBlock{}, err
	}
	if strings.EqualFold(s, "auto") {
		return StartBlock{Auto: true}, nil
	}
	n, err := parseUint(0, 1<<31-1)(raw)
	if err != nil {
		return StartBlock{}, fmt.Errorf("%q is neither a block number nor auto", s)
	}
	return StartBlock{Number: n}, nil
}

func parseListen(optional bool) func(any) (string, error) {
	return func(raw any) (string, error) {
		s, err := scalar(raw)
		if err != nil {
			return "", err
		}
		if s == "" {
			if optional {
				return "", nil
			}
			return "", errors.New("missing: expected host:port")
		}
		_, port, err := net.SplitHostPort(s)
		if err != nil {
			return "", fmt.Errorf("%q is not host:port (e.g. 127.0.0.1:8000 or :8000)", s)
		}
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || (n == 0 && port != "0") {
			return "", fmt.Errorf("%q has no valid port", s)
		}
		return s, nil
	}
}

func parseOrigins(raw any) ([]string, error) {
	items, err := list(raw)
	if err != nil {
		return nil, err
	}
	for _, it := range items {
		if it == "*" {
			continue
		}
		if err := checkURL(it, "http", "https"); err != nil {
			return nil, fmt.Errorf("origin %w", err)
		}
		if u, _ := url.Parse(it); u.Path != "" && u.Path != "/" {
			return nil, fmt.Errorf("origin %q has a path; an origin is scheme://host[:port]", it)
		}
	}
	return items, nil
}

// parseGateway reads metadata.gateway: an http(s) URL, or empty or "off" for no metadata fetch
// at all (kept as "").
func parseGateway(raw any) (string, error) {
	if raw == nil || raw == false { // YAML 1.1 reads a bare off as false
		return "", nil
	}
	s, err := scalar(raw)
	if err != nil {
		return "", err
	}
	if t := strings.TrimSpace(s); t == "" || strings.EqualFold(t, "off") {
		return "", nil
	}
	if err := checkURL(s, "http", "https"); err != nil {
		return "", err
	}
	if !strings.HasSuffix(s, "/") {
		s += "/"
	}
	return s, nil
}

// parseBytes reads a size: a whole number of bytes, or one with a unit (KiB, MiB, GiB, or
// kB, MB, GB as powers of ten).
func parseBytes(raw any) (int64, error) {
	s, err := scalar(raw)
	if err != nil {
		return 0, err
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("missing: expected a size such as 384MiB")
	}
	num, unit := s, ""
	if i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '_' }); i >= 0 {
		num, unit = s[:i], strings.TrimSpace(s[i:])
	}
	mult := map[string]int64{"": 1, "B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9,
		"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[unit]
	n, err := strconv.ParseInt(strings.ReplaceAll(num, "_", ""), 10, 64)
	if mult == 0 || err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size: a whole number with an optional unit B, KiB, MiB, GiB, kB, MB or GB", s)
	}
	if n > (1<<50)/mult {
		return 0, fmt.Errorf("%q is out of range (at most 1PiB)", s)
	}
	return n * mult, nil
}

// parseSize is parseBytes within [min, max].
func parseSize(min, max int64) func(any) (int64, error) {
	return func(raw any) (int64, error) {
		n, err := parseBytes(raw)
		if err != nil {
			return 0, err
		}
		if n < min || n > max {
			return 0, fmt.Errorf("%d bytes is out of range [%d, %d]", n, min, max)
		}
		return n, nil
	}
}

// parsePrefixes reads a list of addresses and CIDR ranges (an address is its own /32 or /128).
func parsePrefixes(raw any) ([]netip.Prefix, error) {
	items, err := list(raw)
	if err != nil {
		return nil, err
	}
	out := []netip.Prefix{}
	for _, it := range items {
		if p, err := netip.ParsePrefix(it); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(it)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an IP address nor a CIDR range like 10.0.0.0/8", it)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

func parseLevel(raw any) (slog.Level, error) {
	s, err := parseEnum("debug", "info", "warn", "error")(raw)
	if err != nil {
		return 0, err
	}
	var l slog.Level
	return l, l.UnmarshalText([]byte(s))
}

func parseDatabaseURL(raw any) (string, error) {
	s, err := scalar(raw)
	if err != nil || s == "" {
		return s, err
	}
	if _, err := pgconn.ParseConfig(s); err != nil {
		// pgconn's message can quote the password: say only that it does not parse.
		return "", errors.New("is not a PostgreSQL connection string (postgres://user:pass@host:5432/db?sslmode=...)")
	}
	return s, nil
}

func parseSecrets(raw any) ([]string, error) {
	items, err := list(raw)
	if err != nil {
		return nil, err
	}
	for i, it := range items {
		if len(it) < 16 {
			return nil, fmt.Errorf("secret #%d is %d characters; a webhook secret is at least 16", i+1, len(it))
		}
	}
	return items, nil
}

func parseNetworks(raw any) ([]string, error) {
	items, err := list(raw)
	if err != nil {
		return nil, err
	}
	for _, it := range items {
		for _, r := range it {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return nil, fmt.Errorf("%q is not a CDP network label like base-sepolia", it)
			}
		}
	}
	return items, nil
}

func uitoa(n uint64) string { return strconv.FormatUint(n, 10) }
