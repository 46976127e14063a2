package store

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/big"
	"strings"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/echain/echain-indexer/schema"
	"github.com/echain/echain-indexer/store/ddl"
)

// The versions of a commit go to PostgreSQL as one binary COPY stream per table, written here
// straight from the Row values. pgx's generic CopyFrom boxes every value, looks an encode plan up
// for it and allocates per row; for the ~20 columns of a Ticket that was most of the client's
// time in a flush. The format is PostgreSQL's (COPY ... FORMAT binary): a header, then per row a
// field count and each field as a length and its binary send representation.

var copyHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// Element type oids of the array columns.
var elemOID = map[schema.Kind]uint32{
	schema.KindID: pgtype.TextOID, schema.KindString: pgtype.TextOID, schema.KindEntity: pgtype.TextOID,
	schema.KindBytes: pgtype.ByteaOID, schema.KindBigInt: pgtype.NumericOID, schema.KindBigDecimal: pgtype.NumericOID,
	schema.KindInt: pgtype.Int4OID, schema.KindInt8: pgtype.Int8OID, schema.KindTimestamp: pgtype.Int8OID,
	schema.KindBoolean: pgtype.BoolOID,
}

// copySQL is the COPY statement of a table.
func (t *table) copySQL() string {
	cols := make([]string, len(t.copyCols))
	for i, c := range t.copyCols {
		cols[i] = ddl.Quote(c)
	}
	return fmt.Sprintf("COPY %s (%s) FROM STDIN (FORMAT binary)", t.name, strings.Join(cols, ", "))
}

