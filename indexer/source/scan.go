package source

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
)

// A small JSON reader for the large answers of a backfill (logs, block receipts, blocks with
// their transactions). encoding/json validates a whole answer in one pass and decodes it in a
// second, byte by byte, and allocates a string per field; those answers are almost all hex
// strings, which this reader finds with bytes.IndexByte and decodes straight into the target.
// It checks the grammar of everything it reads or skips (objects, arrays, strings, literals),
// so a malformed answer is an error, never a silently partial result.

var errSyntax = errors.New("malformed JSON")

type scanner struct {
	b []byte
	i int
	// Slabs the decoded logs' topics and data are cut from (see log).
	hashes []common.Hash
	bytes  []byte
}

const (
	hashSlab = 1024     // topics per slab
	byteSlab = 32 << 10 // data bytes per slab; longer data gets its own array
)

// hexSlab decodes hex data like hexData, into the scanner's byte slab when it fits.
func (s *scanner) hexSlab(raw []byte, name string) ([]byte, error) {
	h, err := hexDigits(raw, name)
	if err != nil {
		return nil, err
	}
	n := len(h) / 2
	if n > byteSlab/4 {
		return decodeHex(make([]byte, n), h, name)
	}
	if s.bytes == nil || cap(s.bytes)-len(s.bytes) < n { // never nil: "0x" is empty data, not none
		s.bytes = make([]byte, 0, byteSlab)
	}
	start := len(s.bytes)
	out, err := decodeHex(s.bytes[start:start+n:start+n], h, name)
	if err == nil {
		s.bytes = s.bytes[:start+n]
	}
	return out, err
}

func (s *scanner) fail(what string) error {
	at := s.i
	end := min(at+40, len(s.b))
	return fmt.Errorf("%w: %s at offset %d near %q", errSyntax, what, at, s.b[at:end])
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte (0 at the end) without consuming it.
func (s *scanner) peek() byte {
	s.ws()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

func (s *scanner) expect(c byte) error {
	if s.peek() != c {
		return s.fail(fmt.Sprintf("expected %q", c))
	}
	s.i++
	return nil
}

// null consumes a null literal if one comes next.
func (s *scanner) null() bool {
	if s.peek() == 'n' && bytes.HasPrefix(s.b[s.i:], []byte("null")) {
		s.i += 4
		return true
	}
	return false
}

// str reads a string and returns its raw contents (escapes left as they are) and whether it
// holds any escape.
func (s *scanner) str() (raw []byte, escaped bool, err error) {
	if err := s.expect('"'); err != nil {
		return nil, false, err
	}
	start := s.i
	for {
		j := bytes.IndexByte(s.b[s.i:], '"')
		if j < 0 {
			s.i = start - 1
			return nil, false, s.fail("unterminated string")
		}
		end := s.i + j
		// The quote is escaped when an odd number of backslashes precede it.
		k := end
		for k > start && s.b[k-1] == '\\' {
			k--
		}
		if (end-k)%2 == 1 {
			escaped = true
			s.i = end + 1
			continue
		}
		raw = s.b[start:end]
		s.i = end + 1
		if !escaped && bytes.IndexByte(raw, '\\') >= 0 {
			escaped = true
		}
		if hasControl(raw) {
			s.i = start - 1
			return nil, false, s.fail("control character in string")
		}
		return raw, escaped, nil
	}
}

// hasControl reports whether b holds a byte below 0x20, eight bytes at a time: strings here
// are mostly long hex (a receipt's bloom alone is 514 characters), and this check was the
// scanner's largest cost byte by byte. A word has a byte below n (n <= 0x80) exactly when
// (x - n*0x0101..) & ^x & 0x8080.. is non-zero.
func hasControl(b []byte) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for len(b) >= 8 {
		x := binary.LittleEndian.Uint64(b)
		if (x-0x20*ones)&^x&highs != 0 {
			return true
		}
		b = b[8:]
	}
	for _, c := range b {
		if c < 0x20 {
			return true
		}
	}
	return false
}

// hexStr reads a string that must not hold escapes (hex data never does).
func (s *scanner) hexStr() ([]byte, error) {
	at := s.i
	raw, esc, err := s.str()
	if err != nil {
		return nil, err
	}
	if esc {
		s.i = at
		return nil, s.fail("escape in a hex string")
	}
	return raw, nil
}

// object calls field for each key; field must consume the value (skip it if unwanted).
func (s *scanner) object(field func(key []byte) error) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		key, _, err := s.str()
		if err != nil {
			return err
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		if err := field(key); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
			s.ws()
		case '}':
			s.i++
			return nil
		default:
			return s.fail("expected ',' or '}' in object")
		}
	}
}

// array calls elem for each element; elem must consume it.
func (s *scanner) array(elem func() error) error {
	if err := s.expect('['); err != nil {
		return err
	}
	if s.peek() == ']' {
		s.i++
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return s.fail("expected ',' or ']' in array")
		}
	}
}

