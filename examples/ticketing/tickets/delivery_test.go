package tickets_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"esgo.dev/es/estest"
	"esgo.dev/examples/ticketing/tickets"
)

// deliverySpec makes the specs of the delivery decider, one per test.
var deliverySpec = estest.ForDecider(tickets.DeliveryDecider())

var (
	byEmail   = tickets.Delivery{Method: tickets.ByEmail, Email: "ola@example.com"}
	warsaw    = &tickets.PostalAddress{Name: "Ola Nowak", Street: "Marszałkowska 1", City: "Warszawa", PostalCode: "00-001", Country: "PL"}
	byCourier = tickets.Delivery{Method: tickets.ByCourier, Address: warsaw}
	retry     = tickets.RetryPolicy{MaxAttempts: 3, MinBackoff: time.Minute, MaxBackoff: 10 * time.Minute}
)

func requested(d tickets.Delivery) tickets.DeliveryRequested {
	return tickets.DeliveryRequested{TicketID: ticketID, OrderID: "o1", UserID: "ola", RequestID: "r1", Delivery: d, At: at}
}

func request(id string, d tickets.Delivery) tickets.RequestDelivery {
	return tickets.RequestDelivery{TicketID: ticketID, OrderID: "o1", UserID: "ola", RequestID: id, Delivery: d, At: at}
}

func failed(attempt int, retryAt time.Time) tickets.DeliveryAttemptFailed {
	return tickets.DeliveryAttemptFailed{TicketID: ticketID, RequestID: "r1", Attempt: attempt, Reason: "503", RetryAt: retryAt, At: at}
}

func failure(attempt int) tickets.RecordFailure {
	return tickets.RecordFailure{RequestID: "r1", Attempt: attempt, Reason: "503", At: at, Retry: retry}
}

func shipped() tickets.ParcelShipped {
	return tickets.ParcelShipped{TicketID: ticketID, RequestID: "r1", Attempt: 1, Tracking: "FC1", At: at}
}

func TestADeliveryIsRequested(t *testing.T) {
	deliverySpec.Given(t).When(request("r1", byEmail)).Then(requested(byEmail))
}

func TestRequestingTheSameSendingTwiceRequestsOnce(t *testing.T) {
	deliverySpec.Given(t, requested(byEmail)).When(request("r1", byEmail)).ThenNothing()
}

func TestASecondSendingWaitsForTheFirst(t *testing.T) {
	deliverySpec.Given(t, requested(byEmail)).When(request("r2", byEmail)).ThenError(tickets.ErrDeliveryInProgress)
}

func TestADeliveredTicketCanBeSentAgain(t *testing.T) {
	again := requested(byEmail)
	again.RequestID = "r2"
	deliverySpec.Given(t, requested(byEmail), tickets.TicketEmailed{TicketID: ticketID, RequestID: "r1", Attempt: 1, Email: "ola@example.com", Reference: "m1", At: at}).
		When(request("r2", byEmail)).Then(again)
}

func TestATicketIsResentAtMostMaxResendsTimes(t *testing.T) {
	// The first sending and MaxResends resends, each e-mailed.
	var history []tickets.DeliveryEvent
	for i := range tickets.MaxResends + 1 {
		id := fmt.Sprint("r", i+1)
		r := requested(byEmail)
		r.RequestID = id
		history = append(history, r, tickets.TicketEmailed{TicketID: ticketID, RequestID: id, Attempt: 1, Email: "ola@example.com", Reference: "m", At: at})
	}
	deliverySpec.Given(t, history...).When(request("one more", byEmail)).ThenError(tickets.ErrTooManyResends)
	last := history[len(history)-2].(tickets.DeliveryRequested).RequestID
	deliverySpec.Given(t, history...).When(request(last, byEmail)).ThenNothing() // a repeat of the last is no new resend

	again := requested(byEmail)
	again.RequestID = "one more"
	history = history[:len(history)-2]
	deliverySpec.Given(t, history...).When(request("one more", byEmail)).Then(again)
}

func TestASentEmailIsRecorded(t *testing.T) {
	deliverySpec.Given(t, requested(byEmail)).
		When(tickets.RecordSent{RequestID: "r1", Attempt: 1, Reference: "m1", At: at}).
		Then(tickets.TicketEmailed{TicketID: ticketID, RequestID: "r1", Attempt: 1, Email: "ola@example.com", Reference: "m1", At: at})
}

func TestARedeliveredOutcomeIsRecordedOnce(t *testing.T) {
	deliverySpec.Given(t, requested(byEmail), tickets.TicketEmailed{TicketID: ticketID, RequestID: "r1", Attempt: 1, Email: "ola@example.com", Reference: "m1", At: at}).
		When(tickets.RecordSent{RequestID: "r1", Attempt: 1, Reference: "m2", At: at}).
		ThenNothing()
}

func TestAFailedAttemptIsRetriedWithBackoff(t *testing.T) {
	deliverySpec.Given(t, requested(byEmail)).When(failure(1)).Then(failed(1, at.Add(time.Minute)))
	deliverySpec.Given(t, requested(byEmail), failed(1, at.Add(time.Minute))).When(failure(2)).Then(failed(2, at.Add(2*time.Minute)))
}

