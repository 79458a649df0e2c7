package courier_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"esgo.dev/examples/ticketing/tickets"
	"esgo.dev/examples/ticketing/tickets/courier"
)

var to = tickets.PostalAddress{Name: "Ola Nowak", Street: "Marszałkowska 1", City: "Warszawa", PostalCode: "00-001", Country: "PL"}

func serve(t *testing.T, cfg courier.FakeConfig) (*courier.Fake, *courier.Client, string) {
	t.Helper()
	fake := courier.NewFake(cfg)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return fake, courier.NewClient(srv.URL, nil), srv.URL
}

func TestAShipmentKeyShipsOneParcel(t *testing.T) {
	fake, c, _ := serve(t, courier.FakeConfig{})
	ctx := context.Background()
	first, err := c.Ship(ctx, tickets.Shipment{Key: "k1", TicketID: "t1", To: to, Code: "CODE"})
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Ship(ctx, tickets.Shipment{Key: "k1", TicketID: "t1", To: to, Code: "CODE"})
	if err != nil || again != first {
		t.Fatalf("the same key again: %q, %v; want %q", again, err, first)
	}
	other, err := c.Ship(ctx, tickets.Shipment{Key: "k2", TicketID: "t1", To: to, Code: "CODE"})
	if err != nil || other == first {
		t.Fatalf("another key: %q, %v", other, err)
	}
	if n := len(fake.Shipments()); n != 2 {
		t.Errorf("%d parcels, want 2", n)
	}
}

func TestTrackingReportsTransitThenDelivery(t *testing.T) {
	_, c, _ := serve(t, courier.FakeConfig{DeliverAfter: 2})
	ctx := context.Background()
	n, err := c.Ship(ctx, tickets.Shipment{Key: "k1", TicketID: "t1", To: to})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []tickets.ParcelState{tickets.ParcelInTransit, tickets.ParcelArrived, tickets.ParcelArrived} {
		tr, err := c.Track(ctx, n)
		if err != nil || tr.State != want || tr.Number != n {
			t.Fatalf("track: %+v, %v; want %s", tr, err, want)
		}
	}
}

func TestTheFakeCanBeToldToFailOrLose(t *testing.T) {
	fake, c, base := serve(t, courier.FakeConfig{DeliverAfter: -1})
	ctx := context.Background()
	fake.FailNext(1)
	_, err := c.Ship(ctx, tickets.Shipment{Key: "k1", TicketID: "t1", To: to})
	var perm *tickets.PermanentError
	if err == nil || errors.As(err, &perm) || !strings.Contains(err.Error(), "503") {
		t.Fatalf("a failing courier: %v, want a transient 503", err)
	}
	n, err := c.Ship(ctx, tickets.Shipment{Key: "k1", TicketID: "t1", To: to})
	if err != nil {
		t.Fatal(err)
	}
	// Over HTTP too, as a workshop attendee would.
	resp, err := http.Post(base+"/control/shipments/"+n+"/lose", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if tr, err := c.Track(ctx, n); err != nil || tr.State != tickets.ParcelMissing {
		t.Fatalf("a lost parcel: %+v, %v", tr, err)
	}
	resp, err = http.Post(base+"/control/lose-next", "application/json", bytes.NewBufferString(`{"count": 1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	n2, err := c.Ship(ctx, tickets.Shipment{Key: "k2", TicketID: "t2", To: to})
	if err != nil {
		t.Fatal(err)
	}
	if tr, err := c.Track(ctx, n2); err != nil || tr.State != tickets.ParcelMissing {
		t.Errorf("a parcel told to get lost: %+v, %v", tr, err)
	}
	if !fake.Deliver(n2) || fake.Deliver("FC999999") {
		t.Error("Deliver: wrong report of which parcels exist")
	}
}

func TestAnIncompleteAddressIsRefusedForGood(t *testing.T) {
	_, c, _ := serve(t, courier.FakeConfig{})
	_, err := c.Ship(context.Background(), tickets.Shipment{Key: "k1", TicketID: "t1", To: tickets.PostalAddress{Name: "Ola"}})
	var perm *tickets.PermanentError
	if !errors.As(err, &perm) {
		t.Errorf("got %v, want a *tickets.PermanentError", err)
	}
}

func TestAnUnknownParcelIsNotFound(t *testing.T) {
	_, c, _ := serve(t, courier.FakeConfig{})
	if _, err := c.Track(context.Background(), "FC999999"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("got %v, want a 404", err)
	}
}

func TestTheInProcessClientSpeaksTheSameAPI(t *testing.T) {
	fake := courier.NewFake(courier.FakeConfig{DeliverAfter: 1})
	c := fake.Client()
	n, err := c.Ship(context.Background(), tickets.Shipment{Key: "k1", TicketID: "t1", To: to})
	if err != nil {
		t.Fatal(err)
	}
	if tr, err := c.Track(context.Background(), n); err != nil || tr.State != tickets.ParcelArrived {
		t.Errorf("track: %+v, %v", tr, err)
	}
}

func TestStartFakeServesOnLoopbackOnly(t *testing.T) {
	if _, err := courier.StartFake("0.0.0.0:0", courier.FakeConfig{}); err == nil {
		t.Fatal("StartFake on every interface: want an error")
	}
	s, err := courier.StartFake("127.0.0.1:0", courier.FakeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	c := courier.NewClient(s.URL(), nil)
	if _, err := c.Ship(context.Background(), tickets.Shipment{Key: "k1", TicketID: "t1", To: to}); err != nil {
		t.Error(err)
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
}
