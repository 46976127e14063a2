package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// builtin is config.yaml as of the build (copied by go generate; a test keeps them equal).
//
//go:embed default.gen.yaml
var builtin []byte

// Builtin returns the built-in config.yaml.
func Builtin() []byte { return bytes.Clone(builtin) }

// DefaultFile is read, when present in the working directory, if no file is named.
const DefaultFile = "config.yaml"

// Options say where configuration comes from besides the built-in file and the environment.
type Options struct {
	// File is an operator's config file (--config). Empty: $ECHAIN_CONFIG, else ./config.yaml
	// when it exists.
	File string
	// Profile selects profiles.<name> (--profile). Empty: $ECHAIN_PROFILE, else the file's
	// `profile` key.
	Profile string
	// Set are flag overrides by key (--set key=value and the named flags).
	Set map[string]string
}

// Error is a configuration problem: one line naming the key.
type Error struct {
	Key    string
	Source string // where the value came from: "$ECHAIN_X", "--set", "config.yaml", ...
	Err    error
}

func (e *Error) Error() string {
	s := "config: " + e.Key + ": " + e.Err.Error()
	if e.Source != "" {
		s += " (from " + e.Source + ")"
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Load reads, merges and validates the configuration. The warnings name environment variables
// that look like configuration but match no key.
func Load(o Options) (*Config, []string, error) {
	keys := Keys()
	byName := map[string]Key{}
	for _, k := range keys {
		byName[k.Name] = k
	}

	builtinMap, err := readYAML(builtin)
	if err != nil {
		return nil, nil, fmt.Errorf("config: the built-in config.yaml does not parse: %w", err)
	}
	file, fileSrc := o.File, "--config"
	if file == "" {
		if f := os.Getenv("ECHAIN_CONFIG"); f != "" {
			file, fileSrc = f, "$ECHAIN_CONFIG"
		} else if _, err := os.Stat(DefaultFile); err == nil {
			file, fileSrc = "./"+DefaultFile, "./"+DefaultFile
		}
	}
	var fileMap map[string]any
	var fileRaw []byte
	if file != "" {
		if fileRaw, err = os.ReadFile(file); err != nil {
			return nil, nil, &Error{Key: file, Source: fileSrc, Err: errors.Unwrap(err)}
		}
		if fileMap, err = readYAML(fileRaw); err != nil {
			return nil, nil, &Error{Key: file, Source: fileSrc, Err: fmt.Errorf("does not parse: %s", strings.TrimPrefix(oneLine(err), "While parsing config: "))}
		}
		if err := checkKeys(fileMap, byName, file); err != nil {
			return nil, nil, err
		}
	}
	for name := range o.Set {
		k, ok := byName[name]
		if !ok {
			return nil, nil, &Error{Key: name, Source: "--set", Err: unknownKey(name, byName)}
		}
		if k.Secret {
			return nil, nil, &Error{Key: name, Source: "--set",
				Err: fmt.Errorf("a secret is read from the environment only (%s)", k.Env[0])}
		}
	}

	profile, profileSrc := o.Profile, "--profile"
	if profile == "" {
		profile, profileSrc = os.Getenv("ECHAIN_PROFILE"), "$ECHAIN_PROFILE"
	}
	if profile == "" {
		profileSrc = file
		if p, ok := fileMap["profile"].(string); ok {
			profile = p
		}
	}
	profile = strings.ToLower(strings.TrimSpace(profile))

	var profileMap map[string]any
	if profile != "" {
		profiles := map[string]any{}
		for _, m := range []map[string]any{builtinMap, fileMap} {
			if ps, ok := m["profiles"].(map[string]any); ok {
				for name, p := range ps {
					if pm, ok := p.(map[string]any); ok {
						if profiles[name] == nil {
							profiles[name] = deepCopy(pm)
						} else {
							mergeInto(profiles[name].(map[string]any), pm)
						}
					}
				}
			}
		}
		pm, ok := profiles[profile].(map[string]any)
		if !ok {
			return nil, nil, &Error{Key: "profile", Source: profileSrc,
				Err: fmt.Errorf("no profile %q (profiles: %s)", profile, strings.Join(sortedKeys(profiles), ", "))}
		}
		profileMap = pm
	}
	src := &sources{set: o.Set, file: file, fileMap: fileMap, profile: profile, profileMap: profileMap, builtinMap: builtinMap,
		shippedFile: file != "" && reflect.DeepEqual(fileMap, builtinMap)}

	c := &Config{Profile: profile, File: file, sources: map[string]string{}}
	var errs []error
	for _, k := range keys {
		if k.Secret {
			if _, ok := find(fileMap, k.Name); ok {
				errs = append(errs, &Error{Key: k.Name, Source: file,
					Err: fmt.Errorf("a secret is read from the environment only (%s); remove it from the file", k.Env[0])})
				continue
			}
		}
		raw, from, ok := src.resolve(k)
		if !ok {
			if !k.Secret {
				errs = append(errs, &Error{Key: k.Name, Err: errors.New("has no value (the built-in config.yaml lacks it)")})
			}
			continue
		}
		c.sources[k.Name] = from
		if err := k.apply(c, raw); err != nil {
			errs = append(errs, &Error{Key: k.Name, Source: from, Err: err})
		}
	}
	if len(errs) == 0 {
		errs = c.validate()
	}
	if len(errs) > 0 {
		return nil, nil, joinLine(errs)
	}
	c.Contracts.EventFactory.Name = "EventFactory"
	c.Contracts.Marketplace.Name = "Marketplace"
	c.Contracts.POAPAttendance.Name = "POAPAttendance"
	c.Contracts.IncentiveManager.Name = "IncentiveManager"
	return c, append(src.warnings(), envWarnings(keys)...), nil
}

func readYAML(b []byte) (map[string]any, error) {
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(b)); err != nil {
		return nil, err
	}
	return v.AllSettings(), nil
}

// deepCopy copies nested maps: viper's merge keeps references to the maps it is given and
// writes into them on later merges.
func deepCopy(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			v = deepCopy(sub)
		}
		out[k] = v
	}
	return out
}

