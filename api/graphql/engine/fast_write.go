package engine

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"

	gql "github.com/graph-gophers/graphql-go"

	"github.com/echain/echain-indexer/schema"
)

// write renders the data object as graphql-go does.
func (x *fastExec) write(op *fastOp, meta *Meta) ([]byte, error) {
	buf := make([]byte, 0, max(512, op.size.Load()*5/4))
	defer func() { op.size.Store(int64(len(buf))) }()
	buf = append(buf, '{')
	for i, f := range op.root {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendKey(buf, f.key)
		var err error
		switch f.kind {
		case fkTypename:
			buf = appendJSONString(buf, f.typename)
		case fkMeta:
			buf, err = x.writeMeta(buf, f, meta)
		case fkOne:
			g := x.groups[f]
			if len(g.rows) == 0 {
				buf = append(buf, "null"...)
			} else {
				buf, err = x.writeEntity(buf, f, g, g.rows[0])
			}
		case fkList:
			g := x.groups[f]
			buf, err = x.writeList(buf, f, g, g.rows)
		default:
			err = notFast("root kind")
		}
		if err != nil {
			return nil, err
		}
	}
	return append(buf, '}'), nil
}

// errTooBig stops the writer once the answer passes max_response_bytes.
type errTooBig struct{ n int }

func (e errTooBig) Error() string { return fmt.Sprintf("response over %d bytes", e.n) }

func appendKey(buf []byte, key string) []byte {
	buf = append(buf, '"')
	buf = append(buf, key...)
	return append(buf, '"', ':')
}

func (x *fastExec) writeList(buf []byte, f *fastField, g *fastGroup, rows []*fastRow) ([]byte, error) {
	buf = append(buf, '[')
	for i, r := range rows {
		if len(buf) > x.s.e.opts.MaxResponseBytes {
			return nil, errTooBig{len(buf)} // stop writing: the answer is refused whole
		}
		if i > 0 {
			buf = append(buf, ',')
		}
		var err error
		if buf, err = x.writeEntity(buf, f, g, r); err != nil {
			return nil, err
		}
	}
	return append(buf, ']'), nil
}

func (x *fastExec) writeEntity(buf []byte, f *fastField, g *fastGroup, r *fastRow) ([]byte, error) {
	row := Row{e: g.e, raw: r.raw, fmts: g.fmts, pos: g.pos}
	buf = append(buf, '{')
	for i, c := range f.children {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendKey(buf, c.key)
		switch c.kind {
		case fkTypename:
			buf = appendJSONString(buf, c.typename)
		case fkScalar:
			var ok bool
			if buf, ok = appendField(buf, c.f, c.col, &row, r.id); !ok {
				return nil, notFast("list element")
			}
		case fkRef:
			raw, _ := row.at(c.col)
			var target *fastRow
			cg := x.groups[c]
			if raw != nil && cg != nil {
				target = cg.one[string(raw)]
			}
			if target == nil {
				if c.f.NonNull {
					return nil, notFast("missing non-null reference")
				}
				buf = append(buf, "null"...)
				continue
			}
			var err error
			if buf, err = x.writeEntity(buf, c, cg, target); err != nil {
				return nil, err
			}
		case fkDerived:
			cg := x.groups[c]
			var rows []*fastRow
			if cg != nil {
				rows = cg.by[r.id]
			}
			var err error
			if buf, err = x.writeList(buf, c, cg, rows); err != nil {
				return nil, err
			}
		default:
			return nil, notFast("entity field kind")
		}
	}
	return append(buf, '}'), nil
}

func (x *fastExec) writeMeta(buf []byte, f *fastField, m *Meta) ([]byte, error) {
	buf = append(buf, '{')
	for i, c := range f.children {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendKey(buf, c.key)
		switch c.kind {
		case fkTypename:
			buf = appendJSONString(buf, c.typename)
		case fkMetaDeployment:
			buf = appendJSONString(buf, m.deployment)
		case fkMetaErrors:
			buf = strconv.AppendBool(buf, m.errors)
		case fkMetaBlock:
			mb := m.Block()
			buf = append(buf, '{')
			for j, bc := range c.children {
				if j > 0 {
					buf = append(buf, ',')
				}
				buf = appendKey(buf, bc.key)
				switch bc.kind {
				case fkTypename:
					buf = appendJSONString(buf, bc.typename)
				case fkBlockNumber:
					buf = strconv.AppendInt(buf, int64(mb.Number()), 10)
				case fkBlockHash:
					buf = appendOptString(buf, (*string)(mb.Hash()))
				case fkBlockParent:
					buf = appendOptString(buf, (*string)(mb.ParentHash()))
				case fkBlockTimestamp:
					if t := mb.Timestamp(); t != nil {
						buf = strconv.AppendInt(buf, int64(*t), 10)
					} else {
						buf = append(buf, "null"...)
					}
				}
			}
			buf = append(buf, '}')
		default:
			return nil, notFast("meta field")
		}
	}
	return append(buf, '}'), nil
}

