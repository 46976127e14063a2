package entity

// Hand-written helpers of the generated entity code (entity_gen.go): they do not depend on the
// schema, so they are not generated.

import (
	"bytes"
	"fmt"
	"math/big"
)

// value reads row[i] as T; null reports a NULL, which only a nullable field may hold.
func value[T any](row []any, i int, typ, field string, nullable bool) (v T, null bool, err error) {
	if row[i] == nil {
		if !nullable {
			return v, true, fmt.Errorf("entity: %s.%s is null but the schema says non-null", typ, field)
		}
		return v, true, nil
	}
	v, ok := row[i].(T)
	if !ok {
		return v, false, fmt.Errorf("entity: %s.%s holds %T, want %T", typ, field, row[i], v)
	}
	return v, false, nil
}

// bigWords is a big.Int with room for its words in the same allocation: 48 bytes, the size
// class a big.Int and a separately allocated word take together.
type bigWords struct {
	i big.Int
	w [2]big.Word
}

// cloneBig copies v; up to 128 bits (amounts, ids, times) in one allocation, not two: each Save
// and Load copies every BigInt field, and a backfill saves a few hundred thousand versions.
func cloneBig(v *big.Int) *big.Int {
	if v == nil {
		return nil
	}
	bits := v.Bits()
	if len(bits) == 0 || len(bits) > len(bigWords{}.w) {
		return new(big.Int).Set(v)
	}
	c := new(bigWords)
	c.i.SetBits(c.w[:copy(c.w[:], bits)])
	if v.Sign() < 0 {
		c.i.Neg(&c.i)
	}
	return &c.i
}

func cloneList[T any](v []T) []T {
	if v == nil {
		return nil
	}
	out := make([]T, len(v))
	copy(out, v)
	return out
}

func cloneBigList(v []*big.Int) []*big.Int {
	if v == nil {
		return nil
	}
	out := make([]*big.Int, len(v))
	for i, x := range v {
		out[i] = cloneBig(x)
	}
	return out
}

func cloneBytesList(v [][]byte) [][]byte {
	if v == nil {
		return nil
	}
	out := make([][]byte, len(v))
	for i, x := range v {
		out[i] = bytes.Clone(x)
	}
	return out
}

// The value helpers return an untyped nil for null, never a typed nil inside an interface.

func ptrValue[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func bytesValue(v []byte) any {
	if v == nil {
		return nil
	}
	return bytes.Clone(v)
}

func bigValue(v *big.Int) any {
	if v == nil {
		return nil
	}
	return cloneBig(v)
}

func listValue[T any](v []T, clone func([]T) []T, nullable bool) any {
	if v == nil {
		if nullable {
			return nil
		}
		return []T{}
	}
	return clone(v)
}
