// Package money is the ticketing example's amount of money: integer minor
// units plus an ISO 4217 currency code.
//
// The workshop design this example comes from prices tickets in decimal.
// Floats cannot hold 0.10 exactly and a bare decimal says nothing about the
// currency, so here an amount is a count of the currency's minor unit
// (grosze for PLN, cents for EUR) and always travels with its code;
// arithmetic on two currencies is refused rather than guessed.
//
// Currencies are the active ISO 4217 codes of money in circulation whose
// minor unit is a hundredth (see [ValidCurrency]): every amount here
// counts hundredths, so JPY (no minor unit), BHD (thousandths), the
// precious metals, fund codes and testing codes are refused rather than
// shown a hundred times off.
//
// Addition and multiplication report overflow ([ErrOverflow]) rather than
// wrap; the modules bound prices and quantities at the door so that no
// realistic sum comes near it.
package money

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrInvalidCurrency reports a currency code that is not an active ISO 4217
// currency with a minor unit of a hundredth.
var ErrInvalidCurrency = errors.New("money: currency must be an active ISO 4217 code, such as PLN or EUR")

// ErrCurrencyMismatch reports arithmetic or a comparison between two
// currencies.
var ErrCurrencyMismatch = errors.New("money: currencies differ")

// ErrOverflow reports a result too large for an int64 of minor units.
var ErrOverflow = errors.New("money: amount overflows")

// Money is an amount in the minor unit of Currency: a hundredth, for every
// currency [ValidCurrency] accepts.
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

// currencies lists the active ISO 4217 codes (as of 2026) of currencies
// in circulation whose minor unit is a hundredth, each followed by a
// space. A string constant, not a map: nothing can change it at run time.
// Left out: codes with another minor unit (BHD, BIF, CLP, DJF, GNF, IQD,
// ISK, JOD, JPY, KMF, KRW, KWD, LYD, OMR, PYG, RWF, TND, UGX, VND, VUV,
// XAF, XOF, XPF), fund and unit-of-account codes (BOV, CHE, CHW, CLF, COU,
// MXV, USN, UYI, UYW, XDR, XSU, XUA), metals, bond units and testing codes
// (XAG, XAU, XPD, XPT, XBA-XBD, XTS, XXX), and withdrawn currencies (ANG,
// BGN, CUC, HRK, SLL, ZWL).
const currencies = "AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BMD BND BOB BRL BSD BTN BWP BYN BZD " +
	"CAD CDF CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD " +
	"HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK " +
	"MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB " +
	"SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD " +
	"UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG "

// ValidCurrency reports whether c is an active ISO 4217 currency code
// whose minor unit is a hundredth, such as PLN, EUR or USD.
func ValidCurrency(c string) bool {
	if len(c) != 3 {
		return false
	}
	for _, r := range c {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	// Three letters and a space cannot match across two entries.
	return strings.Contains(currencies, c+" ")
}

// Validate checks the currency code (see [ValidCurrency]).
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