func appendOptString(buf []byte, s *string) []byte {
	if s == nil {
		return append(buf, "null"...)
	}
	return appendJSONString(buf, *s)
}

// appendField writes a scalar column as graphql-go writes the generated resolver's value
// (codegen.valueExpr): json.Marshal of the Go value, strconv quoting for IDs (gql.ID's
// MarshalJSON).
func appendField(buf []byte, f *schema.Field, ci int, r *Row, id string) ([]byte, bool) {
	if ci == 0 {
		return appendQuoted(buf, id), true
	}
	if !f.List {
		raw, format := r.at(ci)
		if raw == nil && !f.NonNull {
			return append(buf, "null"...), true
		}
		switch f.Kind {
		case schema.KindID:
			return appendQuoted(buf, raw), true
		case schema.KindString:
			return appendJSONString(buf, raw), true
		case schema.KindBoolean:
			return strconv.AppendBool(buf, r.Bool(ci)), true
		case schema.KindInt:
			return strconv.AppendInt(buf, int64(r.Int(ci)), 10), true
		case schema.KindInt8, schema.KindTimestamp:
			return appendJSONString(buf, r.int64s(ci)), true
		case schema.KindBigInt:
			return appendJSONString(buf, raw), true
		case schema.KindBigDecimal:
			return appendJSONString(buf, string(r.BigDecimal(ci))), true
		case schema.KindBytes:
			if format == 1 { // lowercase 0x hex, what hexBytes makes
				buf = append(buf, '"', '0', 'x')
				buf = hex.AppendEncode(buf, raw)
				return append(buf, '"'), true
			}
			return appendJSONString(buf, string(r.Bytes(ci))), true
		}
		return buf, false
	}
	v := r.Value(ci)
	if v == nil && !f.NonNull {
		return append(buf, "null"...), true
	}
	l, _ := v.([]any)
	buf = append(buf, '[')
	for i, el := range l {
		if i > 0 {
			buf = append(buf, ',')
		}
		if el == nil {
			if !f.ElemNonNull {
				buf = append(buf, "null"...)
				continue
			}
			el = zeroOf(f.Kind) // engine.List keeps the element type's zero value
		}
		var ok bool
		if buf, ok = appendElem(buf, el); !ok {
			return buf, false
		}
	}
	return append(buf, ']'), true
}

func zeroOf(k schema.Kind) any {
	switch k {
	case schema.KindBoolean:
		return false
	case schema.KindInt:
		return int32(0)
	case schema.KindID:
		return gql.ID("")
	}
	return ""
}

func appendElem(buf []byte, v any) ([]byte, bool) {
	switch x := v.(type) {
	case bool:
		return strconv.AppendBool(buf, x), true
	case int32:
		return strconv.AppendInt(buf, int64(x), 10), true
	case string:
		return appendJSONString(buf, x), true
	case gql.ID:
		return strconv.AppendQuote(buf, string(x)), true
	case BigInt:
		return appendJSONString(buf, string(x)), true
	case BigDecimal:
		return appendJSONString(buf, string(x)), true
	case Bytes:
		return appendJSONString(buf, string(x)), true
	case Int8:
		return appendJSONString(buf, string(x)), true
	case Timestamp:
		return appendJSONString(buf, string(x)), true
	}
	return buf, false
}

// appendJSONString writes s as encoding/json does (HTML-safe escaping, invalid UTF-8 replaced):
// directly when it needs no escaping, else through encoding/json.
func appendJSONString[T string | []byte](buf []byte, s T) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(string(s))
			return append(buf, b...)
		}
	}
	buf = append(buf, '"')
	buf = append(buf, s...)
	return append(buf, '"')
}

// appendQuoted writes s as strconv.AppendQuote does (gql.ID's MarshalJSON): directly when it
// is printable ASCII needing no escape.
func appendQuoted[T string | []byte](buf []byte, s T) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return strconv.AppendQuote(buf, string(s))
		}
	}
	buf = append(buf, '"')
	buf = append(buf, s...)
	return append(buf, '"')
}
