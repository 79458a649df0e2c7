package es_test

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"

	"esgo.dev/es"
)

// PriceSet is at schema version 3:
//
//	v1 {"price": "12.50"}                        a decimal string, in PLN
//	v2 {"amount": 1250}                          minor units, still PLN only
//	v3 {"price": {"amount": 1250, "currency": "PLN"}}
type PriceSet struct {
	Price Money `json:"price"`
}

type Money struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

func priceV1toV2(data json.RawMessage) (json.RawMessage, error) {
	var v1 struct {
		Price string `json:"price"`
	}
	if err := json.Unmarshal(data, &v1); err != nil {
		return nil, err
	}
	whole, frac, _ := strings.Cut(v1.Price, ".")
	frac = (frac + "00")[:2]
	amount, err := strconv.ParseInt(whole+frac, 10, 64)
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]int64{"amount": amount})
}

func priceV2toV3(data json.RawMessage) (json.RawMessage, error) {
	var v2 struct {
		Amount int64 `json:"amount"`
	}
	if err := json.Unmarshal(data, &v2); err != nil {
		return nil, err
	}
	return json.Marshal(PriceSet{Price: Money{Amount: v2.Amount, Currency: "PLN"}})
}

func priceRegistry(t *testing.T) *es.Registry {
	t.Helper()
	reg := es.NewRegistry()
	err := es.Register[PriceSet](reg, "PriceSet",
		es.UpcastFrom(1, priceV1toV2),
		es.UpcastFrom(2, priceV2toV3),
		es.RenamedFrom("PriceChanged"),
	)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func TestUpcastOldVersionsToCurrent(t *testing.T) {
	reg := priceRegistry(t)
	want := PriceSet{Price: Money{Amount: 1250, Currency: "PLN"}}
	for _, stored := range []es.Event{
		{Type: "PriceSet", SchemaVersion: 1, Data: json.RawMessage(`{"price":"12.50"}`)},
		{Type: "PriceSet", SchemaVersion: 2, Data: json.RawMessage(`{"amount":1250}`)},
		{Type: "PriceSet", SchemaVersion: 3, Data: json.RawMessage(`{"price":{"amount":1250,"currency":"PLN"}}`)},
		{Type: "PriceChanged", SchemaVersion: 1, Data: json.RawMessage(`{"price":"12.5"}`)}, // former name
	} {
		got, err := es.Decode[PriceSet](reg, stored)
		if err != nil {
			t.Fatalf("decode %s v%d: %v", stored.Type, stored.SchemaVersion, err)
		}
		if got != want {
			t.Errorf("decode %s v%d %s = %+v, want %+v", stored.Type, stored.SchemaVersion, stored.Data, got, want)
		}
	}
}

func TestUpcastReturnsCurrentName(t *testing.T) {
	reg := priceRegistry(t)
	name, data, err := reg.Upcast("PriceChanged", 2, json.RawMessage(`{"amount":5}`))
	if err != nil {
		t.Fatal(err)
	}
	if name != "PriceSet" || string(data) != `{"price":{"amount":5,"currency":"PLN"}}` {
		t.Fatalf("Upcast = %s %s", name, data)
	}
}

func TestMissingUpcasterIsAnError(t *testing.T) {
	reg := es.NewRegistry()
	// Only the step from 2 to 3 exists: version 1 data cannot be read.
	if err := es.Register[PriceSet](reg, "PriceSet", es.UpcastFrom(2, priceV2toV3)); err != nil {
		t.Fatal(err)
	}
	_, err := reg.Decode(es.Event{Type: "PriceSet", SchemaVersion: 1, Data: json.RawMessage(`{"price":"1.00"}`)})
	if !errors.Is(err, es.ErrMissingUpcaster) {
		t.Fatalf("got %v, want ErrMissingUpcaster", err)
	}
	for _, part := range []string{"PriceSet", "schema version 1", "current version 3"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not mention %q", err, part)
		}
	}
	// A version newer than the code knows (say, written by a newer
	// deployment) is refused rather than half-decoded.
	_, err = reg.Decode(es.Event{Type: "PriceSet", SchemaVersion: 4, Data: json.RawMessage(`{}`)})
	if !errors.Is(err, es.ErrMissingUpcaster) || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("got %v, want ErrMissingUpcaster about a newer version", err)
	}
}

