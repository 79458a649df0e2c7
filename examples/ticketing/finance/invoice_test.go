package finance_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/es/memory"
	"esgo.dev/es/postgres"
	"esgo.dev/es/postgres/pgtest"
	"esgo.dev/es/sqlite"
	"esgo.dev/examples/ticketing/finance"
	"esgo.dev/examples/ticketing/money"
)

// invoices makes the specs of the invoice decider, one per test.
var invoices = estest.ForDecider(finance.InvoiceDecider())

func issue() finance.IssueInvoice {
	r := request()
	return finance.IssueInvoice{InvoiceID: "i1", Number: "live/2026/000001", OrganizerID: "live", Year: 2026, Seq: 1,
		OrderID: "o1", PaymentID: "p1", UserID: "ola", ConcertID: "warsaw",
		Buyer: finance.BillingInfo{Name: "Ola", Address: "Warszawa", Email: "ola@example.com"},
		Lines: r.Lines, Total: r.Amount, At: t0}
}

func issued() finance.InvoiceIssued {
	c := issue()
	return finance.InvoiceIssued{InvoiceID: c.InvoiceID, Number: c.Number, OrganizerID: c.OrganizerID, Year: c.Year, Seq: c.Seq,
		OrderID: c.OrderID, PaymentID: c.PaymentID, UserID: c.UserID, ConcertID: c.ConcertID, Buyer: c.Buyer,
		Lines: c.Lines, Total: c.Total, IssuedAt: t0}
}

func creditNote(id string, a int64) finance.IssueCreditNote {
	return finance.IssueCreditNote{CreditNoteID: "c-" + id, Number: "live/2026/C00000" + id, Seq: 1, RefundID: id, Amount: pln(a), Reason: "cancelled", At: t0}
}

func credited(id string, a int64) finance.CreditNoteIssued {
	return finance.CreditNoteIssued{CreditNoteID: "c-" + id, Number: "live/2026/C00000" + id, Seq: 1, InvoiceID: "i1", OrderID: "o1",
		RefundID: id, Amount: pln(a), Reason: "cancelled", IssuedAt: t0}
}

func TestAnInvoiceIsIssuedForAPaidOrder(t *testing.T) {
	invoices.Given(t).When(issue()).Then(issued())
}

func TestAnInvoiceIsIssuedOncePerPaidOrder(t *testing.T) {
	invoices.Given(t, issued()).When(issue()).ThenNothing()
}

func TestAnIssuedInvoiceIsImmutable(t *testing.T) {
	changed := issue()
	changed.Lines = changed.Lines[:1]
	changed.Total = pln(40000)
	changed.PaymentID = "p2"
	invoices.Given(t, issued()).When(changed).ThenError(finance.ErrInvoiceImmutable)
}

func TestAnInvoiceTotalIsTheSumOfItsLines(t *testing.T) {
	c := issue()
	c.Total = pln(1)
	invoices.Given(t).When(c).ThenError(finance.ErrLinesDoNotAddUp)
}

func TestAnInvoiceCannotMixCurrencies(t *testing.T) {
	c := issue()
	c.Lines = append(slices.Clone(c.Lines), finance.InvoiceLine{Description: "Fee", Quantity: 1, UnitPrice: money.Money{Amount: 1, Currency: "EUR"}})
	invoices.Given(t).When(c).ThenError(money.ErrCurrencyMismatch)
}

func TestACorrectionIsACreditNote(t *testing.T) {
	invoices.Given(t, issued()).When(creditNote("1", 20000)).Then(credited("1", 20000))
}

func TestCreditNotesNeverExceedTheInvoice(t *testing.T) {
	invoices.Given(t, issued(), credited("1", 40000)).When(creditNote("2", 10001)).ThenError(finance.ErrCreditExceedsInvoice)
}

func TestACreditNoteNeedsAnInvoice(t *testing.T) {
	invoices.Given(t).When(creditNote("1", 100)).ThenError(finance.ErrNoInvoice)
}

func TestACreditNoteIsInTheInvoiceCurrency(t *testing.T) {
	c := creditNote("1", 100)
	c.Amount.Currency = "EUR"
	invoices.Given(t, issued()).When(c).ThenError(money.ErrCurrencyMismatch)
}

func TestARefundIsCreditedOnce(t *testing.T) {
	invoices.Given(t, issued(), credited("1", 20000)).When(creditNote("1", 20000)).ThenNothing()
}

var billing = estest.ForDecider(finance.BillingDecider())

func TestBillingInfoNeedsANameAndAnEmail(t *testing.T) {
	billing.Given(t).When(finance.SetBillingInfo{UserID: "ola", Info: finance.BillingInfo{Name: "Ola"}}).ThenError(finance.ErrInvalidBillingInfo)
}

func TestBillingInfoIsRecorded(t *testing.T) {
	info := finance.BillingInfo{Name: "Ola", Email: "ola@example.com", Address: "Warszawa"}
	billing.Given(t).When(finance.SetBillingInfo{UserID: "ola", Info: info, PaymentMethod: "pm_card_visa"}).
		Then(finance.BillingInfoRecorded{UserID: "ola", Info: info, PaymentMethod: "pm_card_visa"})
}