// writeCopy streams the rows to w in chunks.
func (t *table) writeCopy(w io.Writer, rows []out) error {
	const chunk = 256 << 10
	buf := make([]byte, 0, chunk+4096)
	buf = append(buf, copyHeader...)
	nf := uint16(len(t.copyCols))
	var err error
	for _, o := range rows {
		buf = binary.BigEndian.AppendUint16(buf, nf)
		buf = appendField(buf, 8)
		buf = binary.BigEndian.AppendUint64(buf, uint64(o.vid))
		if t.typ.Immutable {
			buf = appendField(buf, 4)
			buf = binary.BigEndian.AppendUint32(buf, uint32(o.lower))
		} else {
			buf = appendRange(buf, o.lower, o.upper)
		}
		for i, cd := range t.codecs {
			v := o.row[i]
			if v == nil {
				buf = binary.BigEndian.AppendUint32(buf, 0xffffffff) // NULL
				continue
			}
			if buf, err = cd.appendBinary(buf, v); err != nil {
				return fmt.Errorf("%s %q field %s: %w", t.typ.Name, o.e.id, cd.f.Name, err)
			}
		}
		if len(buf) >= chunk {
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	buf = binary.BigEndian.AppendUint16(buf, 0xffff) // trailer
	_, err = w.Write(buf)
	return err
}

func appendField(buf []byte, n int) []byte { return binary.BigEndian.AppendUint32(buf, uint32(n)) }

// appendRange writes int4range [lower, upper) or [lower, ∞) when upper < 0.
func appendRange(buf []byte, lower, upper int64) []byte {
	const lbInc, ubInf = 0x02, 0x10
	if upper < 0 {
		buf = appendField(buf, 1+8)
		buf = append(buf, lbInc|ubInf)
		buf = appendField(buf, 4)
		return binary.BigEndian.AppendUint32(buf, uint32(lower))
	}
	buf = appendField(buf, 1+16)
	buf = append(buf, lbInc)
	buf = appendField(buf, 4)
	buf = binary.BigEndian.AppendUint32(buf, uint32(lower))
	buf = appendField(buf, 4)
	return binary.BigEndian.AppendUint32(buf, uint32(upper))
}

// withLength reserves a length word, appends the value, and fills the length in.
func withLength(buf []byte, fill func([]byte) ([]byte, error)) ([]byte, error) {
	at := len(buf)
	buf = append(buf, 0, 0, 0, 0)
	buf, err := fill(buf)
	if err != nil {
		return buf, err
	}
	binary.BigEndian.PutUint32(buf[at:], uint32(len(buf)-at-4))
	return buf, nil
}

// scalarBinary returns the appender of one non-null value of the kind (without its length).
func scalarBinary(k schema.Kind) func([]byte, any) ([]byte, error) {
	switch k {
	case schema.KindBytes:
		return func(b []byte, v any) ([]byte, error) { return append(b, v.([]byte)...), nil }
	case schema.KindBigInt:
		return func(b []byte, v any) ([]byte, error) { return appendNumericBig(b, v.(*big.Int)) }
	case schema.KindBigDecimal:
		return func(b []byte, v any) ([]byte, error) {
			n, err := parseDecimal(v.(string))
			if err != nil {
				return b, err
			}
			return pgtype.NumericCodec{}.PlanEncode(nil, pgtype.NumericOID, pgtype.BinaryFormatCode, n).Encode(n, b)
		}
	case schema.KindInt:
		return func(b []byte, v any) ([]byte, error) { return binary.BigEndian.AppendUint32(b, uint32(v.(int32))), nil }
	case schema.KindInt8, schema.KindTimestamp:
		return func(b []byte, v any) ([]byte, error) { return binary.BigEndian.AppendUint64(b, uint64(v.(int64))), nil }
	case schema.KindBoolean:
		return func(b []byte, v any) ([]byte, error) {
			if v.(bool) {
				return append(b, 1), nil
			}
			return append(b, 0), nil
		}
	default: // text: the normalized Row value is valid UTF-8 without NUL
		return func(b []byte, v any) ([]byte, error) { return append(b, v.(string)...), nil }
	}
}

// columnBinary returns the appender of a column value, length included.
func columnBinary(f *schema.Field) func([]byte, any) ([]byte, error) {
	one := scalarBinary(f.Kind)
	if !f.List {
		return func(b []byte, v any) ([]byte, error) {
			return withLength(b, func(b []byte) ([]byte, error) { return one(b, v) })
		}
	}
	oid := elemOID[f.Kind]
	return func(b []byte, v any) ([]byte, error) {
		return withLength(b, func(b []byte) ([]byte, error) {
			n := listLen(v)
			if n == 0 {
				b = binary.BigEndian.AppendUint32(b, 0) // no dimensions
				b = binary.BigEndian.AppendUint32(b, 0) // no nulls
				return binary.BigEndian.AppendUint32(b, oid), nil
			}
			b = binary.BigEndian.AppendUint32(b, 1)
			b = binary.BigEndian.AppendUint32(b, 0)
			b = binary.BigEndian.AppendUint32(b, oid)
			b = binary.BigEndian.AppendUint32(b, uint32(n))
			b = binary.BigEndian.AppendUint32(b, 1) // lower bound
			var err error
			for i := range n {
				if b, err = withLength(b, func(b []byte) ([]byte, error) { return one(b, listAt(v, i)) }); err != nil {
					return b, err
				}
			}
			return b, nil
		})
	}
}

func listLen(v any) int {
	switch x := v.(type) {
	case []string:
		return len(x)
	case [][]byte:
		return len(x)
	case []*big.Int:
		return len(x)
	case []int32:
		return len(x)
	case []int64:
		return len(x)
	case []bool:
		return len(x)
	}
	panic(fmt.Sprintf("store: %T is not a list value", v))
}

func listAt(v any, i int) any {
	switch x := v.(type) {
	case []string:
		return x[i]
	case [][]byte:
		return x[i]
	case []*big.Int:
		return x[i]
	case []int32:
		return x[i]
	case []int64:
		return x[i]
	case []bool:
		return x[i]
	}
	panic(fmt.Sprintf("store: %T is not a list value", v))
}

// appendNumericBig writes a BigInt in numeric's binary form: 64-bit magnitudes directly, larger
// ones through pgx's general encoder.
func appendNumericBig(b []byte, v *big.Int) ([]byte, error) {
	if v.IsUint64() || (v.Sign() < 0 && v.IsInt64()) {
		return appendNumericUint(b, v), nil
	}
	return pgtype.NumericCodec{}.PlanEncode(nil, pgtype.NumericOID, pgtype.BinaryFormatCode, pgtype.Numeric{}).
		Encode(pgtype.Numeric{Int: v, Valid: true}, b)
}
