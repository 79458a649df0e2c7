package mailer_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"esgo.dev/examples/ticketing/tickets"
	"esgo.dev/examples/ticketing/tickets/mailer"
)

// The example's default mailer writes each ticket e-mail into a folder
// as an .eml file, named after the e-mail's ID: sending it again
// replaces it.
func ExampleFolder() {
	dir, err := os.MkdirTemp("", "tickets-mail")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	f, err := mailer.NewFolder(dir, "tickets@example.com")
	if err != nil {
		panic(err)
	}
	id := tickets.TicketID("order-1", "GA", 1)
	m, err := tickets.TicketMail("delivery-1", "ola@example.com", tickets.Ticket{ID: id, ConcertID: "warsaw-2026", TicketType: "GA", Code: tickets.NewCode(id)})
	if err != nil {
		panic(err)
	}
	for range 2 {
		if _, err := f.Send(context.Background(), m); err != nil {
			panic(err)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	fmt.Println(len(files), filepath.Base(files[0]))
	// Output: 1 delivery-1.eml
}