func TestFailingUpcasterIsReported(t *testing.T) {
	reg := priceRegistry(t)
	_, err := reg.Decode(es.Event{Type: "PriceSet", SchemaVersion: 1, Data: json.RawMessage(`{"price":12}`)})
	if !errors.Is(err, es.ErrUpcast) || !strings.Contains(err.Error(), "schema version 1") {
		t.Fatalf("got %v, want ErrUpcast naming version 1", err)
	}
}

func TestRegisterRefusesMistakes(t *testing.T) {
	type Other struct{ A int }
	noop := func(d json.RawMessage) (json.RawMessage, error) { return d, nil }
	cases := map[string]func(*es.Registry) error{
		"empty name":   func(r *es.Registry) error { return es.Register[Other](r, "") },
		"not a struct": func(r *es.Registry) error { return es.Register[string](r, "Text") },
		"step from version 0": func(r *es.Registry) error {
			return es.Register[Other](r, "Other", es.UpcastFrom(0, noop))
		},
		"gap in the chain": func(r *es.Registry) error {
			return es.Register[Other](r, "Other", es.UpcastFrom(1, noop), es.UpcastFrom(3, noop))
		},
		"repeated step": func(r *es.Registry) error {
			return es.Register[Other](r, "Other", es.UpcastFrom(1, noop), es.UpcastFrom(1, noop))
		},
		"nil step": func(r *es.Registry) error {
			return es.Register[Other](r, "Other", es.UpcastFrom(1, nil))
		},
	}
	for name, register := range cases {
		if err := register(es.NewRegistry()); err == nil {
			t.Errorf("%s: registered without error", name)
		}
	}

	reg := priceRegistry(t)
	for name, err := range map[string]error{
		"name twice":        es.Register[Other](reg, "PriceSet"),
		"former name taken": es.Register[Other](reg, "PriceChanged"),
		"Go type twice":     es.Register[PriceSet](reg, "PriceSet2"),
	} {
		if !errors.Is(err, es.ErrTypeRegistered) {
			t.Errorf("%s: got %v, want ErrTypeRegistered", name, err)
		}
	}
}

func TestUnknownTypesAreNamed(t *testing.T) {
	reg := priceRegistry(t)
	_, err := reg.Decode(es.Event{Type: "TicketPrinted", SchemaVersion: 1, Data: json.RawMessage(`{}`)})
	if !errors.Is(err, es.ErrUnknownEventType) || !strings.Contains(err.Error(), "TicketPrinted") {
		t.Fatalf("got %v, want ErrUnknownEventType naming TicketPrinted", err)
	}
	type Unregistered struct{}
	if _, err := reg.Encode(Unregistered{}); !errors.Is(err, es.ErrUnknownEventType) || !strings.Contains(err.Error(), "Unregistered") {
		t.Fatalf("encode: got %v, want ErrUnknownEventType naming the Go type", err)
	}
	if _, err := reg.Encode(nil); !errors.Is(err, es.ErrUnknownEventType) {
		t.Fatalf("encode nil: got %v", err)
	}
}

func TestEncodeAndDecode(t *testing.T) {
	reg := priceRegistry(t)
	in := PriceSet{Price: Money{Amount: 999, Currency: "EUR"}}
	for _, v := range []any{in, &in} {
		d, err := reg.Encode(v)
		if err != nil {
			t.Fatal(err)
		}
		if !es.ValidID(d.ID) || d.Type != "PriceSet" || d.SchemaVersion != 3 {
			t.Fatalf("Encode = %+v", d)
		}
		out, err := reg.Decode(es.Event{Type: d.Type, SchemaVersion: d.SchemaVersion, Data: d.Data})
		if err != nil || out != in {
			t.Fatalf("Decode = %#v, %v; want %#v", out, err, in)
		}
	}
	_, err := reg.Decode(es.Event{Type: "PriceSet", SchemaVersion: 3, Data: json.RawMessage(`{"price":"oops"}`)})
	if !errors.Is(err, es.ErrDecode) {
		t.Fatalf("malformed data: got %v, want ErrDecode", err)
	}
	if _, err := es.Decode[error](reg, es.Event{Type: "PriceSet", SchemaVersion: 3, Data: json.RawMessage(`{}`)}); !errors.Is(err, es.ErrDecode) {
		t.Fatalf("decode into the wrong Go type: got %v, want ErrDecode", err)
	}
}

