package orders_test

import (
	"fmt"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/es/memory"
	"esgo.dev/examples/ticketing/carts"
	"esgo.dev/examples/ticketing/finance"
	"esgo.dev/examples/ticketing/money"
	"esgo.dev/examples/ticketing/orders"
	"esgo.dev/examples/ticketing/tickets"
)

func newRegistry() (*es.Registry, error) {
	reg := es.NewRegistry()
	for _, r := range []func(*es.Registry) error{orders.Register, carts.Register, finance.RegisterMessages, tickets.RegisterMessages} {
		if err := r(reg); err != nil {
			return nil, err
		}
	}
	return reg, nil
}

func mustRegistry() *es.Registry {
	reg, err := newRegistry()
	if err != nil {
		panic(err)
	}
	return reg
}

// process and sales make the specs of the two process managers.
var (
	process = estest.ForProcess(mustRegistry(), orders.Process(orders.Config{}))
	patient = estest.ForProcess(mustRegistry(), orders.Process(orders.Config{PaymentGrace: time.Minute}))
	sales   = estest.ForProcess(mustRegistry(), orders.SalesProcess())
	shards  = estest.ForProcess(mustRegistry(), orders.SalesShardProcess())
)

// The spec clock starts at 2026-01-01 09:00 UTC.
var specStart = time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)

const hold = 15 * time.Minute

var (
	pln      = func(a int64) money.Money { return money.Money{Amount: a, Currency: "PLN"} }
	delivery = tickets.Delivery{Method: tickets.ByEmail, Email: "ala@example.com"}
	lines    = []orders.Line{
		{TicketType: "VIP", ConcertName: "Summer Night", Quantity: 2, UnitPrice: pln(39900)},
		{TicketType: "Standing", ConcertName: "Summer Night", Quantity: 1, UnitPrice: pln(14950)},
	}
	total     = pln(2*39900 + 14950)
	paymentID = orders.PaymentID("o1")
	res0      = orders.ReservationID("o1", 0)
	res1      = orders.ReservationID("o1", 1)
	refundID  = es.DeriveID("orders/refund/"+paymentID, 0)
)

func place() orders.PlaceOrder {
	return orders.PlaceOrder{OrderID: "o1", UserID: "u1", CartNo: 1, ConcertID: "c1", OrganizerID: "org1", Lines: lines, Delivery: delivery}
}

func held() orders.SeatsHeld {
	return orders.SeatsHeld{OrderID: "o1", ReservationID: res0, ExpiresAt: specStart.Add(hold)}
}

func paid() finance.PaymentSucceeded {
	return finance.PaymentSucceeded{PaymentID: paymentID, OrderID: "o1", Amount: total}
}

func seats() map[string]int { return map[string]int{"VIP": 2, "Standing": 1} }

func reserve(id string) orders.ReserveSeats {
	return orders.ReserveSeats{OrderID: "o1", ConcertID: "c1", ReservationID: id, UserID: "u1", Seats: seats()}
}

func requestPayment() finance.RequestPayment {
	return finance.RequestPayment{PaymentID: paymentID, OrderID: "o1", UserID: "u1", ConcertID: "c1", OrganizerID: "org1", Amount: total,
		Lines: []finance.InvoiceLine{
			{Description: "Summer Night, VIP", Quantity: 2, UnitPrice: pln(39900)},
			{Description: "Summer Night, Standing", Quantity: 1, UnitPrice: pln(14950)},
		}}
}

func issue() tickets.IssueTickets {
	return tickets.IssueTickets{OrderID: "o1", UserID: "u1", ConcertID: "c1", Seats: seats(), Delivery: delivery}
}

func issued() tickets.TicketsIssued {
	return tickets.TicketsIssued{OrderID: "o1", TicketIDs: []string{"t1", "t2", "t3"}}
}

func refund(reason string) finance.RefundPayment {
	return finance.RefundPayment{PaymentID: paymentID, RefundID: refundID, OrderID: "o1", Amount: total, Reason: reason}
}

