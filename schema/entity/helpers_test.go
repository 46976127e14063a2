package entity

import (
	"math/big"
	"testing"
)

// TestCloneBig: a copy equals its original, whatever its size and sign, and owns its words.
func TestCloneBig(t *testing.T) {
	one := big.NewInt(1)
	for _, v := range []*big.Int{
		new(big.Int), big.NewInt(1), big.NewInt(-1), new(big.Int).Lsh(one, 64), new(big.Int).Lsh(one, 255),
		new(big.Int).Sub(new(big.Int).Lsh(one, 256), one), new(big.Int).Lsh(one, 256), new(big.Int).Neg(new(big.Int).Lsh(one, 200)),
	} {
		orig := new(big.Int).Set(v)
		c := cloneBig(v)
		if c.Cmp(v) != 0 || c.Sign() != v.Sign() || c == v {
			t.Fatalf("cloneBig(%v) = %v", v, c)
		}
		c.Add(c, one) // in place, in the clone's own words
		if v.Cmp(orig) != 0 || c.Cmp(new(big.Int).Add(orig, one)) != 0 {
			t.Fatalf("after adding 1 to the clone of %v: original %v, clone %v", orig, v, c)
		}
	}
	if cloneBig(nil) != nil || bigValue(nil) != nil {
		t.Fatal("nil is not copied")
	}
}