func TestBackoffDoublesUpToItsBound(t *testing.T) {
	for n, want := range map[int]time.Duration{1: time.Minute, 2: 2 * time.Minute, 4: 8 * time.Minute, 5: 10 * time.Minute, 60: 10 * time.Minute} {
		if got := retry.Backoff(n); got != want {
			t.Errorf("Backoff(%d) = %s, want %s", n, got, want)
		}
	}
}

func TestAfterTheLastAttemptTheDeliveryFails(t *testing.T) {
	deliverySpec.Given(t, requested(byEmail), failed(1, at), failed(2, at)).When(failure(3)).
		Then(tickets.DeliveryGaveUp{TicketID: ticketID, OrderID: "o1", RequestID: "r1", Attempts: 3, Reason: "503", At: at})
}

func TestAPermanentFailureIsNotRetried(t *testing.T) {
	f := failure(1)
	f.Permanent, f.Reason = true, "invalid address"
	deliverySpec.Given(t, requested(byEmail)).When(f).
		Then(tickets.DeliveryGaveUp{TicketID: ticketID, OrderID: "o1", RequestID: "r1", Attempts: 1, Reason: "invalid address", At: at})
}

func TestAStaleAttemptChangesNothing(t *testing.T) {
	deliverySpec.Given(t, requested(byEmail), failed(1, at)).When(failure(1)).ThenNothing()
	deliverySpec.Given(t, requested(byEmail), failed(1, at)).When(tickets.RecordSent{RequestID: "r1", Attempt: 1, Reference: "m", At: at}).ThenNothing()
}

func TestACourierTakesTheParcel(t *testing.T) {
	deliverySpec.Given(t, requested(byCourier)).When(tickets.RecordSent{RequestID: "r1", Attempt: 1, Reference: "FC1", At: at}).Then(shipped())
}

func TestADeliveredParcelIsRecorded(t *testing.T) {
	deliverySpec.Given(t, requested(byCourier), shipped()).When(tickets.RecordParcelDelivered{Tracking: "FC1", At: at}).
		Then(tickets.ParcelDelivered{TicketID: ticketID, Tracking: "FC1", At: at})
}

func TestALostParcelIsSentAgainAsANewParcel(t *testing.T) {
	deliverySpec.Given(t, requested(byCourier), shipped()).When(tickets.RecordParcelLost{Tracking: "FC1", At: at, Retry: retry}).
		Then(tickets.ParcelLost{TicketID: ticketID, RequestID: "r1", Attempt: 1, Tracking: "FC1", RetryAt: at.Add(time.Minute), At: at})
	d := tickets.DeliveryDecider()
	before := d.Fold(requested(byCourier))
	after := d.Fold(requested(byCourier), shipped(), tickets.ParcelLost{TicketID: ticketID, RequestID: "r1", Attempt: 1, Tracking: "FC1", At: at})
	if before.DispatchKey() == after.DispatchKey() || after.Attempt != 2 || after.Status != tickets.StatusPending {
		t.Errorf("after a lost parcel: key %q (was %q), attempt %d, status %s", after.DispatchKey(), before.DispatchKey(), after.Attempt, after.Status)
	}
}

func TestALostLastParcelFailsTheDelivery(t *testing.T) {
	deliverySpec.Given(t, requested(byCourier), failed(1, at), failed(2, at), tickets.ParcelShipped{TicketID: ticketID, RequestID: "r1", Attempt: 3, Tracking: "FC1", At: at}).
		When(tickets.RecordParcelLost{Tracking: "FC1", At: at, Retry: retry}).
		Then(tickets.ParcelLost{TicketID: ticketID, RequestID: "r1", Attempt: 3, Tracking: "FC1", At: at},
			tickets.DeliveryGaveUp{TicketID: ticketID, OrderID: "o1", RequestID: "r1", Attempts: 3, Reason: "parcel FC1 lost", At: at})
}

func TestAVoidedTicketsDeliveryIsCancelled(t *testing.T) {
	deliverySpec.Given(t, requested(byCourier), shipped()).When(tickets.CancelDelivery{Reason: "refunded", At: at}).
		Then(tickets.DeliveryCancelled{TicketID: ticketID, RequestID: "r1", Reason: "refunded", At: at})
	deliverySpec.Given(t, requested(byCourier), shipped(), tickets.ParcelDelivered{TicketID: ticketID, Tracking: "FC1", At: at}).
		When(tickets.CancelDelivery{Reason: "refunded", At: at}).ThenNothing()
}

func TestADeliveryNeedsAValidAddress(t *testing.T) {
	for _, d := range []tickets.Delivery{
		{Method: tickets.ByEmail, Email: "ola"},
		{Method: tickets.ByEmail, Email: "Ola <ola@example.com>"},
		{Method: tickets.ByEmail, Email: "ola@localhost"},
		{Method: tickets.ByCourier},
		{Method: tickets.ByCourier, Address: &tickets.PostalAddress{Name: "Ola", Street: "x", City: "y", PostalCode: "1", Country: "Poland"}},
		{Method: "pigeon"},
	} {
		if err := d.Validate(); !errors.Is(err, tickets.ErrInvalidDelivery) {
			t.Errorf("%+v: %v, want ErrInvalidDelivery", d, err)
		}
	}
	for _, d := range []tickets.Delivery{byEmail, byCourier} {
		if err := d.Validate(); err != nil {
			t.Errorf("%+v: %v", d, err)
		}
	}
}