// state is the order as the steps so far leave it.
func state(change func(*orders.Order)) orders.Order {
	o := orders.Order{ID: "o1", UserID: "u1", ConcertID: "c1", OrganizerID: "org1", CartNo: 1, Lines: lines, Total: total,
		Delivery: delivery, Status: orders.Placed, PaymentID: paymentID, ReservationID: res0, Holds: 1}
	if change != nil {
		change(&o)
	}
	return o
}

func TestACheckedOutCartPlacesAnOrderThatAsksForItsSeats(t *testing.T) {
	process.Given(t).
		When(place()).
		Then(reserve(res0)).
		ThenState("o1", state(nil))
}

func TestHeldSeatsRequestThePaymentDueWhenTheHoldEnds(t *testing.T) {
	process.Given(t, place()).
		When(held()).
		Then(requestPayment()).
		ThenScheduled(hold, orders.PaymentDue{OrderID: "o1", ReservationID: res0})
}

func TestAPaidOrderConfirmsItsSeatsThenAsksForTicketsThenCompletes(t *testing.T) {
	spec := process.Given(t, place(), held())
	spec.When(paid()).
		Then(orders.ConfirmSeats{OrderID: "o1", ConcertID: "c1", ReservationID: res0}).
		ThenNoDeadlines()
	spec.When(orders.SeatsConfirmed{OrderID: "o1", ReservationID: res0}).
		Then(issue())
	spec.When(issued()).
		ThenNothingSent().
		ThenState("o1", state(func(o *orders.Order) {
			o.Status, o.Held, o.HoldExpiresAt, o.Captured = orders.Completed, true, specStart.Add(hold), total
			o.TicketsRequested, o.TicketIDs = true, []string{"t1", "t2", "t3"}
		}))
}

func TestAnOrderWithoutSeatsIsRejectedChargesNothingAndGivesTheCartBack(t *testing.T) {
	process.Given(t, place()).
		When(orders.SeatsUnavailable{OrderID: "o1", ReservationID: res0, Reason: "sold out"}).
		Then(carts.RestoreItems{UserID: "u1", OrderID: "o1", Delivery: &carts.Delivery{Method: carts.ByEmail, Email: "ala@example.com"},
			Lines: []carts.Line{
				{ConcertID: "c1", ConcertName: "Summer Night", TicketType: "VIP", Quantity: 2, UnitPrice: pln(39900)},
				{ConcertID: "c1", ConcertName: "Summer Night", TicketType: "Standing", Quantity: 1, UnitPrice: pln(14950)},
			}}).
		ThenNoDeadlines().
		ThenState("o1", state(func(o *orders.Order) { o.Status, o.Reason = orders.Rejected, "no seats: sold out" }))
}

func TestADeclinedPaymentReleasesTheSeatsAndTellsTheBuyerWhy(t *testing.T) {
	process.Given(t, place(), held()).
		When(finance.PaymentFailed{PaymentID: paymentID, OrderID: "o1", Reason: "card declined"}).
		Then(orders.ReleaseSeats{OrderID: "o1", ConcertID: "c1", ReservationID: res0}).
		ThenNoDeadlines().
		ThenState("o1", state(func(o *orders.Order) {
			o.Status, o.Reason, o.HoldExpiresAt = orders.Cancelled, "payment failed: card declined", specStart.Add(hold)
		}))
}

func TestAPaymentNotCompletedWithinTheHoldCancelsTheOrder(t *testing.T) {
	process.Given(t, place(), held()).
		WhenTimeElapses(hold).
		Then(orders.ReleaseSeats{OrderID: "o1", ConcertID: "c1", ReservationID: res0}).
		ThenNoDeadlines().
		ThenState("o1", state(func(o *orders.Order) {
			o.Status, o.Reason, o.HoldExpiresAt = orders.Cancelled, "the payment was not completed before the seats' hold ran out", specStart.Add(hold)
		}))
}

func TestWithAGraceTheOrderWaitsForThePaymentPastTheHold(t *testing.T) {
	spec := patient.Given(t, place(), held())
	spec.WhenTimeElapses(hold).ThenNothingSent()
	spec.WhenTimeElapses(time.Minute).
		Then(orders.ReleaseSeats{OrderID: "o1", ConcertID: "c1", ReservationID: res0}).
		ThenNoDeadlines()
}

