package concerts

import (
	"encoding/json"
	"errors"
	"fmt"

	"esgo.dev/es"
	"esgo.dev/examples/ticketing/money"
)

// Register registers the module's events in reg under their stored names
// ("concerts.ConcertCreated", ...).
//
// ConcertCreated is at schema version 2. Version 1 stored each ticket
// type's price as a decimal string in an implied currency (PLN) and its
// capacity, e.g. {"name":"VIP","price":"199.99","capacity":50}; the
// upcaster turns the price into minor units with the currency, exactly,
// and drops the capacity, which the inventory stream holds now.
func Register(reg *es.Registry) error {
	return errors.Join(
		es.Register[ConcertCreated](reg, "concerts.ConcertCreated", es.UpcastFrom(1, concertCreatedV1toV2)),
		es.Register[ConcertUpdated](reg, "concerts.ConcertUpdated"), // no longer recorded; old streams hold it
		es.Register[ConcertRenamed](reg, "concerts.ConcertRenamed"),
		es.Register[ArtistChanged](reg, "concerts.ArtistChanged"),
		es.Register[ConcertRescheduled](reg, "concerts.ConcertRescheduled"),
		es.Register[ConcertMoved](reg, "concerts.ConcertMoved"),
		es.Register[TicketTypesUpdated](reg, "concerts.TicketTypesUpdated"),
		es.Register[ConcertCancelled](reg, "concerts.ConcertCancelled"),
	)
}

func concertCreatedV1toV2(data json.RawMessage) (json.RawMessage, error) {
	var v map[string]json.RawMessage
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	var tts []struct {
		Name  string `json:"name"`
		Price string `json:"price"`
	}
	if raw, ok := v["ticket_types"]; ok {
		if err := json.Unmarshal(raw, &tts); err != nil {
			return nil, err
		}
	}
	out := make([]TicketType, len(tts))
	for i, t := range tts {
		p, err := money.ParseDecimal(t.Price, "PLN")
		if err != nil {
			return nil, fmt.Errorf("ticket type %q: %w", t.Name, err)
		}
		out[i] = TicketType{Name: t.Name, Price: p}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	v["ticket_types"] = b
	if _, ok := v["organizer_id"]; !ok {
		v["organizer_id"] = json.RawMessage(`""`)
	}
	return json.Marshal(v)
}
