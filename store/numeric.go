package store

import (
	"encoding/binary"
	"math/big"
)

// appendNumericUint writes, without allocating in the common case, an integer whose absolute value fits in 64 bits in PostgreSQL's
// binary numeric format: ndigits, weight, sign, dscale, then base-10000 digits, most significant
// first, trailing zero digits dropped (as PostgreSQL stores them).
func appendNumericUint(buf []byte, v *big.Int) []byte {
	var u uint64
	var sign uint16
	if v.Sign() < 0 {
		u = new(big.Int).Neg(v).Uint64()
		sign = 0x4000
	} else {
		u = v.Uint64()
	}
	var digits [5]uint16 // 2^64 < 10000^5
	n := 0
	for x := u; x > 0; x /= 10000 {
		digits[n] = uint16(x % 10000)
		n++
	}
	weight := n - 1
	lo := 0 // least significant kept digit
	for lo < n && digits[lo] == 0 {
		lo++
	}
	nd := n - lo
	if n == 0 {
		weight, nd, sign = 0, 0, 0
	}
	buf = binary.BigEndian.AppendUint16(buf, uint16(nd))
	buf = binary.BigEndian.AppendUint16(buf, uint16(int16(weight)))
	buf = binary.BigEndian.AppendUint16(buf, sign)
	buf = binary.BigEndian.AppendUint16(buf, 0) // dscale
	for i := n - 1; i >= lo; i-- {
		buf = binary.BigEndian.AppendUint16(buf, digits[i])
	}
	return buf
}
