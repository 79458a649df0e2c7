package storekit

import (
	"encoding/json"
	"math/big"
	"strings"
	"testing"
)

// FuzzSameNumber checks the canonical form against big.Rat, which builds
// the exact values, on numbers whose exponents are small enough for it.
func FuzzSameNumber(f *testing.F) {
	for _, pair := range [][2]string{
		{"1", "1.0"}, {"1E2", "100"}, {"-0", "0e5"}, {"9007199254740993", "9007199254740992"},
		{"0.1", "0.10000000000000001"}, {"12.5e-1", "1.25"}, {"1e+2", "1E02"}, {"-1.5", "-15e-1"},
	} {
		f.Add(pair[0], pair[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if !isSmallNumber(a) || !isSmallNumber(b) {
			return
		}
		ra, okA := new(big.Rat).SetString(a)
		rb, okB := new(big.Rat).SetString(b)
		if !okA || !okB { // big.Rat refuses exponents above a million
			return
		}
		if got, want := sameNumber(a, b), ra.Cmp(rb) == 0; got != want {
			t.Fatalf("sameNumber(%s, %s) = %v, want %v", a, b, got, want)
		}
	})
}

// isSmallNumber reports whether s is one JSON number with at most 30
// characters, so that big.Rat builds its value quickly.
func isSmallNumber(s string) bool {
	if len(s) == 0 || len(s) > 30 || strings.ContainsAny(s, " \t\r\n") {
		return false
	}
	var n json.Number
	return json.Unmarshal([]byte(s), &n) == nil && string(n) == s
}
