package natsjs_test

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"esgo.dev/es"
	"esgo.dev/es/memory"
	"esgo.dev/es/natsjs"
)

// OrderPlaced is the integration message of the example.
type OrderPlaced struct {
	OrderID string `json:"order_id"`
	Total   int64  `json:"total"`
}

// A relay publishes the outbox's messages to JetStream; a subscriber in
// another module (here the same process) handles them through its inbox.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, err := nats.Connect(cmp.Or(os.Getenv("NATS_URL"), nats.DefaultURL))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	stream := natsjs.PublisherConfig{Stream: "EXAMPLE", Subject: "example"}
	defer js.DeleteStream(context.Background(), "EXAMPLE")

	reg := es.NewRegistry()
	es.Register[OrderPlaced](reg, "orders.OrderPlaced")
	store := memory.New(memory.Config{})

	// The orders module: the message is enqueued with the events that
	// cause it, and the relay publishes it.
	placed, _ := es.NewMessage(reg, "order-42", OrderPlaced{OrderID: "42", Total: 12500})
	if _, err := store.AppendEnqueue(ctx, es.Enqueue{Messages: []es.Message{placed}}); err != nil {
		fmt.Println(err)
		return
	}
	pub, err := natsjs.NewPublisher(ctx, js, stream)
	if err != nil {
		fmt.Println(err)
		return
	}
	go es.NewRelay(store, pub, es.RelayConfig{}).Run(ctx)

	// The billing module: a durable subscriber, deduplicating through an
	// inbox (with a SQL store, the handler writes its effect in the
	// inbox's transaction).
	done := make(chan struct{})
	handle := func(ctx context.Context, m es.Message) error {
		v, err := es.DecodeMessage(reg, m)
		if err != nil {
			return err
		}
		fmt.Printf("billing: %s for order %s: %d\n", m.Type, v.(OrderPlaced).OrderID, v.(OrderPlaced).Total)
		close(done)
		return nil
	}
	sub := natsjs.NewSubscriber(js, "billing", store.Inbox(), handle,
		natsjs.SubscriberConfig{Stream: stream.Stream, Subject: stream.Subject})
	go sub.Run(ctx)
	select {
	case <-done:
	case <-ctx.Done():
		fmt.Println(ctx.Err())
	}
	// Output:
	// billing: orders.OrderPlaced for order 42: 12500
}
