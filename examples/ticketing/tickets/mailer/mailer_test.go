package mailer_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/examples/ticketing/tickets"
	"esgo.dev/examples/ticketing/tickets/mailer"
	"github.com/mailgun/mailgun-go/v4"
	"github.com/mailgun/mailgun-go/v4/events"
)

func ticketMail(t *testing.T) (tickets.Mail, tickets.Ticket) {
	t.Helper()
	id := tickets.TicketID("o1", "GA", 1)
	tk := tickets.Ticket{ID: id, OrderID: "o1", UserID: "ola", ConcertID: "warsaw-2026", TicketType: "GA", Code: tickets.NewCode(id)}
	m, err := tickets.TicketMail(es.DeriveID("delivery", 1), "ola@example.com", tk)
	if err != nil {
		t.Fatal(err)
	}
	return m, tk
}

// sent is what the SDK sent to the Mailgun API, as a server reads it.
type sent struct {
	path   string
	values map[string][]string
	files  map[string][]*multipart.FileHeader
}

// recordingMailgun is the SDK's own mock of the Mailgun API behind a
// proxy that records each request's form: the mock answers as Mailgun
// does, and the test sees every field the SDK sent.
func recordingMailgun(t *testing.T) (apiBase string, mock mailgun.MockServer, requests func() []sent) {
	t.Helper()
	mock = mailgun.NewMockServer()
	t.Cleanup(mock.Stop)
	target, err := url.Parse(strings.TrimSuffix(mock.URL(), "/v3"))
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	var got []sent
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		cp := r.Clone(r.Context())
		cp.Body = io.NopCloser(bytes.NewReader(body))
		if err := cp.ParseMultipartForm(10 << 20); err == nil {
			mu.Lock()
			got = append(got, sent{path: r.URL.Path, values: cp.MultipartForm.Value, files: cp.MultipartForm.File})
			mu.Unlock()
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/v3", mock, func() []sent {
		mu.Lock()
		defer mu.Unlock()
		return append([]sent(nil), got...)
	}
}

