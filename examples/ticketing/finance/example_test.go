package finance_test

import (
	"fmt"

	"esgo.dev/es"
	"esgo.dev/examples/ticketing/finance"
	"esgo.dev/examples/ticketing/money"
)

// The orders process asks for a payment with a message keyed by the payment
// ID; the ID travels to the gateway as the idempotency key.
func ExampleRequestPayment() {
	reg := es.NewRegistry()
	if err := finance.RegisterMessages(reg); err != nil {
		panic(err)
	}
	price := money.Money{Amount: 25000, Currency: "PLN"}
	m, err := es.NewMessage(reg, "payment-1", finance.RequestPayment{
		PaymentID: "payment-1", OrderID: "order-1", UserID: "ola", ConcertID: "warsaw", OrganizerID: "org",
		Amount: price, Lines: []finance.InvoiceLine{{Description: "Standing", Quantity: 1, UnitPrice: price}},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(m.Type, m.Key)
	// Output: finance.RequestPayment payment-1
}