// TestInvoiceNumbersHaveNoGapsNorDuplicatesUnderConcurrentPayments issues
// the invoices of many orders of one organizer at once, each in its own
// goroutine released together, on the memory, SQLite and PostgreSQL
// stores: every
// number from 1 to n is used exactly once, and invoices of another
// organizer, and another year, count on their own.
func TestInvoiceNumbersHaveNoGapsNorDuplicatesUnderConcurrentPayments(t *testing.T) {
	stores := map[string]func(t *testing.T) es.Store{
		"memory": func(*testing.T) es.Store { return memory.New(memory.Config{}) },
		"sqlite": func(t *testing.T) es.Store {
			s, err := sqlite.Open(context.Background(), t.TempDir()+"/events.db", sqlite.Config{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
		"postgres": func(t *testing.T) es.Store { return pgtest.NewStore(t, postgres.Config{}) },
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			store := open(t)
			reg := registry(t)
			h := es.NewMultiStreamHandler(store, reg, es.HandlerConfig{MaxAttempts: 10000})
			const n = 60
			start := make(chan struct{})
			var wg sync.WaitGroup
			errs := make(chan error, n+2)
			issueAt := func(org, order string, at time.Time) {
				<-start
				due := finance.InvoiceDue{OrderID: order, PaymentID: "pay-" + order, UserID: "ola", ConcertID: "warsaw",
					OrganizerID: org, Lines: request().Lines, Total: request().Amount, PaidAt: at}
				_, err := h.Handle(ctx, es.NewID(), func(ctx context.Context, d *es.Decision) error {
					return finance.IssueInvoiceFor(ctx, d, due, at)
				})
				errs <- err
			}
			for i := range n {
				wg.Go(func() { issueAt("live", fmt.Sprintf("o%d", i), t0) })
			}
			wg.Go(func() { issueAt("other", "x1", t0) })
			wg.Go(func() { issueAt("live", "next-year", time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) })
			close(start)
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			var numbers []string
			for i := range n {
				inv, _, err := es.NewCommandHandler(store, reg, finance.InvoiceDecider(), es.HandlerConfig{}).Load(ctx, finance.InvoiceStream(fmt.Sprintf("o%d", i)))
				if err != nil {
					t.Fatal(err)
				}
				numbers = append(numbers, inv.Issued.Number)
			}
			slices.Sort(numbers)
			for i, got := range numbers {
				if want := finance.InvoiceNumber("live", 2026, i+1); got != want {
					t.Fatalf("number %d is %q, want %q (all: %v)", i, got, want, numbers)
				}
			}
			for order, want := range map[string]string{"x1": "other/2026/000001", "next-year": "live/2027/000001"} {
				inv, _, _ := es.NewCommandHandler(store, reg, finance.InvoiceDecider(), es.HandlerConfig{}).Load(ctx, finance.InvoiceStream(order))
				if inv.Issued.Number != want {
					t.Errorf("invoice of %s is %q, want %q", order, inv.Issued.Number, want)
				}
			}
		})
	}
}

func registry(t testing.TB) *es.Registry {
	t.Helper()
	reg := es.NewRegistry()
	if err := finance.Register(reg); err != nil {
		t.Fatal(err)
	}
	return reg
}

// TestAnInvoiceDueTwiceUsesOneNumber: the request for an invoice arrives
// again (the relay delivers at least once, under another message ID when
// the payment's outcome was reported twice): the order keeps its invoice
// and the book no number for it, so the next order's number follows.
func TestAnInvoiceDueTwiceUsesOneNumber(t *testing.T) {
	ctx := context.Background()
	store := memory.New(memory.Config{})
	reg := registry(t)
	h := es.NewMultiStreamHandler(store, reg, es.HandlerConfig{})
	issueFor := func(order string) {
		t.Helper()
		due := finance.InvoiceDue{OrderID: order, PaymentID: "pay-" + order, UserID: "ola", ConcertID: "warsaw",
			OrganizerID: "live", Lines: request().Lines, Total: request().Amount, PaidAt: t0}
		if _, err := h.Handle(ctx, es.NewID(), func(ctx context.Context, d *es.Decision) error {
			return finance.IssueInvoiceFor(ctx, d, due, t0)
		}); err != nil {
			t.Fatal(err)
		}
	}
	issueFor("o1")
	issueFor("o1")
	issueFor("o2")
	load := es.NewCommandHandler(store, reg, finance.InvoiceDecider(), es.HandlerConfig{})
	for order, want := range map[string]string{"o1": "live/2026/000001", "o2": "live/2026/000002"} {
		inv, _, err := load.Load(ctx, finance.InvoiceStream(order))
		if err != nil || inv.Issued.Number != want {
			t.Errorf("invoice of %s: %q, %v; want %q", order, inv.Issued.Number, err, want)
		}
	}
}