func TestNothingHappensBeforeTheHoldEnds(t *testing.T) {
	process.Given(t, place(), held()).
		WhenTimeElapses(hold-time.Second).
		ThenNothingSent().
		ThenScheduled(time.Second, orders.PaymentDue{OrderID: "o1", ReservationID: res0})
}

func TestAPaymentThatArrivesAfterTheOrderTimedOutIsRefunded(t *testing.T) {
	spec := process.Given(t, place(), held())
	spec.WhenTimeElapses(hold).Then(orders.ReleaseSeats{OrderID: "o1", ConcertID: "c1", ReservationID: res0})
	spec.When(paid()).
		Then(refund("the order had ended when the payment arrived: the payment was not completed before the seats' hold ran out"))
	spec.When(paid()).ThenNothingSent() // told twice: refunded once
}

func TestSeatsReleasedBeforeThePaymentArrivedAreReservedAgain(t *testing.T) {
	spec := process.Given(t, place(), held(), paid())
	spec.When(orders.SeatsLapsed{OrderID: "o1", ReservationID: res0}).
		Then(reserve(res1))
	spec.When(orders.SeatsHeld{OrderID: "o1", ReservationID: res1, ExpiresAt: specStart.Add(hold)}).
		Then(orders.ConfirmSeats{OrderID: "o1", ConcertID: "c1", ReservationID: res1}).
		ThenNoDeadlines()
	spec.When(orders.SeatsConfirmed{OrderID: "o1", ReservationID: res1}).
		Then(issue())
}

func TestAPaidOrderWhoseSeatsAreGoneIsRefunded(t *testing.T) {
	process.Given(t, place(), held(), paid(), orders.SeatsLapsed{OrderID: "o1", ReservationID: res0}).
		When(orders.SeatsUnavailable{OrderID: "o1", ReservationID: res1, Reason: "sold out"}).
		Then(refund("the seats were released before the payment arrived and are sold out: sold out")).
		ThenState("o1", state(func(o *orders.Order) {
			o.Status, o.Reason = orders.Cancelled, "the seats were released before the payment arrived and are sold out: sold out"
			o.ReservationID, o.Holds, o.Captured, o.Refunded = res1, 2, total, total
		}))
}

func TestACancelledConcertRefundsACompletedOrderAndVoidsItsTickets(t *testing.T) {
	spec := process.Given(t, place(), held(), paid(), orders.SeatsConfirmed{OrderID: "o1", ReservationID: res0}, issued())
	spec.When(orders.CancelOrder{OrderID: "o1", Reason: "the concert was cancelled: storm", ConcertCancelled: true}).
		Then(refund("the concert was cancelled: storm"),
			tickets.VoidTickets{OrderID: "o1", Reason: "the concert was cancelled: storm"})
	spec.When(finance.PaymentRefunded{PaymentID: paymentID, RefundID: refundID, OrderID: "o1", Amount: total}).
		ThenNothingSent().
		ThenState("o1", state(func(o *orders.Order) {
			o.Status, o.Reason, o.Held, o.HoldExpiresAt = orders.Cancelled, "the concert was cancelled: storm", true, specStart.Add(hold)
			o.Captured, o.Refunded, o.RefundsDone, o.TicketsRequested, o.TicketIDs = total, total, 1, true, []string{"t1", "t2", "t3"}
		}))
}

func TestACancelledConcertReleasesTheSeatsOfAnUnpaidOrder(t *testing.T) {
	process.Given(t, place(), held()).
		When(orders.CancelOrder{OrderID: "o1", Reason: "the concert was cancelled", ConcertCancelled: true}).
		Then(orders.ReleaseSeats{OrderID: "o1", ConcertID: "c1", ReservationID: res0}).
		ThenNoDeadlines()
}

func TestTheBuyerCancelsAnUnpaidOrder(t *testing.T) {
	process.Given(t, place(), held()).
		When(orders.CancelOrder{OrderID: "o1"}).
		Then(orders.ReleaseSeats{OrderID: "o1", ConcertID: "c1", ReservationID: res0}).
		ThenNoDeadlines()
}

