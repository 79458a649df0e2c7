package finance_test

import (
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/examples/ticketing/finance"
	"esgo.dev/examples/ticketing/money"
)

// payments makes the specs of the payment decider, one per test.
var payments = estest.ForDecider(finance.PaymentDecider())

var (
	t0     = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	giveUp = t0.Add(15 * time.Minute)
)

func pln(a int64) money.Money { return money.Money{Amount: a, Currency: "PLN"} }

func request() finance.RequestPayment {
	return finance.RequestPayment{PaymentID: "p1", OrderID: "o1", UserID: "ola", ConcertID: "warsaw", OrganizerID: "live",
		Amount: pln(50000), Lines: []finance.InvoiceLine{
			{Description: "Standing", Quantity: 2, UnitPrice: pln(20000)},
			{Description: "Parking", Quantity: 1, UnitPrice: pln(10000)},
		}}
}

func requested() finance.PaymentRequested {
	r := request()
	return finance.PaymentRequested{PaymentID: r.PaymentID, OrderID: r.OrderID, UserID: r.UserID, ConcertID: r.ConcertID,
		OrganizerID: r.OrganizerID, Amount: r.Amount, Lines: r.Lines, RequestedAt: t0, GiveUpAt: giveUp}
}

func captured() finance.PaymentCaptured {
	return finance.PaymentCaptured{PaymentID: "p1", OrderID: "o1", OrganizerID: "live", Amount: pln(50000), GatewayID: "pi_1", CapturedAt: t0}
}

func declinedEvent() finance.PaymentDeclined {
	return finance.PaymentDeclined{PaymentID: "p1", OrderID: "o1", Code: "card_declined", Reason: "your card was declined", FailedAt: t0}
}

func refundRequested(id string, a int64) finance.RefundRequested {
	return finance.RefundRequested{PaymentID: "p1", OrderID: "o1", RefundID: id, Amount: pln(a), Reason: "cancelled", RequestedAt: t0}
}

func refundCompleted(id string, a, total int64) finance.RefundCompleted {
	return finance.RefundCompleted{PaymentID: "p1", OrderID: "o1", OrganizerID: "live", RefundID: id, Amount: pln(a),
		TotalRefunded: pln(total), GatewayRefundID: "re_" + id, CompletedAt: t0}
}

func req(r finance.RequestPayment) finance.Request {
	return finance.Request{RequestPayment: r, At: t0, GiveUpAt: giveUp}
}

func TestAPaymentIsRequestedWithItsLines(t *testing.T) {
	payments.Given(t).When(req(request())).Then(requested())
}

func TestARepeatedRequestChangesNothing(t *testing.T) {
	payments.Given(t, requested()).When(req(request())).ThenNothing()
}

func TestAPaymentIsRequestedOncePerOrder(t *testing.T) {
	other := request()
	other.PaymentID = "p2"
	payments.Given(t, requested()).When(req(other)).ThenError(finance.ErrPaymentAlreadyRequested)
}

func TestLinesMustAddUpToTheAmount(t *testing.T) {
	r := request()
	r.Amount = pln(49999)
	payments.Given(t).When(req(r)).ThenError(finance.ErrLinesDoNotAddUp)
}

func TestAPaymentAmountMustBePositive(t *testing.T) {
	r := request()
	r.Amount, r.Lines = pln(0), []finance.InvoiceLine{{Description: "Free", Quantity: 1, UnitPrice: pln(0)}}
	payments.Given(t).When(req(r)).ThenError(finance.ErrInvalidPayment)
}

func TestLinesCannotMixCurrencies(t *testing.T) {
	r := request()
	r.Lines[1].UnitPrice = money.Money{Amount: 10000, Currency: "EUR"}
	payments.Given(t).When(req(r)).ThenError(money.ErrCurrencyMismatch)
}

