package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names of the schemes we accept. CDP v2 (Hook0) is the current one; the two legacy headers
// carry a hex HMAC-SHA256 of the raw body.
const (
	HeaderHook0Signature  = "X-Hook0-Signature"
	HeaderCoinbaseSig     = "X-Coinbase-Signature"
	HeaderCommerceSig     = "X-CC-Webhook-Signature"
	HeaderEventID         = "X-Event-Id"
	HeaderEventType       = "X-Event-Type"
	maxSignatureHeaderLen = 4096
)

// Verification failures, each a rejection reason in the metrics and a 401 to the sender.
var (
	errNoSignature  = errors.New("no signature header")
	errBadHeader    = errors.New("malformed signature header")
	errStale        = errors.New("signature timestamp outside tolerance")
	errBadSignature = errors.New("signature mismatch")
	errNoSecret     = errors.New("no secret configured for this signature scheme")
)

func rejectReason(err error) string {
	switch {
	case errors.Is(err, errNoSignature):
		return "missing_signature"
	case errors.Is(err, errBadHeader):
		return "malformed_signature"
	case errors.Is(err, errStale):
		return "stale"
	case errors.Is(err, errNoSecret):
		return "no_secret"
	default:
		return "bad_signature"
	}
}

// verifier checks a request's signature against every configured secret, so that a secret can be
// rotated by running old and new side by side.
type verifier struct {
	secrets   [][]byte // CDP v2 subscription secrets, UTF-8 bytes as given (never decoded)
	legacy    [][]byte
	tolerance time.Duration
}

// verify checks the raw body before anything parses it: a re-encoded body would not match.
func (v *verifier) verify(h http.Header, body []byte, now time.Time) error {
	if sig := h.Get(HeaderHook0Signature); sig != "" {
		return v.verifyHook0(sig, h, body, now)
	}
	for _, name := range []string{HeaderCoinbaseSig, HeaderCommerceSig} {
		if sig := h.Get(name); sig != "" {
			return v.verifyLegacy(sig, body)
		}
	}
	return errNoSignature
}

// hook0Sig is a parsed X-Hook0-Signature: t=…,v0=…,h=…,v1=…
type hook0Sig struct {
	t       string
	v0, v1  [][]byte
	headers string // the h field as sent: lowercased names joined by single spaces
}

func parseHook0(s string) (hook0Sig, error) {
	var p hook0Sig
	if len(s) > maxSignatureHeaderLen {
		return p, errBadHeader
	}
	for _, part := range strings.Split(s, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return p, errBadHeader
		}
		switch k {
		case "t":
			p.t = val
		case "h":
			p.headers = val
		case "v0", "v1":
			mac, err := hex.DecodeString(val)
			if err != nil || len(mac) != sha256.Size {
				return p, errBadHeader
			}
			if k == "v0" {
				p.v0 = append(p.v0, mac)
			} else {
				p.v1 = append(p.v1, mac)
			}
		}
	}
	if p.t == "" || (len(p.v0) == 0 && len(p.v1) == 0) {
		return p, errBadHeader
	}
	if len(p.v0) == 0 && p.headers == "" {
		return p, errBadHeader
	}
	return p, nil
}

func (v *verifier) verifyHook0(header string, h http.Header, body []byte, now time.Time) error {
	if len(v.secrets) == 0 {
		return errNoSecret
	}
	p, err := parseHook0(header)
	if err != nil {
		return err
	}
	ts, err := strconv.ParseInt(p.t, 10, 64)
	if err != nil {
		return errBadHeader
	}
	// Every retry is signed anew, so a narrow window costs nothing and bounds replays.
	if d := now.Sub(time.Unix(ts, 0)); d > v.tolerance || d < -v.tolerance {
		return errStale
	}
	// v0 when present (the documented choice); v1 binds headers and is the fallback.
	if len(p.v0) > 0 {
		for _, secret := range v.secrets {
			want := SignV0(secret, p.t, body)
			for _, got := range p.v0 {
				if hmac.Equal(want, got) {
					return nil
				}
			}
		}
		return errBadSignature
	}
	names := strings.Fields(p.headers)
	values := make([]string, len(names))
	for i, n := range names {
		values[i] = h.Get(n)
	}
	for _, secret := range v.secrets {
		want := SignV1(secret, p.t, p.headers, values, body)
		for _, got := range p.v1 {
			if hmac.Equal(want, got) {
				return nil
			}
		}
	}
	return errBadSignature
}

func (v *verifier) verifyLegacy(header string, body []byte) error {
	if len(v.legacy) == 0 {
		return errNoSecret
	}
	got, err := hex.DecodeString(strings.TrimSpace(header))
	if err != nil || len(got) != sha256.Size {
		return errBadHeader
	}
	for _, secret := range v.legacy {
		m := hmac.New(sha256.New, secret)
		m.Write(body)
		if hmac.Equal(m.Sum(nil), got) {
			return nil
		}
	}
	return errBadSignature
}

// SignV0 is Hook0's v0 MAC: HMAC-SHA256(secret, t + "." + body).
func SignV0(secret []byte, t string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(t))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// SignV1 is Hook0's v1 MAC: HMAC-SHA256(secret, t + "." + h + "." + values joined by "." + "." + body),
// where h is the space-separated header list exactly as it appears in the signature header.
func SignV1(secret []byte, t, h string, values []string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(t))
	m.Write([]byte{'.'})
	m.Write([]byte(h))
	m.Write([]byte{'.'})
	m.Write([]byte(strings.Join(values, ".")))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// ParseSecrets splits a comma-separated secret list (as read from the environment), trimming
// blanks; several secrets let a subscription be rotated without dropping deliveries.
func ParseSecrets(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
