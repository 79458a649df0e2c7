package concerts_test

import (
	"fmt"
	"time"

	"esgo.dev/examples/ticketing/concerts"
	"esgo.dev/examples/ticketing/money"
)

// A concert's decider is a pure function of history and command: here a
// cancelled concert refuses an update.
func ExampleDecider() {
	d := concerts.Decider()
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	create := concerts.CreateConcert{ConcertID: "c1", Name: "Summer Night", Artist: "Kwiat Jabłoni",
		StartsAt: at.AddDate(0, 4, 0), Venue: "Torwar, Warsaw", At: at, OrganizerID: "olga",
		TicketTypes: []concerts.TicketType{{Name: "VIP", Price: money.Money{Amount: 19999, Currency: "PLN"}}},
		Capacity:    map[string]int{"VIP": 50}}
	events, _ := d.Decide(d.Initial(), create)
	fmt.Printf("%T %s\n", events[0], events[0].(concerts.ConcertCreated).TicketTypes[0].Price)

	state := d.Fold(append(events, concerts.ConcertCancelled{ConcertID: "c1"})...)
	_, err := d.Decide(state, concerts.UpdateConcert{ConcertID: "c1", Name: "X", Artist: "Y", Venue: "Z", StartsAt: create.StartsAt, At: at})
	fmt.Println(err)
	// Output:
	// concerts.ConcertCreated 199.99 PLN
	// concerts: the concert is cancelled
}
