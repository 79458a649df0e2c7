package app_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/examples/ticketing/concerts"
	"esgo.dev/examples/ticketing/orders"
)

// The concert "c1/<NNN>" is a concert of its own, not shard NNN of "c1":
// cancelling it leaves c1's paid order, recorded in that shard, as it is.
func TestCancellingAConcertNamedLikeAShardOfAnotherLeavesTheOthersOrders(t *testing.T) {
	ctx := context.Background()
	s := newShop(t)
	if err := s.CreateConcert(ctx, es.NewID(), concert("c1", 10)); err != nil {
		t.Fatal(err)
	}
	paid := s.buy(t, "ala", "c1", 2, byEmail)
	waitOrder(t, s.App, paid, status(orders.Completed))
	other := fmt.Sprintf("c1/%03d", orders.SalesShard(paid))
	if err := s.CreateConcert(ctx, es.NewID(), concert(other, 10)); err != nil {
		t.Fatal(err)
	}
	if err := s.CancelConcert(ctx, es.NewID(), concerts.CancelConcert{ConcertID: other, Reason: "storm"}); err != nil {
		t.Fatal(err)
	}
	// Let the relay deliver the cancellation and what it sends: the last
	// shard of the cancelled concert stopped, and a moment more.
	waitFor(t, func() bool {
		return len(s.events(t, fmt.Sprintf("salesshard-%s/%03d", other, orders.SalesShards-1))) > 0
	})
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		o, err := s.Order(ctx, paid)
		if err != nil {
			t.Fatal(err)
		}
		if o.Status != orders.Completed {
			t.Fatalf("c1's order %s is %s (%q) after the concert %q was cancelled", paid, o.Status, o.Reason, other)
		}
	}
	if captured, refunded := s.ledger(t, paid); refunded != 0 {
		t.Errorf("c1's order: captured %d, refunded %d", captured, refunded)
	}
}
