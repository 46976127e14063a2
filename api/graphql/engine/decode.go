package engine

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"

	gql "github.com/graph-gophers/graphql-go"

	"github.com/echain/echain-indexer/schema"
)

// decodeValue turns one column of a result row (as selected by selectExpr) into the Go value a
// resolver returns. format is PostgreSQL's wire format of the column (0 text, 1 binary).
func decodeValue(f *schema.Field, format int16, raw []byte) (any, error) {
	if raw == nil {
		return nil, nil
	}
	if f.List {
		return decodeList(f, raw)
	}
	switch f.Kind {
	case schema.KindID:
		return gql.ID(raw), nil
	case schema.KindString, schema.KindEntity:
		return string(raw), nil
	case schema.KindBigInt:
		return BigInt(raw), nil
	case schema.KindBigDecimal:
		return BigDecimal(normalizeDecimal(string(raw))), nil
	case schema.KindBytes:
		if format == 1 {
			return hexBytes(raw), nil
		}
		// text form: \x followed by hex
		return Bytes("0x" + string(bytes.ToLower(bytes.TrimPrefix(raw, []byte(`\x`))))), nil
	case schema.KindInt:
		if format == 1 && len(raw) == 4 {
			return int32(binary.BigEndian.Uint32(raw)), nil
		}
		n, err := strconv.ParseInt(string(raw), 10, 32)
		return int32(n), err
	case schema.KindInt8, schema.KindTimestamp:
		var n int64
		if format == 1 && len(raw) == 8 {
			n = int64(binary.BigEndian.Uint64(raw))
		} else {
			var err error
			if n, err = strconv.ParseInt(string(raw), 10, 64); err != nil {
				return nil, err
			}
		}
		if f.Kind == schema.KindInt8 {
			return Int8(strconv.FormatInt(n, 10)), nil
		}
		return Timestamp(strconv.FormatInt(n, 10)), nil
	case schema.KindBoolean:
		if format == 1 && len(raw) == 1 {
			return raw[0] != 0, nil
		}
		return len(raw) > 0 && (raw[0] == 't' || raw[0] == 'T'), nil
	}
	return nil, fmt.Errorf("column %s: unsupported kind %s", f.Column, f.Kind)
}

func hexBytes(raw []byte) Bytes {
	buf := make([]byte, 2+hex.EncodedLen(len(raw)))
	buf[0], buf[1] = '0', 'x'
	hex.Encode(buf[2:], raw)
	return Bytes(buf)
}

// decodeList reads a list column selected as to_json(col)::text.
func decodeList(f *schema.Field, raw []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var items []any
	if err := d.Decode(&items); err != nil {
		return nil, fmt.Errorf("column %s: %w", f.Column, err)
	}
	out := make([]any, len(items))
	for i, it := range items {
		if it == nil {
			continue
		}
		v, err := decodeJSONElem(f.Kind, it)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", f.Column, err)
		}
		out[i] = v
	}
	return out, nil
}

func decodeJSONElem(k schema.Kind, it any) (any, error) {
	switch k {
	case schema.KindID:
		s, _ := it.(string)
		return gql.ID(s), nil
	case schema.KindString, schema.KindEntity:
		s, _ := it.(string)
		return s, nil
	case schema.KindBytes:
		s, _ := it.(string)
		if len(s) >= 2 && s[0] == '\\' && s[1] == 'x' {
			s = s[2:]
		}
		return Bytes("0x" + s), nil
	case schema.KindBoolean:
		b, _ := it.(bool)
		return b, nil
	}
	n, ok := it.(json.Number)
	if !ok {
		return nil, fmt.Errorf("number expected in list, got %T", it)
	}
	switch k {
	case schema.KindInt:
		v, err := strconv.ParseInt(n.String(), 10, 32)
		return int32(v), err
	case schema.KindInt8:
		return Int8(n.String()), nil
	case schema.KindTimestamp:
		return Timestamp(n.String()), nil
	case schema.KindBigInt:
		return BigInt(n.String()), nil
	case schema.KindBigDecimal:
		return BigDecimal(normalizeDecimal(n.String())), nil
	}
	return nil, fmt.Errorf("unsupported list kind %s", k)
}
