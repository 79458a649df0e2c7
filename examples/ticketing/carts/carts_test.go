package carts_test

import (
	"context"
	"database/sql"
	"testing"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/es/sqlite"
	"esgo.dev/es/sqlite/sqlitetest"
	"esgo.dev/examples/ticketing/carts"
	"esgo.dev/examples/ticketing/money"
)

// spec makes the specs of the cart decider, one per test.
var spec = estest.ForDecider(carts.Decider())

var (
	pln100 = money.Money{Amount: 10000, Currency: "PLN"}
	pln250 = money.Money{Amount: 25000, Currency: "PLN"}
)

func add(concert, tt string, q int, price money.Money) carts.AddItem {
	return carts.AddItem{UserID: "u1", ConcertID: concert, ConcertName: "Concert " + concert, TicketType: tt, Quantity: q, UnitPrice: price}
}

func added(no int, concert, tt string, q int, price money.Money) carts.ItemAdded {
	return carts.ItemAdded{UserID: "u1", CartNo: no, ConcertID: concert, ConcertName: "Concert " + concert, TicketType: tt, Quantity: q, UnitPrice: price}
}

var opened = carts.CartOpened{UserID: "u1", CartNo: 1}

func TestTheFirstItemOpensACart(t *testing.T) {
	spec.Given(t).
		When(add("c1", "VIP", 2, pln250)).
		Then(opened, added(1, "c1", "VIP", 2, pln250))
}

func TestItemsFromDifferentConcertsShareTheCart(t *testing.T) {
	spec.Given(t, opened, added(1, "c1", "VIP", 2, pln250)).
		When(add("c2", "Standing", 1, pln100)).
		Then(added(1, "c2", "Standing", 1, pln100))
}

func TestAddingAnExistingLineIncreasesIt(t *testing.T) {
	spec.Given(t, opened, added(1, "c1", "VIP", 2, pln250)).
		When(add("c1", "VIP", 3, pln250)).
		Then(carts.QuantityChanged{UserID: "u1", CartNo: 1, ConcertID: "c1", TicketType: "VIP", Quantity: 5})
}

func TestALineHoldsAtMostTenTickets(t *testing.T) {
	spec.Given(t, opened, added(1, "c1", "VIP", 8, pln250)).
		When(add("c1", "VIP", 3, pln250)).
		ThenError(carts.ErrInvalidQuantity)
}

func TestAQuantityIsAtLeastOne(t *testing.T) {
	spec.Given(t).When(add("c1", "VIP", 0, pln250)).ThenError(carts.ErrInvalidQuantity)
}

func TestACartHoldsOneCurrency(t *testing.T) {
	spec.Given(t, opened, added(1, "c1", "VIP", 1, pln250)).
		When(add("c2", "VIP", 1, money.Money{Amount: 5000, Currency: "EUR"})).
		ThenError(money.ErrCurrencyMismatch)
}

func TestAnItemNeedsAPrice(t *testing.T) {
	spec.Given(t).When(add("c1", "VIP", 1, money.Money{Currency: "PLN"})).ThenError(carts.ErrInvalidItem)
}

func TestALinesQuantityCanChange(t *testing.T) {
	spec.Given(t, opened, added(1, "c1", "VIP", 2, pln250)).
		When(carts.ChangeQuantity{UserID: "u1", ConcertID: "c1", TicketType: "VIP", Quantity: 4}).
		Then(carts.QuantityChanged{UserID: "u1", CartNo: 1, ConcertID: "c1", TicketType: "VIP", Quantity: 4})
}

func TestAQuantityCannotChangeBeyondTen(t *testing.T) {
	spec.Given(t, opened, added(1, "c1", "VIP", 2, pln250)).
		When(carts.ChangeQuantity{UserID: "u1", ConcertID: "c1", TicketType: "VIP", Quantity: 11}).
		ThenError(carts.ErrInvalidQuantity)
}

func TestALineCanBeRemoved(t *testing.T) {
	spec.Given(t, opened, added(1, "c1", "VIP", 2, pln250)).
		When(carts.RemoveItem{UserID: "u1", ConcertID: "c1", TicketType: "VIP"}).
		Then(carts.ItemRemoved{UserID: "u1", CartNo: 1, ConcertID: "c1", TicketType: "VIP"})
}

func TestRemovingALineNotInTheCartIsAnError(t *testing.T) {
	spec.Given(t, opened, added(1, "c1", "VIP", 2, pln250)).
		When(carts.RemoveItem{UserID: "u1", ConcertID: "c1", TicketType: "Standing"}).
		ThenError(carts.ErrUnknownLine)
}

func TestAConfirmedCartCannotChange(t *testing.T) {
	spec.Given(t, opened, added(1, "c1", "VIP", 2, pln250), carts.CartConfirmed{UserID: "u1", CartNo: 1}).
		When(carts.RemoveItem{UserID: "u1", ConcertID: "c1", TicketType: "VIP"}).
		ThenError(carts.ErrNoOpenCart)
}

