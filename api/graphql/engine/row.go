package engine

import (
	"encoding/binary"
	"strconv"

	gql "github.com/graph-gophers/graphql-go"

	"github.com/echain/echain-indexer/schema"
)

// Row is one result row as a generated resolver reads it: column i (its index in the type's
// Columns) decoded straight into the field's Go type, without boxing. A column the query did not
// read, or NULL, reads as the zero value (nil for the Opt forms).
type Row struct {
	e    *entity
	raw  [][]byte
	fmts []int16 // wire format per result position
	pos  []int   // column index -> result position, -1 when not read
}

func (r *Row) at(i int) ([]byte, int16) {
	p := r.pos[i]
	if p < 0 {
		return nil, 0
	}
	return r.raw[p], r.fmts[p]
}

// Value decodes column i generically (lists use it).
func (r *Row) Value(i int) any {
	raw, f := r.at(i)
	v, _ := decodeValue(r.e.Columns[i], f, raw)
	return v
}

// String reads a String (or reference id) column.
func (r *Row) String(i int) string {
	raw, _ := r.at(i)
	return string(raw)
}

// OptString reads a nullable String column.
func (r *Row) OptString(i int) *string {
	raw, _ := r.at(i)
	if raw == nil {
		return nil
	}
	s := string(raw)
	return &s
}

// ID reads an ID column.
func (r *Row) ID(i int) gql.ID { return gql.ID(r.String(i)) }

// OptID reads a nullable ID column.
func (r *Row) OptID(i int) *gql.ID {
	raw, _ := r.at(i)
	if raw == nil {
		return nil
	}
	s := gql.ID(raw)
	return &s
}

// Bool reads a Boolean column.
func (r *Row) Bool(i int) bool {
	raw, f := r.at(i)
	if f == 1 {
		return len(raw) == 1 && raw[0] != 0
	}
	return len(raw) > 0 && (raw[0] == 't' || raw[0] == 'T')
}

// OptBool reads a nullable Boolean column.
func (r *Row) OptBool(i int) *bool {
	raw, _ := r.at(i)
	if raw == nil {
		return nil
	}
	b := r.Bool(i)
	return &b
}

// Int reads an Int column.
func (r *Row) Int(i int) int32 {
	raw, f := r.at(i)
	if f == 1 && len(raw) == 4 {
		return int32(binary.BigEndian.Uint32(raw))
	}
	n, _ := strconv.ParseInt(string(raw), 10, 32)
	return int32(n)
}

// OptInt reads a nullable Int column.
func (r *Row) OptInt(i int) *int32 {
	raw, _ := r.at(i)
	if raw == nil {
		return nil
	}
	n := r.Int(i)
	return &n
}

func (r *Row) int64s(i int) string {
	raw, f := r.at(i)
	if raw == nil {
		return ""
	}
	if f == 1 && len(raw) == 8 {
		return strconv.FormatInt(int64(binary.BigEndian.Uint64(raw)), 10)
	}
	return string(raw)
}

// Int8 reads an Int8 column.
func (r *Row) Int8(i int) Int8 { return Int8(r.int64s(i)) }

// OptInt8 reads a nullable Int8 column.
func (r *Row) OptInt8(i int) *Int8 {
	if raw, _ := r.at(i); raw == nil {
		return nil
	}
	v := r.Int8(i)
	return &v
}

// Timestamp reads a Timestamp column.
func (r *Row) Timestamp(i int) Timestamp { return Timestamp(r.int64s(i)) }

// OptTimestamp reads a nullable Timestamp column.
func (r *Row) OptTimestamp(i int) *Timestamp {
	if raw, _ := r.at(i); raw == nil {
		return nil
	}
	v := r.Timestamp(i)
	return &v
}

// BigInt reads a BigInt column (selected as text).
func (r *Row) BigInt(i int) BigInt { return BigInt(r.String(i)) }

// OptBigInt reads a nullable BigInt column.
func (r *Row) OptBigInt(i int) *BigInt {
	raw, _ := r.at(i)
	if raw == nil {
		return nil
	}
	v := BigInt(raw)
	return &v
}

// BigDecimal reads a BigDecimal column (selected as text).
func (r *Row) BigDecimal(i int) BigDecimal {
	raw, _ := r.at(i)
	if raw == nil {
		return ""
	}
	return BigDecimal(normalizeDecimal(string(raw)))
}

// OptBigDecimal reads a nullable BigDecimal column.
func (r *Row) OptBigDecimal(i int) *BigDecimal {
	if raw, _ := r.at(i); raw == nil {
		return nil
	}
	v := r.BigDecimal(i)
	return &v
}

// Bytes reads a Bytes column as lowercase 0x hex.
func (r *Row) Bytes(i int) Bytes {
	raw, f := r.at(i)
	if raw == nil {
		return ""
	}
	if f == 1 {
		return hexBytes(raw)
	}
	v, _ := decodeValue(r.e.Columns[i], f, raw)
	b, _ := v.(Bytes)
	return b
}

// OptBytes reads a nullable Bytes column.
func (r *Row) OptBytes(i int) *Bytes {
	if raw, _ := r.at(i); raw == nil {
		return nil
	}
	v := r.Bytes(i)
	return &v
}

// rowPositions maps column indexes to result positions for a load's columns.
func rowPositions(e *entity, lc *loadCols, off int) []int {
	pos := make([]int, len(e.Columns))
	for i := range pos {
		pos[i] = -1
	}
	for j, c := range lc.cols {
		pos[c] = j + off
	}
	return pos
}

// keyed reports whether the engine keeps column f of a node: the id and references, which
// batched loads follow.
func keyed(f *schema.Field, i int) bool { return i == 0 || f.Kind == schema.KindEntity && !f.List }