func TestMailgunSendsTheTicketWithAStableMessageID(t *testing.T) {
	base, mock, requests := recordingMailgun(t)
	mg, err := mailer.NewMailgun(mailer.MailgunConfig{Domain: "mg.example.com", APIKey: "key-test", APIBase: base, From: "Tickets <tickets@mg.example.com>"})
	if err != nil {
		t.Fatal(err)
	}
	m, tk := ticketMail(t)
	ctx := context.Background()
	ref, err := mg.Send(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if ref == "" {
		t.Error("no Mailgun ID returned")
	}
	// A redelivered outbox message sends the same mail again: it carries
	// the same references, for whatever deduplicates on them.
	if _, err := mg.Send(ctx, m); err != nil {
		t.Fatal(err)
	}
	reqs := requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	for _, r := range reqs {
		one := func(k string) string {
			if len(r.values[k]) != 1 {
				t.Errorf("field %s: %q, want one value", k, r.values[k])
				return ""
			}
			return r.values[k][0]
		}
		if r.path != "/v3/mg.example.com/messages" {
			t.Errorf("posted to %s", r.path)
		}
		if got := one("to"); got != "ola@example.com" {
			t.Errorf("to %q", got)
		}
		if got := one("subject"); got != "Your ticket for warsaw-2026" {
			t.Errorf("subject %q", got)
		}
		if got := one("text"); !strings.Contains(got, "Ticket code: "+tk.Code) {
			t.Errorf("text %q lacks the ticket's code", got)
		}
		if got := one("html"); !strings.Contains(got, `src="cid:ticket-`+tk.ID+`.png"`) {
			t.Errorf("html %q does not show the QR code", got)
		}
		if got := one("h:Message-Id"); got != mailer.MessageID(m.ID, "mg.example.com") {
			t.Errorf("h:Message-Id %q, want %q", got, mailer.MessageID(m.ID, "mg.example.com"))
		}
		if got := one("v:delivery_id"); got != m.ID {
			t.Errorf("v:delivery_id %q, want %q", got, m.ID)
		}
		inline := r.files["inline"]
		if len(inline) != 1 || inline[0].Filename != "ticket-"+tk.ID+".png" {
			t.Fatalf("inline files %v", inline)
		}
		f, err := inline[0].Open()
		if err != nil {
			t.Fatal(err)
		}
		png, _ := io.ReadAll(f)
		f.Close()
		if want, _ := tickets.QRCode(tk.Code); !bytes.Equal(png, want) {
			t.Error("the inline image is not the ticket's QR code")
		}
	}
	// The mock took it as Mailgun would: accepted, for the recipient.
	var accepted int
	for _, e := range mock.Events() {
		if a, ok := e.(*events.Accepted); ok && a.Recipient == "ola@example.com" && a.Message.Headers.Subject == m.Subject {
			accepted++
		}
	}
	if accepted != 2 {
		t.Errorf("the mock accepted %d mails, want 2", accepted)
	}
}

func TestMailgunRefusingAnAddressIsPermanent(t *testing.T) {
	base, _, _ := recordingMailgun(t)
	mg, err := mailer.NewMailgun(mailer.MailgunConfig{Domain: "mg.example.com", APIKey: "key-test", APIBase: base, From: "tickets@mg.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := ticketMail(t)
	m.To = "not an address"
	_, err = mg.Send(context.Background(), m)
	var perm *tickets.PermanentError
	if !errors.As(err, &perm) {
		t.Errorf("got %v, want a *tickets.PermanentError", err)
	}
}

func TestMailgunUnavailableIsWorthARetry(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	mg, err := mailer.NewMailgun(mailer.MailgunConfig{Domain: "mg.example.com", APIKey: "key-test", APIBase: srv.URL + "/v3", From: "tickets@mg.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := ticketMail(t)
	_, err = mg.Send(context.Background(), m)
	var perm *tickets.PermanentError
	if err == nil || errors.As(err, &perm) {
		t.Errorf("got %v, want a transient error", err)
	}
}

func TestTheFolderWritesOneEMLFilePerMail(t *testing.T) {
	dir := t.TempDir()
	f, err := mailer.NewFolder(dir, "tickets@example.com")
	if err != nil {
		t.Fatal(err)
	}
	m, tk := ticketMail(t)
	for range 2 { // a repeat replaces the file
		if _, err := f.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) != 1 || filepath.Base(files[0]) != m.ID+".eml" {
		t.Fatalf("files %v, want %s.eml alone", files, m.ID)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if msg.Header.Get("To") != "ola@example.com" || msg.Header.Get("Message-ID") != mailer.MessageID(m.ID, "example.com") {
		t.Errorf("headers %v", msg.Header)
	}
	if subj, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject")); subj != m.Subject {
		t.Errorf("subject %q", subj)
	}
	// The parts, as a mail program reads them.
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	var text, png []byte
	related := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := related.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		mt, pp, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		switch mt {
		case "multipart/alternative":
			alt := multipart.NewReader(p, pp["boundary"])
			first, err := alt.NextPart() // multipart decodes quoted-printable
			if err != nil {
				t.Fatal(err)
			}
			text, _ = io.ReadAll(first)
		case "image/png":
			png, _ = io.ReadAll(p)
		}
	}
	if !strings.Contains(string(text), "Ticket code: "+tk.Code) {
		t.Errorf("text part %q lacks the code", text)
	}
	if len(png) == 0 {
		t.Error("no QR code image")
	}
}

func TestTheFolderKeepsFilesInsideIt(t *testing.T) {
	dir := t.TempDir()
	f, err := mailer.NewFolder(filepath.Join(dir, "mail"), "tickets@example.com")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := ticketMail(t)
	m.ID = "../../escape"
	path, err := f.Send(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(path) != f.Dir() {
		t.Errorf("wrote %s, outside %s", path, f.Dir())
	}
}

func TestEMLDatesAreRFC5322(t *testing.T) {
	m, _ := ticketMail(t)
	data, err := mailer.EML("tickets@example.com", "<x@example.com>", time.Date(2026, 7, 1, 9, 0, 0, 0, time.UTC), m)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if d, err := msg.Header.Date(); err != nil || !d.Equal(time.Date(2026, 7, 1, 9, 0, 0, 0, time.UTC)) {
		t.Errorf("date %v, %v", d, err)
	}
}

func TestMailgunIsConfiguredFromTheEnvironment(t *testing.T) {
	t.Setenv("MAILGUN_DOMAIN", "")
	if _, ok := mailer.MailgunConfigFromEnv(); ok {
		t.Error("configured without MAILGUN_DOMAIN")
	}
	t.Setenv("MAILGUN_DOMAIN", "mg.example.com")
	t.Setenv("MAILGUN_API_KEY", "key-test")
	t.Setenv("MAILGUN_FROM", "tickets@mg.example.com")
	t.Setenv("MAILGUN_API_BASE", mailgun.APIBaseEU)
	cfg, ok := mailer.MailgunConfigFromEnv()
	if !ok || cfg != (mailer.MailgunConfig{Domain: "mg.example.com", APIKey: "key-test", From: "tickets@mg.example.com", APIBase: mailgun.APIBaseEU}) {
		t.Errorf("config %+v, %v", cfg, ok)
	}
	if _, err := mailer.NewMailgun(mailer.MailgunConfig{Domain: "mg.example.com"}); err == nil {
		t.Error("NewMailgun without a key: want an error")
	}
}