func mergeInto(dst, src map[string]any) {
	for k, sv := range src {
		if sm, ok := sv.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				mergeInto(dm, sm)
				continue
			}
		}
		dst[k] = sv
	}
}

// sources are every place a value can come from. resolve is the one place that applies their
// precedence and names where a value came from.
type sources struct {
	set         map[string]string // flags: --set key=value and the named flags
	file        string            // the operator's file ("" for none)
	fileMap     map[string]any
	profile     string
	profileMap  map[string]any
	builtinMap  map[string]any
	shippedFile bool // the file says what the built-in config.yaml says (run from the checkout)

	// shipped lists the file's keys that a profile overrode because the file only repeats the
	// shipped default there.
	shipped []string
}

// resolve returns a key's value and where it came from, highest precedence first: flags, the
// environment, the operator's file, the profile, the built-in config.yaml. A value in the file
// that equals the built-in one is the repository's default, not the operator's choice (the
// checkout's own ./config.yaml, or a copy of it used as a template): a profile the operator chose
// wins over it.
func (s *sources) resolve(k Key) (raw any, from string, ok bool) {
	if v, ok := s.set[k.Name]; ok {
		if slices.Contains(flagKeys, k.Name) {
			return v, "--" + FlagName(k.Name), true
		}
		return v, "--set " + k.Name, true
	}
	for _, env := range k.Env {
		if v := os.Getenv(env); v != "" {
			return v, "$" + env, true
		}
	}
	builtinV, inBuiltin := find(s.builtinMap, k.Name)
	profileV, inProfile := find(s.profileMap, k.Name)
	if v, ok := find(s.fileMap, k.Name); ok {
		if !(inProfile && inBuiltin && reflect.DeepEqual(v, builtinV)) {
			return v, s.file, true
		}
		if !s.shippedFile && !reflect.DeepEqual(v, profileV) {
			s.shipped = append(s.shipped, k.Name)
		}
	}
	if inProfile {
		return profileV, "profile " + s.profile, true
	}
	if inBuiltin {
		return builtinV, "built-in config.yaml", true
	}
	return nil, "", false
}

// warnings say which of the file's values a profile overrode, so that an operator who meant one
// of them knows how to insist.
func (s *sources) warnings() []string {
	if len(s.shipped) == 0 {
		return nil
	}
	return []string{fmt.Sprintf("%s repeats the shipped defaults of %s; profile %s's values apply "+
		"(to keep one of them over the profile, set it in the environment or with --set)",
		s.file, strings.Join(s.shipped, ", "), s.profile)}
}