func TestTheBuyerCannotCancelAPaidOrder(t *testing.T) {
	process.Given(t, place(), held(), paid()).
		When(orders.CancelOrder{OrderID: "o1"}).
		ThenError(orders.ErrTooLateToCancel)
}

func TestCancellingAnUnknownOrderIsAnError(t *testing.T) {
	process.Given(t).When(orders.CancelOrder{OrderID: "o1"}).ThenError(orders.ErrNoOrder)
}

func TestSeatsHeldForARejectedOrderAreReleased(t *testing.T) {
	process.Given(t, place(), orders.SeatsUnavailable{OrderID: "o1", ReservationID: res0, Reason: "sold out"}).
		When(held()).
		Then(orders.ReleaseSeats{OrderID: "o1", ConcertID: "c1", ReservationID: res0}).
		ThenNoDeadlines()
}

func TestSeatsHeldForAnOrderCancelledBeforeThemAreReleased(t *testing.T) {
	process.Given(t, place(), orders.CancelOrder{OrderID: "o1"}).
		When(held()).
		Then(orders.ReleaseSeats{OrderID: "o1", ConcertID: "c1", ReservationID: res0}).
		ThenNoDeadlines()
}

func TestEveryAnswerToldTwiceActsOnce(t *testing.T) {
	steps := []any{place(), held(), paid(), orders.SeatsConfirmed{OrderID: "o1", ReservationID: res0}, issued()}
	for i, step := range steps {
		t.Run(fmt.Sprintf("%d %T", i, step), func(t *testing.T) {
			process.Given(t, steps[:i+1]...).When(step).ThenNothingSent()
		})
	}
}

func TestAPaymentDeclinedAfterItSucceededChangesNothing(t *testing.T) {
	process.Given(t, place(), held(), paid()).
		When(finance.PaymentFailed{PaymentID: paymentID, OrderID: "o1", Reason: "late decline"}).
		ThenNothingSent()
}

func TestAMalformedOrderIsRefused(t *testing.T) {
	bad := place()
	bad.Lines = []orders.Line{{TicketType: "VIP", Quantity: 0, UnitPrice: pln(100)}}
	process.Given(t).When(bad).ThenError(orders.ErrInvalidOrder)
}

// stopAll is what the concert's ledger sends on ConcertCancelled: a
// StopSales to every shard.
func stopAll(reason string) []any {
	var want []any
	for shard := range orders.SalesShards {
		want = append(want, orders.StopSales{ConcertID: "c1", Shard: shard, Reason: reason})
	}
	return want
}

func TestACancelledConcertCancelsEveryOrderOfIt(t *testing.T) {
	other := place()
	other.OrderID = "o2"
	cancel := sales.Given(t)
	cancel.When(orders.ConcertCancelled{ConcertID: "c1", Reason: "storm"}).Then(stopAll("storm")...)
	cancel.When(orders.ConcertCancelled{ConcertID: "c1", Reason: "storm"}).ThenNothingSent()

	spec := shards.Given(t, place(), other)
	cancelled := func(id string) orders.CancelOrder {
		return orders.CancelOrder{OrderID: id, Reason: "the concert was cancelled: storm", ConcertCancelled: true}
	}
	if orders.SalesShard("o1") == orders.SalesShard("o2") {
		t.Fatal("the spec wants o1 and o2 in two shards")
	}
	spec.When(orders.StopSales{ConcertID: "c1", Shard: orders.SalesShard("o1"), Reason: "storm"}).Then(cancelled("o1"))
	spec.When(orders.StopSales{ConcertID: "c1", Shard: orders.SalesShard("o2"), Reason: "storm"}).Then(cancelled("o2"))
	// A repeated stop, or the stop of a shard with no orders, cancels nothing.
	spec.When(orders.StopSales{ConcertID: "c1", Shard: orders.SalesShard("o2"), Reason: "storm"}).ThenNothingSent()
	spec.When(orders.StopSales{ConcertID: "c1", Shard: (orders.SalesShard("o1") + 1) % orders.SalesShards, Reason: "storm"}).ThenNothingSent()
}

