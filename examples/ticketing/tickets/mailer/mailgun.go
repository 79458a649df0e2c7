package mailer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"esgo.dev/examples/ticketing/tickets"
	"github.com/mailgun/mailgun-go/v4"
)

// MailgunConfig configures a [Mailgun] mailer.
type MailgunConfig struct {
	// Domain is the Mailgun sending domain, and APIKey its key.
	Domain string
	APIKey string
	// APIBase is the API's address (default mailgun.APIBase, the US
	// region; mailgun.APIBaseEU for the EU; a local server in tests).
	APIBase string
	// From is the sender's address, e.g. "Tickets <tickets@example.com>".
	From string
	// HTTPClient defaults to the SDK's.
	HTTPClient *http.Client
}

// MailgunConfigFromEnv reads a MailgunConfig from the environment:
// MAILGUN_DOMAIN, MAILGUN_API_KEY, MAILGUN_FROM and, optionally,
// MAILGUN_API_BASE. It reports whether MAILGUN_DOMAIN is set, so that a
// program can fall back to the .eml folder without it.
func MailgunConfigFromEnv() (MailgunConfig, bool) {
	cfg := MailgunConfig{Domain: os.Getenv("MAILGUN_DOMAIN"), APIKey: os.Getenv("MAILGUN_API_KEY"),
		From: os.Getenv("MAILGUN_FROM"), APIBase: os.Getenv("MAILGUN_API_BASE")}
	return cfg, cfg.Domain != ""
}

// Mailgun is a tickets.Mailer that sends through Mailgun's HTTP API.
type Mailgun struct {
	mg     *mailgun.MailgunImpl
	from   string
	domain string
}

// NewMailgun returns a Mailgun mailer. Domain, APIKey and From are
// required.
func NewMailgun(cfg MailgunConfig) (*Mailgun, error) {
	if cfg.Domain == "" || cfg.APIKey == "" || cfg.From == "" {
		return nil, errors.New("mailer: Mailgun needs a domain, an API key and a sender")
	}
	mg := mailgun.NewMailgun(cfg.Domain, cfg.APIKey)
	if cfg.APIBase != "" {
		mg.SetAPIBase(cfg.APIBase)
	}
	if cfg.HTTPClient != nil {
		mg.SetClient(cfg.HTTPClient)
	}
	return &Mailgun{mg: mg, from: cfg.From, domain: cfg.Domain}, nil
}

// Send sends m and returns the ID Mailgun gave it. The e-mail carries
// m.ID as its Message-ID (made with [MessageID]) and as the user variable
// "v:delivery_id", the same on every repeat (see the package doc for what
// that does and does not prevent). Attachments go inline, so the HTML
// body shows them. Mailgun refusing the request (a 4xx other than 429)
// is a *tickets.PermanentError: retrying the same request cannot help.
func (g *Mailgun) Send(ctx context.Context, m tickets.Mail) (string, error) {
	msg := mailgun.NewMessage(g.from, m.Subject, m.Text, m.To)
	if m.HTML != "" {
		msg.SetHTML(m.HTML)
	}
	msg.AddHeader("Message-Id", MessageID(m.ID, g.domain))
	if err := msg.AddVariable("delivery_id", m.ID); err != nil {
		return "", err
	}
	for _, a := range m.Attachments {
		msg.AddReaderInline(a.Name, io.NopCloser(bytes.NewReader(a.Data)))
	}
	_, id, err := g.mg.Send(ctx, msg)
	if err != nil {
		var ue *mailgun.UnexpectedResponseError
		if errors.As(err, &ue) && ue.Actual >= 400 && ue.Actual < 500 && ue.Actual != http.StatusTooManyRequests {
			return "", &tickets.PermanentError{Err: fmt.Errorf("mailer: Mailgun refused the e-mail: %d %s", ue.Actual, strings.TrimSpace(string(ue.Data)))}
		}
		return "", fmt.Errorf("mailer: Mailgun: %w", err)
	}
	return id, nil
}
