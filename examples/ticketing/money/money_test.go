package money_test

import (
	"errors"
	"fmt"
	"testing"

	"esgo.dev/examples/ticketing/money"
)

func TestArithmeticRefusesMixedCurrencies(t *testing.T) {
	_, err := money.Money{Amount: 100, Currency: "PLN"}.Add(money.Money{Amount: 100, Currency: "EUR"})
	if !errors.Is(err, money.ErrCurrencyMismatch) {
		t.Fatalf("got %v, want ErrCurrencyMismatch", err)
	}
}

func TestACurrencyIsAnActiveISO4217CodeInHundredths(t *testing.T) {
	for _, c := range []string{"", "pln", "PL", "PLNX", "P1N", "ZZZ", "XXX", "XTS", "XAU", "JPY", "KWD", "HRK", "N P", "LNP", "PLN "} {
		if _, err := money.New(1, c); !errors.Is(err, money.ErrInvalidCurrency) {
			t.Errorf("New(1, %q) = %v, want ErrInvalidCurrency", c, err)
		}
	}
	for _, c := range []string{"PLN", "EUR", "USD", "GBP", "CHF", "AED", "ZWG"} {
		if _, err := money.New(1, c); err != nil {
			t.Error(err)
		}
	}
}

func TestDecimalStringsParseExactly(t *testing.T) {
	for in, want := range map[string]int64{"199.99": 19999, "45": 4500, "0.5": 50, "0.10": 10} {
		got, err := money.ParseDecimal(in, "PLN")
		if err != nil || got.Amount != want {
			t.Errorf("ParseDecimal(%q) = %v, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"1.999", "-1", "", "abc", "1.a"} {
		if _, err := money.ParseDecimal(in, "PLN"); err == nil {
			t.Errorf("ParseDecimal(%q) succeeded", in)
		}
	}
}

func TestTimesDetectsOverflow(t *testing.T) {
	if _, err := (money.Money{Amount: 1 << 62, Currency: "PLN"}).Times(4); !errors.Is(err, money.ErrOverflow) {
		t.Fatalf("got %v", err)
	}
}

func ExampleMoney_Add() {
	ticket := money.Money{Amount: 19999, Currency: "PLN"}
	two, _ := ticket.Times(2)
	total, _ := two.Add(money.Money{Amount: 500, Currency: "PLN"})
	fmt.Println(total)
	_, err := total.Add(money.Money{Amount: 100, Currency: "EUR"})
	fmt.Println(err)
	// Output:
	// 404.98 PLN
	// money: currencies differ: PLN + EUR
}
