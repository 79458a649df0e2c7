package tickets_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/examples/ticketing/tickets"
)

// ticketSpec makes the specs of the ticket decider, one per test.
var ticketSpec = estest.ForDecider(tickets.TicketDecider())

var (
	at       = time.Date(2026, 7, 12, 18, 0, 0, 0, time.UTC)
	ticketID = tickets.TicketID("o1", "GA", 1)
	code     = ticketID + ".ABCDEFGHIJKLMNOPQRSTUVWXYZ"
)

func issued() tickets.TicketIssued {
	return tickets.TicketIssued{TicketID: ticketID, OrderID: "o1", UserID: "ola", ConcertID: "c1", TicketType: "GA", Seat: 1, Code: code, IssuedAt: at}
}

func issue(c string) tickets.IssueTicket {
	return tickets.IssueTicket{TicketID: ticketID, OrderID: "o1", UserID: "ola", ConcertID: "c1", TicketType: "GA", Seat: 1, Code: c, At: at}
}

func admit(gate string) tickets.AdmitTicket {
	return tickets.AdmitTicket{TicketID: ticketID, Code: code, ConcertID: "c1", Gate: gate, At: at.Add(time.Hour)}
}

func TestAPaidSeatGetsATicket(t *testing.T) {
	ticketSpec.Given(t).When(issue(code)).Then(issued())
}

func TestIssuingTwiceIssuesOneTicketWithTheFirstCode(t *testing.T) {
	ticketSpec.Given(t, issued()).When(issue(tickets.NewCode(ticketID))).ThenNothing()
}

func TestATicketNeedsACodeThatNamesIt(t *testing.T) {
	ticketSpec.Given(t).When(issue(tickets.NewCode(tickets.TicketID("o1", "GA", 2)))).ThenError(tickets.ErrInvalidTicket)
}

func TestATicketNeedsAnOrderAUserAndASeat(t *testing.T) {
	c := issue(code)
	c.UserID = ""
	ticketSpec.Given(t).When(c).ThenError(tickets.ErrInvalidTicket)
}

func TestATicketIsAdmittedOnce(t *testing.T) {
	ticketSpec.Given(t, issued()).When(admit("north-1")).
		Then(tickets.TicketAdmitted{TicketID: ticketID, ConcertID: "c1", Gate: "north-1", At: at.Add(time.Hour)})
}

func TestAUsedTicketSaysWhereAndWhenItWasUsed(t *testing.T) {
	var used *tickets.AlreadyUsedError
	ticketSpec.Given(t, issued(), tickets.TicketAdmitted{TicketID: ticketID, ConcertID: "c1", Gate: "north-1", At: at.Add(time.Hour)}).
		When(admit("south-2")).
		ThenErrorAs(&used)
	if used.Gate != "north-1" || !used.At.Equal(at.Add(time.Hour)) {
		t.Errorf("used at %s, %s; want north-1, %s", used.Gate, used.At, at.Add(time.Hour))
	}
	if !errors.Is(used, tickets.ErrAlreadyUsed) || !strings.Contains(used.Error(), "already used at gate north-1, at 2026-07-12T19:00:00Z") {
		t.Errorf("error %q", used)
	}
}

func TestAVoidedTicketIsRefused(t *testing.T) {
	ticketSpec.Given(t, issued(), tickets.TicketVoided{TicketID: ticketID, OrderID: "o1", ConcertID: "c1", Reason: "refunded", At: at}).
		When(admit("north-1")).
		ThenError(tickets.ErrTicketVoided)
}

func TestAForgedCodeIsRefused(t *testing.T) {
	scan := admit("north-1")
	scan.Code = tickets.NewCode(ticketID)
	ticketSpec.Given(t, issued()).When(scan).ThenError(tickets.ErrInvalidCode)
}

func TestAForgedCodeLearnsNothingAboutAUsedTicket(t *testing.T) {
	scan := admit("north-1")
	scan.Code = tickets.NewCode(ticketID)
	ticketSpec.Given(t, issued(), tickets.TicketAdmitted{TicketID: ticketID, ConcertID: "c1", Gate: "north-1", At: at}).
		When(scan).ThenError(tickets.ErrInvalidCode)
}

func TestATicketIsRefusedAtAnotherConcertsGate(t *testing.T) {
	scan := admit("north-1")
	scan.ConcertID = "c2"
	ticketSpec.Given(t, issued()).When(scan).ThenError(tickets.ErrWrongConcert)
}

func TestAnUnknownTicketIsRefused(t *testing.T) {
	ticketSpec.Given(t).When(admit("north-1")).ThenError(tickets.ErrUnknownTicket)
}

func TestAScanNeedsAGate(t *testing.T) {
	ticketSpec.Given(t, issued()).When(admit("")).ThenError(tickets.ErrInvalidTicket)
}

func TestVoidingTwiceVoidsOnce(t *testing.T) {
	voided := tickets.TicketVoided{TicketID: ticketID, OrderID: "o1", ConcertID: "c1", Reason: "refunded", At: at}
	ticketSpec.Given(t, issued()).When(tickets.VoidTicket{TicketID: ticketID, Reason: "refunded", At: at}).Then(voided)
	ticketSpec.Given(t, issued(), voided).When(tickets.VoidTicket{TicketID: ticketID, Reason: "again", At: at}).ThenNothing()
}

func TestAReplacedCodeNoLongerAdmits(t *testing.T) {
	newCode := tickets.NewCode(ticketID)
	ticketSpec.Given(t, issued()).When(tickets.ReplaceCode{TicketID: ticketID, Code: newCode, Reason: "parcel lost", At: at}).
		Then(tickets.TicketCodeReplaced{TicketID: ticketID, Code: newCode, Reason: "parcel lost", At: at})
	ticketSpec.Given(t, issued(), tickets.TicketCodeReplaced{TicketID: ticketID, Code: newCode, Reason: "parcel lost", At: at}).
		When(admit("north-1")).ThenError(tickets.ErrInvalidCode)
}

func TestCodesAreUnguessable(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		c := tickets.NewCode(ticketID)
		id, secret, _ := strings.Cut(c, ".")
		if id != ticketID || len(secret) < 26 { // 26 base32 characters carry 130 bits
			t.Fatalf("code %q: want the ticket ID and at least 26 base32 characters", c)
		}
		if seen[secret] {
			t.Fatalf("code %q drawn twice", c)
		}
		seen[secret] = true
	}
	if got, err := tickets.CodeTicketID(code); err != nil || got != ticketID {
		t.Errorf("CodeTicketID(%q) = %q, %v", code, got, err)
	}
	for _, bad := range []string{"", "nodot", ticketID + ".short", "NOT-A-UUID.ABCDEFGHIJKLMNOPQRSTUVWXYZ"} {
		if _, err := tickets.CodeTicketID(bad); !errors.Is(err, tickets.ErrInvalidCode) {
			t.Errorf("CodeTicketID(%q): %v, want ErrInvalidCode", bad, err)
		}
	}
}

func TestTicketIDsAreOnePerSeat(t *testing.T) {
	a, b, c := tickets.TicketID("o1", "GA", 1), tickets.TicketID("o1", "GA", 2), tickets.TicketID("o2", "GA", 1)
	if a == b || a == c || !es.ValidID(a) || a != tickets.TicketID("o1", "GA", 1) {
		t.Errorf("ticket IDs %s %s %s", a, b, c)
	}
}

func TestTheQRCodeIsAPNG(t *testing.T) {
	png, err := tickets.QRCode(code)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(png), "\x89PNG\r\n\x1a\n") {
		t.Errorf("QR code is not a PNG: % x", png[:8])
	}
}