var (
	byEmail   = carts.Delivery{Method: carts.ByEmail, Email: "ala@example.com"}
	chosen    = carts.DeliveryChosen{UserID: "u1", CartNo: 1, Delivery: byEmail}
	byCourier = carts.Delivery{Method: carts.ByCourier, Address: &carts.PostalAddress{
		Name: "Ala Nowak", Street: "Marszałkowska 1", City: "Warszawa", PostalCode: "00-001", Country: "PL"}}
)

func TestACartIsConfirmedWithItsLinesAndTotal(t *testing.T) {
	spec.Given(t, opened, added(1, "c1", "VIP", 2, pln250), added(1, "c2", "Standing", 3, pln100), chosen).
		When(carts.ConfirmCart{UserID: "u1"}).
		Then(carts.CartConfirmed{UserID: "u1", CartNo: 1, Total: money.Money{Amount: 80000, Currency: "PLN"}, Lines: []carts.Line{
			{ConcertID: "c1", ConcertName: "Concert c1", TicketType: "VIP", Quantity: 2, UnitPrice: pln250},
			{ConcertID: "c2", ConcertName: "Concert c2", TicketType: "Standing", Quantity: 3, UnitPrice: pln100},
		}})
}

func TestACartIsConfirmedOnlyOnceTheDeliveryIsChosen(t *testing.T) {
	spec.Given(t, opened, added(1, "c1", "VIP", 2, pln250)).
		When(carts.ConfirmCart{UserID: "u1"}).
		ThenError(carts.ErrNoDelivery)
}

func TestTheBuyerChoosesACourierWithAPostalAddress(t *testing.T) {
	spec.Given(t, opened, added(1, "c1", "VIP", 2, pln250), chosen).
		When(carts.ChooseDelivery{UserID: "u1", Delivery: byCourier}).
		Then(carts.DeliveryChosen{UserID: "u1", CartNo: 1, Delivery: byCourier})
}

func TestADeliveryChoiceMustBeComplete(t *testing.T) {
	noCountry := *byCourier.Address
	noCountry.Country = "Poland"
	for name, d := range map[string]carts.Delivery{
		"unknown method":            {Method: "pigeon"},
		"e-mail without an address": {Method: carts.ByEmail},
		"e-mail not an address":     {Method: carts.ByEmail, Email: "ala at example.com"},
		"courier without address":   {Method: carts.ByCourier},
		"courier without street":    {Method: carts.ByCourier, Address: &carts.PostalAddress{Name: "Ala", City: "Warszawa", PostalCode: "00-001", Country: "PL"}},
		"country not ISO 3166":      {Method: carts.ByCourier, Address: &noCountry},
	} {
		t.Run(name, func(t *testing.T) {
			spec.Given(t, opened, added(1, "c1", "VIP", 2, pln250)).
				When(carts.ChooseDelivery{UserID: "u1", Delivery: d}).
				ThenError(carts.ErrInvalidDelivery)
		})
	}
}

func TestDeliveryIsChosenInAnOpenCart(t *testing.T) {
	spec.Given(t).When(carts.ChooseDelivery{UserID: "u1", Delivery: byEmail}).ThenError(carts.ErrNoOpenCart)
}

func restoreLines() []carts.Line {
	return []carts.Line{
		{ConcertID: "c1", ConcertName: "Concert c1", TicketType: "VIP", Quantity: 2, UnitPrice: pln250},
		{ConcertID: "c1", ConcertName: "Concert c1", TicketType: "Standing", Quantity: 1, UnitPrice: pln100},
	}
}

func TestARejectedOrdersLinesComeBackIntoANewCart(t *testing.T) {
	spec.Given(t, opened, added(1, "c1", "VIP", 2, pln250), chosen, carts.CartConfirmed{UserID: "u1", CartNo: 1}).
		When(carts.RestoreItems{UserID: "u1", OrderID: "o1", Lines: restoreLines(), Delivery: &byEmail}).
		Then(carts.CartOpened{UserID: "u1", CartNo: 2},
			carts.ItemsRestored{UserID: "u1", CartNo: 2, OrderID: "o1", Lines: restoreLines(), Delivery: &byEmail})
}

func TestRestoredLinesKeepTheBuyersNewerChoices(t *testing.T) {
	spec.Given(t, opened, added(1, "c1", "VIP", 5, pln250), chosen).
		When(carts.RestoreItems{UserID: "u1", OrderID: "o1", Lines: restoreLines(), Delivery: &byCourier}).
		Then(carts.ItemsRestored{UserID: "u1", CartNo: 1, OrderID: "o1", Lines: restoreLines()[1:]})
}

func TestARestoredCartCanBeConfirmedAgain(t *testing.T) {
	spec.Given(t, carts.CartOpened{UserID: "u1", CartNo: 2},
		carts.ItemsRestored{UserID: "u1", CartNo: 2, OrderID: "o1", Lines: restoreLines(), Delivery: &byEmail}).
		When(carts.ConfirmCart{UserID: "u1"}).
		Then(carts.CartConfirmed{UserID: "u1", CartNo: 2, Lines: restoreLines(), Total: money.Money{Amount: 60000, Currency: "PLN"}})
}

