package store

import (
	"fmt"
	"math/big"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/echain/echain-indexer/schema"
	"github.com/echain/echain-indexer/store/ddl"
)

// codec converts one column between its store.Row value (docs/ARCHITECTURE.md) and PostgreSQL.
type codec struct {
	f        *schema.Field
	nullable bool
	// normalize checks a non-null Row value and returns the value the store keeps: strings lose
	// what PostgreSQL text cannot hold, decimals get their canonical text. It returns an error
	// naming the expected Go type. A value kept as it is comes back as the same interface: boxing
	// a string or a []byte again allocates, and a backfill sets millions of them.
	normalize func(v any) (any, error)
	// appendBinary appends a normalized non-null value in COPY's binary format, length first.
	appendBinary func(buf []byte, v any) ([]byte, error)
	// param turns a normalized non-null value into a pgx query parameter (small commits
	// INSERT instead of COPY).
	param func(v any) (any, error)
	// sel is the select-list expression.
	sel string
	// decode turns what pgx returns for sel (rows.Values) into the Row value.
	decode func(v any) (any, error)
}

func newCodec(f *schema.Field) *codec {
	c := &codec{f: f, nullable: !f.NonNull, sel: ddl.Quote(f.Column), appendBinary: columnBinary(f), param: paramOf(f)}
	type conv struct {
		norm func(any) (any, bool, error) // (value, ok type, error)
		dec  func(any) (any, error)
	}
	var one conv
	switch f.Kind {
	case schema.KindBytes:
		one = conv{
			norm: func(v any) (any, bool, error) { _, ok := v.([]byte); return v, ok, nil },
			dec:  func(v any) (any, error) { return typed[[]byte](v) },
		}
	case schema.KindBigInt:
		one = conv{
			norm: func(v any) (any, bool, error) { _, ok := v.(*big.Int); return v, ok, nil },
			dec:  decodeBigInt,
		}
	case schema.KindBigDecimal:
		// Read back as text: the canonical form normalize produced.
		if f.List {
			c.sel += "::text[]"
		} else {
			c.sel += "::text"
		}
		one = conv{
			norm: func(v any) (any, bool, error) {
				s, ok := v.(string)
				if !ok {
					return nil, false, nil
				}
				n, err := parseDecimal(s)
				if err != nil {
					return nil, true, err
				}
				return formatDecimal(n), true, nil
			},
			dec: func(v any) (any, error) { return typed[string](v) },
		}
	case schema.KindInt:
		one = conv{
			norm: func(v any) (any, bool, error) { _, ok := v.(int32); return v, ok, nil },
			dec:  func(v any) (any, error) { return typed[int32](v) },
		}
	case schema.KindInt8, schema.KindTimestamp:
		one = conv{
			norm: func(v any) (any, bool, error) { _, ok := v.(int64); return v, ok, nil },
			dec:  func(v any) (any, error) { return typed[int64](v) },
		}
	case schema.KindBoolean:
		one = conv{
			norm: func(v any) (any, bool, error) { _, ok := v.(bool); return v, ok, nil },
			dec:  func(v any) (any, error) { return typed[bool](v) },
		}
	default: // ID, String, entity references
		one = conv{
			norm: func(v any) (any, bool, error) {
				s, ok := v.(string)
				if !ok {
					return nil, false, nil
				}
				if c := cleanText(s); c != s {
					return c, true, nil
				}
				return v, true, nil
			},
			dec: func(v any) (any, error) { return typed[string](v) },
		}
	}
	want := wantType(f)
	if !f.List {
		c.normalize = func(v any) (any, error) {
			out, ok, err := one.norm(v)
			if !ok {
				return nil, fmt.Errorf("got %T, want %s", v, want)
			}
			return out, err
		}
		c.decode = one.dec
		return c
	}
	// Lists: the Row holds a []T; elements are never null.
	c.normalize = func(v any) (any, error) {
		switch f.Kind {
		case schema.KindBytes:
			return normList[[]byte](v, want, one.norm)
		case schema.KindBigInt:
			return normList[*big.Int](v, want, one.norm)
		case schema.KindInt:
			return normList[int32](v, want, one.norm)
		case schema.KindInt8, schema.KindTimestamp:
			return normList[int64](v, want, one.norm)
		case schema.KindBoolean:
			return normList[bool](v, want, one.norm)
		default:
			return normList[string](v, want, one.norm)
		}
	}
	c.decode = func(v any) (any, error) {
		xs, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("column %s: got %T from PostgreSQL, want an array", f.Column, v)
		}
		switch f.Kind {
		case schema.KindBytes:
			return decList[[]byte](xs, one.dec)
		case schema.KindBigInt:
			return decList[*big.Int](xs, one.dec)
		case schema.KindInt:
			return decList[int32](xs, one.dec)
		case schema.KindInt8, schema.KindTimestamp:
			return decList[int64](xs, one.dec)
		case schema.KindBoolean:
			return decList[bool](xs, one.dec)
		default:
			return decList[string](xs, one.dec)
		}
	}
	return c
}

func typed[T any](v any) (any, error) {
	x, ok := v.(T)
	if !ok {
		var z T
		return nil, fmt.Errorf("got %T from PostgreSQL, want %T", v, z)
	}
	return x, nil
}

// wantType names the Go type a Row holds for the field (error messages).
func wantType(f *schema.Field) string {
	var t string
	switch f.Kind {
	case schema.KindBytes:
		t = "[]byte"
	case schema.KindBigInt:
		t = "*big.Int"
	case schema.KindBigDecimal:
		t = "string (decimal)"
	case schema.KindInt:
		t = "int32"
	case schema.KindInt8, schema.KindTimestamp:
		t = "int64"
	case schema.KindBoolean:
		t = "bool"
	default:
		t = "string"
	}
	if f.List {
		return "[]" + t
	}
	return t
}