func TestACurrencyMustBeAnISOCode(t *testing.T) {
	r := request()
	r.Amount.Currency = "zl"
	payments.Given(t).When(req(r)).ThenError(money.ErrInvalidCurrency)
}

func TestACapturedPaymentSucceeds(t *testing.T) {
	payments.Given(t, requested()).
		When(finance.RecordCapture{GatewayID: "pi_1", Amount: pln(50000), At: t0}).
		Then(captured())
}

func TestTheSecondReportOfACaptureIsANoOp(t *testing.T) {
	payments.Given(t, requested(), captured()).
		When(finance.RecordCapture{GatewayID: "pi_1", Amount: pln(50000), At: t0}).
		ThenNothing()
}

func TestACaptureInAnotherCurrencyIsRefused(t *testing.T) {
	payments.Given(t, requested()).
		When(finance.RecordCapture{GatewayID: "pi_1", Amount: money.Money{Amount: 50000, Currency: "EUR"}, At: t0}).
		ThenError(money.ErrCurrencyMismatch)
}

func TestACaptureOfAnotherAmountIsRefused(t *testing.T) {
	payments.Given(t, requested()).
		When(finance.RecordCapture{GatewayID: "pi_1", Amount: pln(100), At: t0}).
		ThenError(finance.ErrCaptureMismatch)
}

func TestAnOutcomeForAnUnknownPaymentIsRefused(t *testing.T) {
	payments.Given(t).When(finance.RecordCapture{GatewayID: "pi_1", Amount: pln(50000), At: t0}).ThenError(finance.ErrUnknownPayment)
}

func TestADeclinedPaymentFailsWithItsReason(t *testing.T) {
	payments.Given(t, requested()).
		When(finance.RecordDecline{Code: "card_declined", Reason: "your card was declined", At: t0}).
		Then(declinedEvent())
}

func TestAPaymentCannotSucceedAfterItFailed_ALateCaptureIsReversed(t *testing.T) {
	payments.Given(t, requested(), declinedEvent()).
		When(finance.RecordCapture{GatewayID: "pi_1", Amount: pln(50000), At: t0}).
		Then(finance.LateCaptureDetected{PaymentID: "p1", OrderID: "o1", Amount: pln(50000), GatewayID: "pi_1", DetectedAt: t0})
}

func TestAPaymentCannotSucceedAfterItWasRefunded(t *testing.T) {
	payments.Given(t, requested(), captured(), refundRequested("r1", 50000), refundCompleted("r1", 50000, 50000)).
		When(finance.RecordCapture{GatewayID: "pi_1", Amount: pln(50000), At: t0}).
		ThenNothing()
}

func TestADeclineAfterTheCaptureIsANoOp(t *testing.T) {
	payments.Given(t, requested(), captured()).
		When(finance.RecordDecline{Code: "card_declined", At: t0}).
		ThenNothing()
}

func TestAPaymentWithoutOutcomeFailsAtItsDeadline(t *testing.T) {
	payments.Given(t, requested()).
		When(finance.GiveUp{At: giveUp}).
		Then(finance.PaymentDeclined{PaymentID: "p1", OrderID: "o1", Code: finance.CodeGatewayUnavailable,
			Reason: "the payment provider did not answer in time; nothing was charged", FailedAt: giveUp})
}

func TestTheDeadlineDoesNothingBeforeItsTime(t *testing.T) {
	payments.Given(t, requested()).When(finance.GiveUp{At: giveUp.Add(-time.Second)}).ThenNothing()
}

func TestTheDeadlineDoesNothingToASettledPayment(t *testing.T) {
	payments.Given(t, requested(), captured()).When(finance.GiveUp{At: giveUp}).ThenNothing()
}

func TestAPartOfACapturedPaymentCanBeRefunded(t *testing.T) {
	payments.Given(t, requested(), captured()).
		When(finance.RequestRefund{RefundID: "r1", Amount: pln(20000), Reason: "cancelled", At: t0}).
		Then(refundRequested("r1", 20000))
}

