// Package mailer has the tickets module's mailers: [Folder], which writes
// each e-mail as an .eml file for a workshop attendee to open (the
// default), and [Mailgun], which sends through Mailgun's HTTP API with
// mailgun-go/v4.
//
// # What "does not mail twice" means
//
// The tickets module calls a mailer from the relay's publisher, at least
// once per e-mail: a crash after the provider accepted the e-mail and
// before the delivery stream recorded it means the same e-mail (same
// tickets.Mail.ID) is handed over again. The delivery stream stops every
// other repeat: once a send is recorded, a redelivered message does
// nothing. For the window left:
//
//   - Folder names the file after the e-mail's ID and replaces it
//     atomically: a repeat rewrites the same file, so there is one mail.
//   - Mailgun has no idempotency key (the workshop design's RequestOptions
//     with an IdempotencyKey does not exist). Each e-mail goes out with a
//     Message-ID made from its ID and the ID as the user variable
//     "v:delivery_id", so a repeat is the same message: mail services that
//     drop a second copy of a Message-ID (Gmail does) show one, and the
//     provider's event log tells them apart. A repeat within that window
//     can still reach an inbox twice. It is at least once, never zero:
//     losing a ticket is worse than a second copy of it.
package mailer

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"time"

	"esgo.dev/examples/ticketing/tickets"
)

// Folder is a tickets.Mailer that writes each e-mail to Dir as
// "<ID>.eml", a file any mail program opens. It is the example's default
// mailer: no account, no network.
type Folder struct {
	dir, from, domain string
}

// NewFolder returns a mailer writing to dir e-mails from the address
// from. The folder is created when the first e-mail is written.
func NewFolder(dir, from string) (*Folder, error) {
	_, domain, ok := strings.Cut(from, "@")
	if !ok || domain == "" || dir == "" {
		return nil, fmt.Errorf("mailer: a folder and a sender's address are required, got %q and %q", dir, from)
	}
	return &Folder{dir: dir, from: from, domain: domain}, nil
}

// Dir returns the folder the e-mails are written to.
func (f *Folder) Dir() string { return f.dir }

// Send writes m to Dir as "<m.ID>.eml" and returns the file's path. The
// file is written under a temporary name and renamed, so a reader never
// sees half an e-mail and a repeat of m.ID replaces the file.
func (f *Folder) Send(ctx context.Context, m tickets.Mail) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if m.ID == "" || m.To == "" {
		return "", errors.New("mailer: a mail needs an ID and a recipient")
	}
	data, err := EML(f.from, MessageID(m.ID, f.domain), time.Now(), m)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		return "", fmt.Errorf("mailer: %w", err)
	}
	path := filepath.Join(f.dir, fileName(m.ID)+".eml")
	tmp, err := os.CreateTemp(f.dir, ".tmp-*.eml")
	if err != nil {
		return "", fmt.Errorf("mailer: %w", err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("mailer: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("mailer: %w", err)
	}
	return path, nil
}

// fileName keeps the letters, digits, '-' and '_' of an ID, so an ID
// cannot name a file outside the folder.
func fileName(id string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, id)
}

// MessageID returns the Message-ID of the e-mail with the given ID, from
// a sender at domain: the same for every repeat of the e-mail.
func MessageID(id, domain string) string {
	return "<" + fileName(id) + "@" + domain + ">"
}

// EML returns m as an RFC 5322 message: a text and an HTML body, with the
// attachments inline beside the HTML (which refers to them as
// "cid:NAME").
func EML(from, messageID string, date time.Time, m tickets.Mail) ([]byte, error) {
	var b bytes.Buffer
	hdr := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	hdr("From", from)
	hdr("To", m.To)
	hdr("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	hdr("Date", date.Format(time.RFC1123Z))
	hdr("Message-ID", messageID)
	hdr("X-Delivery-ID", m.ID)
	hdr("MIME-Version", "1.0")
	related := multipart.NewWriter(&b)
	hdr("Content-Type", `multipart/related; type="multipart/alternative"; boundary=`+related.Boundary())
	b.WriteString("\r\n")

	var alt bytes.Buffer
	altw := multipart.NewWriter(&alt)
	for _, part := range []struct{ typ, body string }{{"text/plain", m.Text}, {"text/html", m.HTML}} {
		if part.body == "" {
			continue
		}
		w, err := altw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.typ + "; charset=utf-8"},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, err
		}
		qp := quotedprintable.NewWriter(w)
		if _, err := qp.Write([]byte(part.body)); err != nil {
			return nil, err
		}
		if err := qp.Close(); err != nil {
			return nil, err
		}
	}
	if err := altw.Close(); err != nil {
		return nil, err
	}
	w, err := related.CreatePart(textproto.MIMEHeader{"Content-Type": {`multipart/alternative; boundary=` + altw.Boundary()}})
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(alt.Bytes()); err != nil {
		return nil, err
	}
	for _, a := range m.Attachments {
		w, err := related.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {mime.FormatMediaType(a.ContentType, map[string]string{"name": a.Name})},
			"Content-Transfer-Encoding": {"base64"},
			"Content-ID":                {"<" + a.Name + ">"},
			"Content-Disposition":       {mime.FormatMediaType("inline", map[string]string{"filename": a.Name})},
		})
		if err != nil {
			return nil, err
		}
		enc := base64.StdEncoding.EncodeToString(a.Data)
		for len(enc) > 76 {
			fmt.Fprintf(w, "%s\r\n", enc[:76])
			enc = enc[76:]
		}
		fmt.Fprintf(w, "%s\r\n", enc)
	}
	if err := related.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