func normList[T any](v any, want string, norm func(any) (any, bool, error)) (any, error) {
	xs, ok := v.([]T)
	if !ok {
		return nil, fmt.Errorf("got %T, want %s", v, want)
	}
	var out []T
	for i, x := range xs {
		if isNull(x) {
			return nil, fmt.Errorf("element %d is nil: list elements cannot be null", i)
		}
		n, _, err := norm(x)
		if err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
		if nt := n.(T); out != nil || !same(nt, x) {
			if out == nil {
				out = make([]T, len(xs))
				copy(out, xs[:i])
			}
			out[i] = nt
		}
	}
	if out == nil {
		return xs, nil
	}
	return out, nil
}

// same reports whether normalizing left a string or decimal unchanged (other kinds always are).
func same[T any](a, b T) bool {
	as, ok1 := any(a).(string)
	bs, ok2 := any(b).(string)
	return !ok1 || !ok2 || as == bs
}

func decList[T any](xs []any, dec func(any) (any, error)) (any, error) {
	out := make([]T, len(xs))
	for i, x := range xs {
		v, err := dec(x)
		if err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
		out[i] = v.(T)
	}
	return out, nil
}

// isNull treats nil and typed nil pointers and slices as null: a Row may carry a (*big.Int)(nil)
// or a []byte(nil) for a missing value.
func isNull(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case *big.Int:
		return x == nil
	case []byte:
		return x == nil
	}
	return false
}

// cleanText makes a string storable as PostgreSQL text: NUL characters are dropped and invalid
// UTF-8 becomes U+FFFD (chain data is arbitrary bytes; graph-node drops NULs the same way).
func cleanText(s string) string {
	if strings.IndexByte(s, 0) < 0 && utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
}

func decodeBigInt(v any) (any, error) {
	n, ok := v.(pgtype.Numeric)
	if !ok {
		return nil, fmt.Errorf("got %T from PostgreSQL, want numeric", v)
	}
	if !n.Valid || n.NaN || n.InfinityModifier != pgtype.Finite {
		return nil, fmt.Errorf("numeric %v is not an integer", v)
	}
	x := new(big.Int).Set(n.Int)
	switch {
	case n.Exp > 0:
		x.Mul(x, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n.Exp)), nil))
	case n.Exp < 0:
		d := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(-n.Exp)), nil)
		q, r := new(big.Int).QuoRem(x, d, new(big.Int))
		if r.Sign() != 0 {
			return nil, fmt.Errorf("numeric %s is not an integer", formatDecimal(n))
		}
		x = q
	}
	return x, nil
}

// parseDecimal reads a BigDecimal value: [-+]digits[.digits][e[-+]digits].
func parseDecimal(s string) (pgtype.Numeric, error) {
	bad := func() (pgtype.Numeric, error) {
		return pgtype.Numeric{}, fmt.Errorf("%q is not a decimal number", s)
	}
	mant, exp := s, int64(0)
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant = s[:i]
		e, ok := new(big.Int).SetString(strings.TrimPrefix(s[i+1:], "+"), 10)
		if !ok || !e.IsInt64() || e.Int64() > 1<<14 || e.Int64() < -(1<<14) {
			return bad()
		}
		exp = e.Int64()
	}
	neg := false
	if len(mant) > 0 && (mant[0] == '-' || mant[0] == '+') {
		neg = mant[0] == '-'
		mant = mant[1:]
	}
	whole, frac, _ := strings.Cut(mant, ".")
	digits := whole + frac
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return bad()
	}
	n, ok := new(big.Int).SetString(digits, 10)
	if !ok {
		return bad()
	}
	if neg {
		n.Neg(n)
	}
	exp -= int64(len(frac))
	if exp < -(1<<14) || exp > 1<<14 {
		return bad()
	}
	return pgtype.Numeric{Int: n, Exp: int32(exp), Valid: true}, nil
}

// formatDecimal renders a numeric as PostgreSQL's numeric output does: plain notation with
// -Exp digits after the point.
func formatDecimal(n pgtype.Numeric) string {
	neg := n.Int.Sign() < 0
	d := new(big.Int).Abs(n.Int).String()
	if n.Exp >= 0 {
		if d != "0" {
			d += strings.Repeat("0", int(n.Exp))
		}
	} else {
		scale := int(-n.Exp)
		if len(d) <= scale {
			d = strings.Repeat("0", scale-len(d)+1) + d
		}
		d = d[:len(d)-scale] + "." + d[len(d)-scale:]
	}
	if neg && strings.Trim(d, "0.") != "" {
		d = "-" + d
	}
	return d
}

// paramOf returns the converter of a normalized value to a query parameter pgx encodes into the
// column's type.
func paramOf(f *schema.Field) func(any) (any, error) {
	switch f.Kind {
	case schema.KindBigInt:
		if f.List {
			return func(v any) (any, error) {
				xs := v.([]*big.Int)
				out := make([]pgtype.Numeric, len(xs))
				for i, x := range xs {
					out[i] = pgtype.Numeric{Int: x, Valid: true}
				}
				return out, nil
			}
		}
		return func(v any) (any, error) { return pgtype.Numeric{Int: v.(*big.Int), Valid: true}, nil }
	case schema.KindBigDecimal:
		if f.List {
			return func(v any) (any, error) {
				xs := v.([]string)
				out := make([]pgtype.Numeric, len(xs))
				for i, x := range xs {
					n, err := parseDecimal(x)
					if err != nil {
						return nil, err
					}
					out[i] = n
				}
				return out, nil
			}
		}
		return func(v any) (any, error) { return parseDecimal(v.(string)) }
	}
	return func(v any) (any, error) { return v, nil }
}
