package engine

import (
	"encoding/hex"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
)

// The custom scalars of The Graph's dialect. Values are kept in the form a subgraph sends them,
// so that rendering a row is a copy: BigInt, BigDecimal, Int8 and Timestamp as decimal text,
// Bytes as lowercase 0x hex.

// BigInt is an arbitrary precision integer, sent as a decimal string.
type BigInt string

// BigDecimal is an arbitrary precision decimal, sent as a decimal string.
type BigDecimal string

// Bytes is a byte string, sent as lowercase 0x hex.
type Bytes string

// Int8 is a 64-bit integer, sent as a decimal string (JSON numbers lose precision past 2^53).
type Int8 string

// Timestamp is microseconds since the epoch, sent as a decimal string.
type Timestamp string

// ImplementsGraphQLType maps the Go type to its GraphQL scalar.
func (BigInt) ImplementsGraphQLType(name string) bool { return name == "BigInt" }

// ImplementsGraphQLType maps the Go type to its GraphQL scalar.
func (BigDecimal) ImplementsGraphQLType(name string) bool { return name == "BigDecimal" }

// ImplementsGraphQLType maps the Go type to its GraphQL scalar.
func (Bytes) ImplementsGraphQLType(name string) bool { return name == "Bytes" }

// ImplementsGraphQLType maps the Go type to its GraphQL scalar.
func (Int8) ImplementsGraphQLType(name string) bool { return name == "Int8" }

// ImplementsGraphQLType maps the Go type to its GraphQL scalar.
func (Timestamp) ImplementsGraphQLType(name string) bool { return name == "Timestamp" }

// UnmarshalGraphQL accepts a decimal string or an integer.
func (b *BigInt) UnmarshalGraphQL(in any) error {
	s, err := coerceBigInt(in)
	*b = BigInt(s)
	return err
}

// UnmarshalGraphQL accepts a decimal string or a number.
func (b *BigDecimal) UnmarshalGraphQL(in any) error {
	s, err := coerceBigDecimal(in)
	*b = BigDecimal(s)
	return err
}

// UnmarshalGraphQL accepts hex with or without 0x, in either case.
func (b *Bytes) UnmarshalGraphQL(in any) error {
	raw, err := coerceBytes(in)
	*b = Bytes("0x" + hex.EncodeToString(raw))
	return err
}

// UnmarshalGraphQL accepts a decimal string or an integer.
func (i *Int8) UnmarshalGraphQL(in any) error {
	v, err := coerceInt64(in, "Int8")
	*i = Int8(strconv.FormatInt(v, 10))
	return err
}

// UnmarshalGraphQL accepts a decimal string or an integer.
func (t *Timestamp) UnmarshalGraphQL(in any) error {
	v, err := coerceInt64(in, "Timestamp")
	*t = Timestamp(strconv.FormatInt(v, 10))
	return err
}

// maxExactFloat is the largest integer a JSON number decoded as float64 holds exactly.
const maxExactFloat = 1 << 53

func coerceString(in any, typ string) (string, error) {
	switch v := in.(type) {
	case string:
		return v, nil
	case int32:
		if typ == "ID" {
			return strconv.FormatInt(int64(v), 10), nil
		}
	case int64:
		if typ == "ID" {
			return strconv.FormatInt(v, 10), nil
		}
	}
	return "", fmt.Errorf("%s value expected, got %s", typ, describe(in))
}

func coerceInt32(in any) (int32, error) {
	switch v := in.(type) {
	case int32:
		return v, nil
	case int64:
		if v >= math.MinInt32 && v <= math.MaxInt32 {
			return int32(v), nil
		}
	case int:
		if v >= math.MinInt32 && v <= math.MaxInt32 {
			return int32(v), nil
		}
	case float64:
		if v == math.Trunc(v) && v >= math.MinInt32 && v <= math.MaxInt32 {
			return int32(v), nil
		}
	}
	return 0, fmt.Errorf("Int value expected (32-bit signed integer), got %s", describe(in))
}

func coerceInt64(in any, typ string) (int64, error) {
	switch v := in.(type) {
	case int32:
		return int64(v), nil
	case int64:
		return v, nil
	case int:
		return int64(v), nil
	case float64:
		if v == math.Trunc(v) && math.Abs(v) <= maxExactFloat {
			return int64(v), nil
		}
	case string:
		n, err := strconv.ParseInt(v, 10, 64)
		if err == nil {
			return n, nil
		}
	}
	return 0, fmt.Errorf("%s value expected (64-bit signed integer), got %s", typ, describe(in))
}

func coerceBool(in any) (bool, error) {
	if b, ok := in.(bool); ok {
		return b, nil
	}
	return false, fmt.Errorf("Boolean value expected, got %s", describe(in))
}

// coerceBigInt returns the canonical decimal form of a BigInt input.
func coerceBigInt(in any) (string, error) {
	switch v := in.(type) {
	case string:
		n, ok := new(big.Int).SetString(v, 10)
		if ok {
			return n.String(), nil
		}
	case int32:
		return strconv.FormatInt(int64(v), 10), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case int:
		return strconv.Itoa(v), nil
	case float64:
		if v == math.Trunc(v) && math.Abs(v) <= maxExactFloat {
			return strconv.FormatInt(int64(v), 10), nil
		}
		return "", fmt.Errorf("BigInt value expected, got the number %v: send large or fractional values as decimal strings", v)
	}
	return "", fmt.Errorf("BigInt value expected (decimal string), got %s", describe(in))
}

var decimalRE = regexp.MustCompile(`^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,4})?$`)

// coerceBigDecimal returns a decimal text PostgreSQL's numeric accepts.
func coerceBigDecimal(in any) (string, error) {
	switch v := in.(type) {
	case string:
		if decimalRE.MatchString(v) {
			return v, nil
		}
	case int32:
		return strconv.FormatInt(int64(v), 10), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case int:
		return strconv.Itoa(v), nil
	case float64:
		if !math.IsInf(v, 0) && !math.IsNaN(v) {
			return strconv.FormatFloat(v, 'g', -1, 64), nil
		}
	}
	return "", fmt.Errorf("BigDecimal value expected (decimal string), got %s", describe(in))
}

// coerceBytes decodes hex text, with or without 0x.
func coerceBytes(in any) ([]byte, error) {
	s, ok := in.(string)
	if !ok {
		return nil, fmt.Errorf("Bytes value expected (0x hex string), got %s", describe(in))
	}
	h := strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	b, err := hex.DecodeString(h)
	if err != nil {
		return nil, fmt.Errorf("Bytes value expected (0x followed by an even number of hex digits), got %q", truncate(s, 80))
	}
	return b, nil
}

// normalizeDecimal renders numeric text the way a subgraph sends a BigDecimal: no trailing
// fractional zeros.
func normalizeDecimal(s string) string {
	if !strings.Contains(s, ".") {
		return s
	}
	s = strings.TrimRight(s, "0")
	s = strings.TrimSuffix(s, ".")
	if s == "" || s == "-" {
		return "0"
	}
	if s == "-0" {
		return "0"
	}
	return s
}

func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(truncate(x, 80))
	case bool:
		return strconv.FormatBool(x)
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	default:
		return fmt.Sprintf("%v", x)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