func TestAnOrderPlacedAfterTheConcertWasCancelledIsCancelled(t *testing.T) {
	spec := shards.Given(t, orders.StopSales{ConcertID: "c1", Shard: orders.SalesShard("o1"), Reason: "storm"})
	spec.When(place()).
		Then(orders.CancelOrder{OrderID: "o1", Reason: "the concert was cancelled: storm", ConcertCancelled: true})
	spec.When(orders.StopSales{ConcertID: "c1", Shard: orders.SalesShard("o1"), Reason: "storm"}).ThenNothingSent()
}

// A concert whose ID looks like a shard's is a concert of its own: its
// cancellation stops its own shards, and the other concert's orders stay
// (the shards have a stream category of their own).
func TestAConcertNamedLikeAShardIsAConcertOfItsOwn(t *testing.T) {
	other := fmt.Sprintf("c1/%03d", orders.SalesShard("o1"))
	spec := sales.Given(t, orders.ConcertCancelled{ConcertID: "c1", Reason: "storm"})
	var want []any
	for shard := range orders.SalesShards {
		want = append(want, orders.StopSales{ConcertID: other, Shard: shard, Reason: "flood"})
	}
	spec.When(orders.ConcertCancelled{ConcertID: other, Reason: "flood"}).Then(want...)

	orders := shards.Given(t, place())
	orders.When(want[0]).ThenNothingSent()
}

// The orders of a concert are spread over the shards, so that no stream
// holds them all (a process instance is folded whole for each message).
func TestTheOrdersOfAConcertAreSpreadOverTheShards(t *testing.T) {
	counts := make([]int, orders.SalesShards)
	const n = 100 * orders.SalesShards
	for i := range n {
		counts[orders.SalesShard(es.DeriveID("order", i))]++
	}
	for shard, c := range counts {
		if c < n/orders.SalesShards/2 || c > 2*n/orders.SalesShards {
			t.Errorf("shard %d holds %d of %d orders", shard, c, n)
		}
	}
}

// A ledger written before the sales were sharded holds its orders itself:
// the concert's cancellation cancels them from there.
func TestOrdersRecordedBeforeTheShardsAreCancelledFromTheLedger(t *testing.T) {
	reg := mustRegistry()
	store := memory.New(memory.Config{})
	h := es.NewProcessHandler(store, reg, orders.SalesProcess(), es.ProcessConfig{})
	ctx := t.Context()
	old, err := reg.Encode(orders.SaleRecorded{ConcertID: "c1", OrderID: "o-old"})
	if err != nil {
		t.Fatal(err)
	}
	old.ID = es.NewID()
	if _, err := es.Append(ctx, store, "sales-c1", es.NoStream, old); err != nil {
		t.Fatal(err)
	}
	m, err := es.NewMessage(reg, "c1", orders.ConcertCancelled{ConcertID: "c1", Reason: "storm"})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Handle(ctx, m); err != nil {
		t.Fatal(err)
	}
	buckets := make([]int, es.OutboxBuckets)
	for i := range buckets {
		buckets[i] = i
	}
	due, err := store.Due(ctx, time.Now(), buckets, 10*orders.SalesShards)
	if err != nil {
		t.Fatal(err)
	}
	var cancelled []string
	stops := 0
	for _, om := range due {
		switch msg, _ := es.DecodeMessage(reg, om.Message); msg := msg.(type) {
		case orders.CancelOrder:
			cancelled = append(cancelled, msg.OrderID)
		case orders.StopSales:
			stops++
		default:
			t.Errorf("sent %T", msg)
		}
	}
	if len(cancelled) != 1 || cancelled[0] != "o-old" || stops != orders.SalesShards {
		t.Errorf("sent CancelOrder for %v and %d StopSales; want o-old and %d", cancelled, stops, orders.SalesShards)
	}
}

func TestEventSchemas(t *testing.T) {
	reg := es.NewRegistry()
	if err := orders.Register(reg); err != nil {
		t.Fatal(err)
	}
	estest.GoldenSchema(t, reg, "testdata/events")
}
