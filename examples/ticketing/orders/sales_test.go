package orders_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/memory"
	"esgo.dev/examples/ticketing/orders"
)

// PlaceOrders and the StopSales of one shard handled at once, each by its
// own worker, and all of them redelivered, cancel every order of the shard
// exactly once.
func TestConcurrentOrdersAndTheStopOfOneShardCancelEachOrderOnce(t *testing.T) {
	reg := mustRegistry()
	store := memory.New(memory.Config{})
	h := es.NewProcessHandler(store, reg, orders.SalesShardProcess(), es.ProcessConfig{MaxAttempts: 50})
	ctx := t.Context()
	var msgs []es.Message
	for i := 0; len(msgs) < 40; i++ {
		id := fmt.Sprintf("o-%d", i)
		if orders.SalesShard(id) != 3 {
			continue
		}
		p := place()
		p.OrderID = id
		m, err := es.NewMessage(reg, id, p)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	stop, err := es.NewMessage(reg, "c1/003", orders.StopSales{ConcertID: "c1", Shard: 3, Reason: "storm"})
	if err != nil {
		t.Fatal(err)
	}
	msgs = append(msgs[:20], append([]es.Message{stop}, msgs[20:]...)...)
	for round := range 2 { // the second is the relay's redelivery
		var wg sync.WaitGroup
		for _, m := range msgs {
			wg.Go(func() {
				for try := 0; ; try++ { // the relay retries a failed delivery
					err := h.Handle(ctx, m)
					if err == nil {
						return
					}
					if try == 20 {
						t.Errorf("round %d: %v", round, err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	buckets := make([]int, es.OutboxBuckets)
	for i := range buckets {
		buckets[i] = i
	}
	due, err := store.Due(ctx, time.Now(), buckets, 1000)
	if err != nil {
		t.Fatal(err)
	}
	cancels := map[string]int{}
	for _, om := range due {
		msg, err := es.DecodeMessage(reg, om.Message)
		if err != nil {
			t.Fatal(err)
		}
		if c, ok := msg.(orders.CancelOrder); ok {
			cancels[c.OrderID]++
		}
	}
	for _, m := range msgs {
		if m.ID == stop.ID {
			continue
		}
		if cancels[m.Key] != 1 {
			t.Errorf("order %s: %d CancelOrder", m.Key, cancels[m.Key])
		}
	}
}