// find looks a dotted key up in a nested map as viper returns it (keys in lower case).
func find(m map[string]any, key string) (any, bool) {
	parts := strings.Split(key, ".")
	var cur any = m
	for _, p := range parts {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = mm[p]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// checkKeys refuses keys nobody reads: a misspelt key would otherwise leave the default in force
// without a word.
func checkKeys(m map[string]any, byName map[string]Key, file string) error {
	var errs []error
	var walk func(prefix string, m map[string]any, inProfile bool)
	walk = func(prefix string, m map[string]any, inProfile bool) {
		names := make([]string, 0, len(m))
		for n := range m {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			val := m[n]
			full := n
			if prefix != "" {
				full = prefix + "." + n
			}
			if prefix == "" && !inProfile {
				if n == "profile" {
					continue
				}
				if n == "profiles" {
					pm, ok := val.(map[string]any)
					if !ok {
						errs = append(errs, &Error{Key: "profiles", Source: file, Err: errors.New("expected a mapping of profile names")})
						continue
					}
					for _, p := range sortedKeys(pm) {
						sub, ok := pm[p].(map[string]any)
						if !ok {
							errs = append(errs, &Error{Key: "profiles." + p, Source: file, Err: errors.New("expected a mapping of keys")})
							continue
						}
						walkProfile(p, sub, byName, file, &errs)
					}
					continue
				}
			}
			if _, ok := byName[full]; ok {
				continue
			}
			if sub, ok := val.(map[string]any); ok && isPrefix(full, byName) {
				walk(full, sub, inProfile)
				continue
			}
			if isPrefix(full, byName) {
				errs = append(errs, &Error{Key: full, Source: file, Err: fmt.Errorf("expected a mapping (keys %s)", childKeys(full, byName))})
				continue
			}
			errs = append(errs, &Error{Key: full, Source: file, Err: unknownKey(full, byName)})
		}
	}
	walk("", m, false)
	if len(errs) > 0 {
		return joinLine(errs)
	}
	return nil
}

func walkProfile(name string, m map[string]any, byName map[string]Key, file string, errs *[]error) {
	for _, full := range flatten("", m) {
		if _, ok := byName[full]; ok {
			if byName[full].Secret {
				*errs = append(*errs, &Error{Key: "profiles." + name + "." + full, Source: file,
					Err: fmt.Errorf("a secret is read from the environment only (%s)", byName[full].Env[0])})
			}
			continue
		}
		*errs = append(*errs, &Error{Key: "profiles." + name + "." + full, Source: file, Err: unknownKey(full, byName)})
	}
}

// flatten lists the dotted leaf keys of a nested map; a mapping where a key expects a value is
// reported as its leaves, which are then unknown.
func flatten(prefix string, m map[string]any) []string {
	var out []string
	for _, n := range sortedKeys(m) {
		full := n
		if prefix != "" {
			full = prefix + "." + n
		}
		if sub, ok := m[n].(map[string]any); ok && len(sub) > 0 {
			out = append(out, flatten(full, sub)...)
			continue
		}
		out = append(out, full)
	}
	return out
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func isPrefix(p string, byName map[string]Key) bool {
	for n := range byName {
		if strings.HasPrefix(n, p+".") {
			return true
		}
	}
	return false
}

func childKeys(p string, byName map[string]Key) string {
	var out []string
	for n := range byName {
		if strings.HasPrefix(n, p+".") {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	if len(out) > 4 {
		out = append(out[:4], "…")
	}
	return strings.Join(out, ", ")
}

func unknownKey(name string, byName map[string]Key) error {
	best, bestD := "", 1<<30
	for n := range byName {
		if d := editDistance(name, n); d < bestD || (d == bestD && n < best) {
			best, bestD = n, d
		}
	}
	if bestD <= 3 || (bestD <= len(name)/3 && bestD <= 6) {
		return fmt.Errorf("unknown key (did you mean %s?)", best)
	}
	return errors.New("unknown key")
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// envIgnored are ECHAIN_ variables that are not configuration keys.
var envIgnored = []string{"ECHAIN_CONFIG", "ECHAIN_PROFILE", "ECHAIN_TEST_"}

func envWarnings(keys []Key) []string {
	known := map[string]bool{}
	for _, k := range keys {
		for _, e := range k.Env {
			known[e] = true
		}
	}
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "ECHAIN_") || known[name] {
			continue
		}
		ignored := false
		for _, p := range envIgnored {
			if strings.HasPrefix(name, p) && (name == p || strings.HasSuffix(p, "_")) {
				ignored = true
			}
		}
		if !ignored {
			out = append(out, fmt.Sprintf("environment variable %s matches no configuration key", name))
		}
	}
	sort.Strings(out)
	return out
}

func joinLine(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	parts := make([]string, len(errs))
	for i, e := range errs {
		parts[i] = strings.TrimPrefix(e.Error(), "config: ")
	}
	return &multiError{errs: errs, line: "config: " + strings.Join(parts, "; ")}
}

type multiError struct {
	errs []error
	line string
}

func (m *multiError) Error() string   { return m.line }
func (m *multiError) Unwrap() []error { return m.errs }

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// AddFlags registers the configuration flags on a command's flag set.
func AddFlags(fs *pflag.FlagSet) {
	fs.String("config", "", "config file (default $ECHAIN_CONFIG, else ./config.yaml when present, else the built-in one)")
	fs.String("profile", "", "profile to lay over the top level, e.g. base-sepolia (default $ECHAIN_PROFILE)")
	fs.StringArray("set", nil, "set any key: --set api.listen=:8000 (repeatable)")
	for _, k := range flagKeys {
		fs.String(FlagName(k), "", "sets "+k)
	}
}

// flagKeys get named flags of their own; every other key is reachable with --set.
var flagKeys = []string{"log.level", "log.format", "chain_id", "rpc.ws_url", "rpc.http_url", "api.listen", "metrics.listen"}

// OptionsFromFlags collects Options from flags registered with AddFlags.
func OptionsFromFlags(fs *pflag.FlagSet) (Options, error) {
	var o Options
	o.File, _ = fs.GetString("config")
	o.Profile, _ = fs.GetString("profile")
	o.Set = map[string]string{}
	sets, _ := fs.GetStringArray("set")
	for _, s := range sets {
		k, val, ok := strings.Cut(s, "=")
		if !ok {
			return o, fmt.Errorf("config: --set %q: expected key=value", s)
		}
		o.Set[strings.ToLower(strings.TrimSpace(k))] = val
	}
	for _, k := range flagKeys {
		if f := fs.Lookup(FlagName(k)); f != nil && f.Changed {
			o.Set[k] = f.Value.String()
		}
	}
	return o, nil
}