func TestAnEmptyCartCannotBeConfirmed(t *testing.T) {
	spec.Given(t, opened, added(1, "c1", "VIP", 2, pln250), carts.ItemRemoved{UserID: "u1", CartNo: 1, ConcertID: "c1", TicketType: "VIP"}).
		When(carts.ConfirmCart{UserID: "u1"}).
		ThenError(carts.ErrEmptyCart)
}

func TestOnlyAnOpenCartCanBeCancelled(t *testing.T) {
	spec.Given(t).When(carts.CancelCart{UserID: "u1"}).ThenError(carts.ErrNoOpenCart)
}

func TestTheNextItemAfterCheckoutOpensANewCart(t *testing.T) {
	spec.Given(t, opened, added(1, "c1", "VIP", 2, pln250), carts.CartCancelled{UserID: "u1", CartNo: 1}).
		When(add("c1", "VIP", 1, pln250)).
		Then(carts.CartOpened{UserID: "u1", CartNo: 2}, added(2, "c1", "VIP", 1, pln250))
}

func registry(t *testing.T) *es.Registry {
	reg := es.NewRegistry()
	if err := carts.Register(reg); err != nil {
		t.Fatal(err)
	}
	return reg
}

func TestEventSchemas(t *testing.T) {
	estest.GoldenSchema(t, registry(t), "testdata/events")
}

func history() []any {
	return []any{
		estest.InStream("cart-u1", opened, added(1, "c1", "VIP", 2, pln250), added(1, "c2", "Standing", 1, pln100),
			carts.QuantityChanged{UserID: "u1", CartNo: 1, ConcertID: "c2", TicketType: "Standing", Quantity: 3},
			added(1, "c3", "VIP", 1, pln100), carts.ItemRemoved{UserID: "u1", CartNo: 1, ConcertID: "c3", TicketType: "VIP"}),
		estest.InStream("cart-u3", carts.CartOpened{UserID: "u3", CartNo: 2},
			carts.ItemsRestored{UserID: "u3", CartNo: 2, OrderID: "o1", Lines: restoreLines()}),
		estest.InStream("cart-u2", carts.CartOpened{UserID: "u2", CartNo: 1},
			carts.ItemAdded{UserID: "u2", CartNo: 1, ConcertID: "c1", TicketType: "VIP", Quantity: 1, UnitPrice: pln250},
			carts.CartConfirmed{UserID: "u2", CartNo: 1}),
	}
}

func TestCartContentsShowTheOpenCartsLinesWithPriceAndConcertName(t *testing.T) {
	reg := registry(t)
	rm := sqlitetest.ReadModel(t, sqlite.FromPortable(carts.ContentsProjection(reg)), func(ctx context.Context, db *sql.DB) (map[string][]carts.Line, error) {
		u1, err := carts.Contents(ctx, db, "u1")
		if err != nil {
			return nil, err
		}
		u2, err := carts.Contents(ctx, db, "u2")
		if err != nil {
			return nil, err
		}
		u3, err := carts.Contents(ctx, db, "u3")
		return map[string][]carts.Line{"u1": u1, "u2": u2, "u3": u3}, err
	})
	estest.Projection(t, reg, rm).Given(history()...).Redelivered().AppliedTwice().
		Then(map[string][]carts.Line{"u1": {
			{ConcertID: "c1", ConcertName: "Concert c1", TicketType: "VIP", Quantity: 2, UnitPrice: pln250},
			{ConcertID: "c2", ConcertName: "Concert c2", TicketType: "Standing", Quantity: 3, UnitPrice: pln100},
		}, "u2": nil, "u3": {restoreLines()[1], restoreLines()[0]}})
}

func TestCartSummaryCountsTicketsAndTotal(t *testing.T) {
	reg := registry(t)
	rm := sqlitetest.ReadModel(t, sqlite.FromPortable(carts.SummaryProjection(reg)), func(ctx context.Context, db *sql.DB) ([]carts.Summary, error) {
		u1, err := carts.SummaryOf(ctx, db, "u1")
		if err != nil {
			return nil, err
		}
		u2, err := carts.SummaryOf(ctx, db, "u2")
		if err != nil {
			return nil, err
		}
		u3, err := carts.SummaryOf(ctx, db, "u3")
		return []carts.Summary{u1, u2, u3}, err
	})
	estest.Projection(t, reg, rm).Given(history()...).Redelivered().AppliedTwice().
		Then([]carts.Summary{
			{UserID: "u1", Items: 5, Total: money.Money{Amount: 80000, Currency: "PLN"}},
			{UserID: "u2"},
			{UserID: "u3", Items: 3, Total: money.Money{Amount: 60000, Currency: "PLN"}},
		})
}
