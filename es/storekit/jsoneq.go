package storekit

import (
	"bytes"
	"encoding/json"
	"io"
	"math/big"
	"strings"
)

// sameJSON reports whether a and b are the same JSON value: objects with
// the same members in any order, and numbers that are the same exact
// decimal value whatever their form (100, 1E2, 100.0). Either failing to
// parse is not the same as anything.
func sameJSON(a, b []byte) bool {
	va, ok := decodeJSON(a)
	if !ok {
		return false
	}
	vb, ok := decodeJSON(b)
	return ok && sameValue(va, vb)
}

// decodeJSON decodes one JSON value, keeping numbers as their text: a
// float64 would make 2^53 and 2^53+1 equal and refuse 1e400.
func decodeJSON(b []byte) (any, bool) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil {
		return nil, false
	}
	// Anything but whitespace after the value makes it not one JSON value.
	if _, err := d.Token(); err != io.EOF {
		return nil, false
	}
	return v, true
}

func sameValue(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, va := range a {
			vb, ok := b[k]
			if !ok || !sameValue(va, vb) {
				return false
			}
		}
		return true
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !sameValue(a[i], b[i]) {
				return false
			}
		}
		return true
	case json.Number:
		b, ok := b.(json.Number)
		return ok && sameNumber(string(a), string(b))
	default: // string, bool, nil
		return a == b
	}
}

// decimal is a JSON number in a canonical form: the value is
// (-1 if neg) × digits × 10^exp, with digits free of leading and trailing
// zeros; zero has no digits, no sign and exponent 0.
type decimal struct {
	neg    bool
	digits string
	exp    *big.Int
}

// sameNumber compares two JSON numbers as exact decimal values. It does
// not build the values themselves (big.Rat would): 1e999999999 would take
// hundreds of megabytes, where its canonical form takes a few bytes.
func sameNumber(a, b string) bool {
	if a == b {
		return true
	}
	da, ok := parseDecimal(a)
	if !ok {
		return false
	}
	db, ok := parseDecimal(b)
	return ok && da.neg == db.neg && da.digits == db.digits && da.exp.Cmp(db.exp) == 0
}

// parseDecimal parses a number in JSON's grammar (which the decoder has
// checked): -?int(.frac)?([eE][+-]?exp)?.
func parseDecimal(s string) (decimal, bool) {
	d := decimal{exp: new(big.Int)}
	if strings.HasPrefix(s, "-") {
		d.neg, s = true, s[1:]
	}
	mant, e, hasExp := strings.Cut(strings.ToLower(s), "e")
	// The exponent is parsed as a big.Int: its text may be longer than an
	// int64 holds, and JSON sets no limit.
	if hasExp {
		if _, ok := d.exp.SetString(e, 10); !ok {
			return d, false
		}
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := strings.TrimLeft(intPart+frac, "0")
	trimmed := strings.TrimRight(digits, "0")
	// digits × 10^-len(frac), and each trailing zero dropped is a power of
	// ten moved into the exponent.
	shift := int64(len(digits)-len(trimmed)) - int64(len(frac))
	d.exp.Add(d.exp, big.NewInt(shift))
	d.digits = trimmed
	if d.digits == "" { // zero, whatever its sign and exponent
		return decimal{exp: new(big.Int)}, true
	}
	return d, true
}