func TestTypes(t *testing.T) {
	reg := priceRegistry(t)
	es.MustRegister[Money](reg, "AMoneyThing")
	ts := reg.Types()
	if len(ts) != 2 || ts[0].Name != "AMoneyThing" || ts[1].Name != "PriceSet" || ts[1].Version != 3 || ts[1].Aliases[0] != "PriceChanged" {
		t.Fatalf("Types = %+v", ts)
	}
}

func TestEveryRegistryDecodesMessageHandled(t *testing.T) {
	reg := es.NewRegistry()
	v, err := reg.Decode(es.Event{Type: es.MessageHandledType, SchemaVersion: 1, Data: json.RawMessage(`{"message_id":"m-1","message_type":"T"}`)})
	if err != nil || v != (es.MessageHandled{MessageID: "m-1", MessageType: "T"}) {
		t.Fatalf("Decode = %#v, %v", v, err)
	}
	if len(reg.Types()) != 0 {
		t.Fatalf("Types = %v: built-in events are not listed", reg.Types())
	}
	if err := es.Register[Money](reg, es.MessageHandledType); !errors.Is(err, es.ErrTypeRegistered) {
		t.Fatalf("registering the built-in name: %v", err)
	}
}

// A read model follows the whole log: DecodeKnown passes over the types it
// does not know, but never over an event of a known type that fails.
func TestDecodeKnownSkipsOnlyUnknownTypes(t *testing.T) {
	reg := priceRegistry(t)
	es.MustRegister[Money](reg, "Refunded", es.UpcastFrom(1, func(json.RawMessage) (json.RawMessage, error) {
		// An upcaster whose error happens to wrap ErrUnknownEventType must
		// still fail the decoding, not skip the event.
		return nil, es.ErrUnknownEventType
	}))

	v, ok, err := reg.DecodeKnown(es.Event{Type: "PriceChanged", SchemaVersion: 1, Data: json.RawMessage(`{"price":"12.50"}`)})
	if want := (PriceSet{Price: Money{Amount: 1250, Currency: "PLN"}}); v != want || !ok || err != nil {
		t.Fatalf("a known type under a former name, upcast: DecodeKnown = %#v, %v, %v; want %#v, true, nil", v, ok, err, want)
	}
	if v, ok, err := reg.DecodeKnown(es.Event{Type: "TicketPrinted", SchemaVersion: 1, Data: json.RawMessage(`{}`)}); v != nil || ok || err != nil {
		t.Fatalf("an unknown type: DecodeKnown = %#v, %v, %v; want nil, false, nil", v, ok, err)
	}
	if v, ok, err := reg.DecodeKnown(es.Event{Type: es.MessageHandledType, SchemaVersion: 1, Data: json.RawMessage(`{"message_id":"m-1"}`)}); !ok || err != nil {
		t.Fatalf("the built-in MessageHandled is known to every registry: DecodeKnown = %#v, %v, %v", v, ok, err)
	}
	for name, e := range map[string]es.Event{
		"malformed data":       {Type: "PriceSet", SchemaVersion: 3, Data: json.RawMessage(`{"price":"oops"}`)},
		"a newer version":      {Type: "PriceSet", SchemaVersion: 4, Data: json.RawMessage(`{}`)},
		"a failing upcaster":   {Type: "Refunded", SchemaVersion: 1, Data: json.RawMessage(`{}`)},
		"an upcast that fails": {Type: "PriceSet", SchemaVersion: 1, Data: json.RawMessage(`{"price":"x"}`)},
	} {
		if v, ok, err := reg.DecodeKnown(e); v != nil || ok || err == nil {
			t.Errorf("%s: DecodeKnown = %#v, %v, %v; want the error", name, v, ok, err)
		}
	}
}