func TestARefundNeverExceedsWhatWasCaptured(t *testing.T) {
	payments.Given(t, requested(), captured()).
		When(finance.RequestRefund{RefundID: "r1", Amount: pln(50001), At: t0}).
		ThenError(finance.ErrRefundExceedsCapture)
}

func TestRefundsInFlightCountAgainstTheCapture(t *testing.T) {
	payments.Given(t, requested(), captured(), refundRequested("r1", 30000)).
		When(finance.RequestRefund{RefundID: "r2", Amount: pln(30000), At: t0}).
		ThenError(finance.ErrRefundExceedsCapture)
}

func TestPartialRefundsAddUp(t *testing.T) {
	payments.Given(t, requested(), captured(), refundRequested("r1", 20000), refundCompleted("r1", 20000, 20000), refundRequested("r2", 30000)).
		When(finance.RecordRefund{RefundID: "r2", GatewayRefundID: "re_r2", At: t0}).
		Then(refundCompleted("r2", 30000, 50000))
}

func TestPartialRefundsUpToTheCaptureRefundThePayment(t *testing.T) {
	p := finance.PaymentDecider().Fold(requested(), captured(), refundRequested("r1", 20000), refundCompleted("r1", 20000, 20000),
		refundRequested("r2", 30000), refundCompleted("r2", 30000, 50000))
	if p.Status != finance.Refunded || p.Refunded != pln(50000) {
		t.Errorf("status %s, refunded %s; want refunded, 500.00 PLN", p.Status, p.Refunded)
	}
}

func TestAFailedRefundReleasesItsAmount(t *testing.T) {
	payments.Given(t, requested(), captured(), refundRequested("r1", 50000),
		finance.RefundFailed{PaymentID: "p1", OrderID: "o1", RefundID: "r1", Reason: "expired card", FailedAt: t0}).
		When(finance.RequestRefund{RefundID: "r2", Amount: pln(50000), Reason: "cancelled", At: t0}).
		Then(refundRequested("r2", 50000))
}

func TestAFailedPaymentCannotBeRefunded(t *testing.T) {
	payments.Given(t, requested(), declinedEvent()).
		When(finance.RequestRefund{RefundID: "r1", Amount: pln(100), At: t0}).
		ThenError(finance.ErrNotCaptured)
}

func TestARefundCannotMixCurrencies(t *testing.T) {
	payments.Given(t, requested(), captured()).
		When(finance.RequestRefund{RefundID: "r1", Amount: money.Money{Amount: 100, Currency: "EUR"}, At: t0}).
		ThenError(money.ErrCurrencyMismatch)
}

func TestARepeatedRefundRequestChangesNothing(t *testing.T) {
	payments.Given(t, requested(), captured(), refundRequested("r1", 20000)).
		When(finance.RequestRefund{RefundID: "r1", Amount: pln(20000), Reason: "cancelled", At: t0}).
		ThenNothing()
}

func TestARefundIDCannotBeReusedForAnotherAmount(t *testing.T) {
	payments.Given(t, requested(), captured(), refundRequested("r1", 20000)).
		When(finance.RequestRefund{RefundID: "r1", Amount: pln(100), At: t0}).
		ThenError(finance.ErrRefundIDReused)
}

func TestTheSecondReportOfARefundIsANoOp(t *testing.T) {
	payments.Given(t, requested(), captured(), refundRequested("r1", 20000), refundCompleted("r1", 20000, 20000)).
		When(finance.RecordRefund{RefundID: "r1", GatewayRefundID: "re_r1", At: t0}).
		ThenNothing()
}

func TestEventSchemas(t *testing.T) {
	reg := es.NewRegistry()
	if err := finance.Register(reg); err != nil {
		t.Fatal(err)
	}
	estest.GoldenSchema(t, reg, "testdata/events")
}