// skip consumes any value, checking its grammar.
func (s *scanner) skip() error {
	switch c := s.peek(); {
	case c == '"':
		_, _, err := s.str()
		return err
	case c == '{':
		return s.object(func([]byte) error { return s.skip() })
	case c == '[':
		return s.array(s.skip)
	case c == 't':
		return s.word("true")
	case c == 'f':
		return s.word("false")
	case c == 'n':
		return s.word("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	default:
		return s.fail("expected a value")
	}
}

func (s *scanner) word(w string) error {
	if !bytes.HasPrefix(s.b[s.i:], []byte(w)) {
		return s.fail("bad literal")
	}
	s.i += len(w)
	return nil
}

// number consumes a number as JSON writes it: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() error {
	b, i := s.b, s.i
	digits := func() bool {
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i > start
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		return s.fail("bad number")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return s.fail("bad number")
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return s.fail("bad number")
		}
	}
	s.i = i
	return nil
}

// raw consumes a value and returns its bytes.
func (s *scanner) raw() ([]byte, error) {
	s.ws()
	start := s.i
	if err := s.skip(); err != nil {
		return nil, err
	}
	return s.b[start:s.i], nil
}

// end checks that nothing but space follows.
func (s *scanner) end() error {
	if s.peek() != 0 {
		return s.fail("trailing data")
	}
	return nil
}

// Hex field decoders. name labels errors.

func hexPrefixed(raw []byte) ([]byte, bool) {
	if len(raw) < 2 || raw[0] != '0' || (raw[1] != 'x' && raw[1] != 'X') {
		return nil, false
	}
	return raw[2:], true
}

// hexFixed decodes exactly len(dst) bytes.
func hexFixed(dst, raw []byte, name string) error {
	h, ok := hexPrefixed(raw)
	if !ok || len(h) != 2*len(dst) {
		return fmt.Errorf("%w %s: %q", errLogField, name, truncate(string(raw), 80))
	}
	if _, err := hex.Decode(dst, h); err != nil {
		return fmt.Errorf("%w %s: %v", errLogField, name, err)
	}
	return nil
}

// hexData decodes a byte string of any even length.
func hexData(raw []byte, name string) ([]byte, error) {
	h, err := hexDigits(raw, name)
	if err != nil {
		return nil, err
	}
	return decodeHex(make([]byte, len(h)/2), h, name)
}

// hexDigits returns the digits of 0x-prefixed hex data of whole bytes.
func hexDigits(raw []byte, name string) ([]byte, error) {
	h, ok := hexPrefixed(raw)
	if !ok || len(h)%2 != 0 {
		return nil, fmt.Errorf("%w %s: %q", errLogField, name, truncate(string(raw), 20))
	}
	return h, nil
}

// decodeHex decodes the digits h into out, which holds len(h)/2 bytes.
func decodeHex(out, h []byte, name string) ([]byte, error) {
	if _, err := hex.Decode(out, h); err != nil {
		return nil, fmt.Errorf("%w %s: %v", errLogField, name, err)
	}
	return out, nil
}

// hexUint decodes a quantity that fits 64 bits.
func hexUint(raw []byte, name string) (uint64, error) {
	h, ok := hexPrefixed(raw)
	if !ok || len(h) == 0 || len(h) > 16 {
		return 0, fmt.Errorf("%w %s: %q", errLogField, name, truncate(string(raw), 40))
	}
	var n uint64
	for _, c := range h {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, fmt.Errorf("%w %s: %q", errLogField, name, truncate(string(raw), 40))
		}
		n = n<<4 | uint64(d)
	}
	return n, nil
}

// hexBig decodes a quantity of any size.
func hexBig(raw []byte, name string) (*big.Int, error) {
	h, ok := hexPrefixed(raw)
	if !ok || len(h) == 0 || len(h) > 64 {
		return nil, fmt.Errorf("%w %s: %q", errLogField, name, truncate(string(raw), 80))
	}
	if len(h) <= 16 {
		n, err := hexUint(raw, name)
		if err != nil {
			return nil, err
		}
		return new(big.Int).SetUint64(n), nil
	}
	v, ok := new(big.Int).SetString(string(h), 16)
	if !ok {
		return nil, fmt.Errorf("%w %s: %q", errLogField, name, truncate(string(raw), 80))
	}
	return v, nil
}

// hexInto reads a hex string of exactly len(dst) bytes.
func (s *scanner) hexInto(dst []byte, name string) error {
	raw, err := s.hexStr()
	if err != nil {
		return err
	}
	return hexFixed(dst, raw, name)
}

// optUint reads a quantity or null (left as is).
func (s *scanner) optUint(dst *uint64, name string) error {
	if s.null() {
		return nil
	}
	raw, err := s.hexStr()
	if err != nil {
		return err
	}
	*dst, err = hexUint(raw, name)
	return err
}

// optBig reads a quantity or null (left as is).
func (s *scanner) optBig(dst **big.Int, name string) error {
	if s.null() {
		return nil
	}
	raw, err := s.hexStr()
	if err != nil {
		return err
	}
	*dst, err = hexBig(raw, name)
	return err
}
