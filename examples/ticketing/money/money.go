// Package money is the ticketing example's amount of money: integer minor
// units plus an ISO 4217 currency code.
//
// The workshop design this example comes from prices tickets in decimal.
// Floats cannot hold 0.10 exactly and a bare decimal says nothing about the
// currency, so here an amount is a count of the currency's minor unit
// (grosze for PLN, cents for EUR) and always travels with its code;
// arithmetic on two currencies is refused rather than guessed.
package money

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrInvalidCurrency reports a currency code that is not three upper-case
// letters.
var ErrInvalidCurrency = errors.New("money: currency must be an ISO 4217 code of three upper-case letters")

// ErrCurrencyMismatch reports arithmetic or a comparison between two
// currencies.
var ErrCurrencyMismatch = errors.New("money: currencies differ")

// ErrOverflow reports a result too large for an int64 of minor units.
var ErrOverflow = errors.New("money: amount overflows")

// Money is an amount in the minor unit of Currency (two decimal places for
// every currency this example uses).
type Money struct {
	// Amount counts minor units: 19999 PLN is 199.99 zł.
	Amount int64 `json:"amount"`
	// Currency is the ISO 4217 code, e.g. "PLN".
	Currency string `json:"currency"`
}

// New returns amount minor units of currency, checking the code.
func New(amount int64, currency string) (Money, error) {
	m := Money{Amount: amount, Currency: currency}
	return m, m.Validate()
}

// ValidCurrency reports whether c looks like an ISO 4217 code.
func ValidCurrency(c string) bool {
	if len(c) != 3 {
		return false
	}
	for _, r := range c {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

// Validate checks the currency code.
func (m Money) Validate() error {
	if !ValidCurrency(m.Currency) {
		return fmt.Errorf("%w: %q", ErrInvalidCurrency, m.Currency)
	}
	return nil
}

// Add returns m + o; both must be in one currency.
func (m Money) Add(o Money) (Money, error) {
	if m.Currency != o.Currency {
		return Money{}, fmt.Errorf("%w: %s + %s", ErrCurrencyMismatch, m.Currency, o.Currency)
	}
	s := m.Amount + o.Amount
	if (o.Amount > 0 && s < m.Amount) || (o.Amount < 0 && s > m.Amount) {
		return Money{}, ErrOverflow
	}
	return Money{Amount: s, Currency: m.Currency}, nil
}

// Times returns m multiplied by n.
func (m Money) Times(n int) (Money, error) {
	if n != 0 && (m.Amount > math.MaxInt64/int64(max(n, -n)) || m.Amount < math.MinInt64/int64(max(n, -n))) {
		return Money{}, ErrOverflow
	}
	return Money{Amount: m.Amount * int64(n), Currency: m.Currency}, nil
}

// String formats m as "199.99 PLN".
func (m Money) String() string {
	sign, a := "", m.Amount
	if a < 0 {
		sign, a = "-", -a
	}
	return fmt.Sprintf("%s%d.%02d %s", sign, a/100, a%100, m.Currency)
}

// ParseDecimal reads a decimal string with at most two fractional digits
// ("199.99", "45", "0.5") as minor units of currency, exactly: no float is
// involved. It is how old events that stored prices as decimal strings are
// upcast.
func ParseDecimal(s, currency string) (Money, error) {
	whole, frac, _ := strings.Cut(strings.TrimSpace(s), ".")
	if len(frac) > 2 || whole == "" || strings.HasPrefix(whole, "-") || strings.HasPrefix(whole, "+") {
		return Money{}, fmt.Errorf("money: %q is not a decimal amount with at most two decimal places", s)
	}
	frac += strings.Repeat("0", 2-len(frac))
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return Money{}, fmt.Errorf("money: %q: %w", s, err)
	}
	f, err := strconv.ParseInt(frac, 10, 64)
	if err != nil || f < 0 {
		return Money{}, fmt.Errorf("money: %q is not a decimal amount", s)
	}
	if w > (math.MaxInt64-f)/100 {
		return Money{}, ErrOverflow
	}
	return New(w*100+f, currency)
}
