package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/sqlite"
)

// ExampleStore_AppendEnqueue stores an order's event with the message
// announcing it and a deadline, in one transaction, then asks the outbox
// what is due now and an hour later, as a relay would.
func ExampleStore_AppendEnqueue() {
	ctx := context.Background()
	store, err := sqlite.OpenMemory(ctx, sqlite.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()

	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	placed := es.Message{ID: es.NewID(), Key: "order-42", Type: "orders.OrderPlaced", SchemaVersion: 1,
		Data: []byte(`{"order_id":"order-42"}`)}
	expiry := es.Message{ID: es.NewID(), Key: "order-42", Type: "orders.PaymentTimedOut", SchemaVersion: 1,
		Data: []byte(`{"order_id":"order-42"}`), DeliverAt: now.Add(15 * time.Minute)}
	_, err = store.AppendEnqueue(ctx, es.Enqueue{Messages: []es.Message{placed, expiry}},
		es.StreamAppend{StreamID: "order-42", Expected: es.NoStream, Events: []es.EventData{
			{ID: es.NewID(), Type: "OrderPlaced", SchemaVersion: 1, Data: []byte(`{"total":1999}`)},
		}})
	if err != nil {
		fmt.Println(err)
		return
	}

	all := []int{es.MessageBucket("order-42")}
	for _, at := range []time.Time{now, now.Add(time.Hour)} {
		due, err := store.Due(ctx, at, all, 100)
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, m := range due {
			fmt.Println(at.Format("15:04"), m.Seq, m.Type)
		}
		if len(due) > 0 {
			// Publishing would go here; then the relay records it.
			if err := store.MarkDelivered(ctx, due[0].Seq); err != nil {
				fmt.Println(err)
				return
			}
		}
	}
	backlog, _ := store.Backlog(ctx)
	fmt.Println("backlog:", backlog)
	// Output:
	// 12:00 1 orders.OrderPlaced
	// 13:00 2 orders.PaymentTimedOut
	// backlog: 0
}

// ExampleStore_InboxTx handles the same message twice, as an
// at-least-once relay may deliver it: the inbox record and the effect
// commit in one transaction, so the effect happens once.
func ExampleStore_InboxTx() {
	ctx := context.Background()
	store, err := sqlite.OpenMemory(ctx, sqlite.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	if err := store.WriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE invoices (order_id TEXT PRIMARY KEY, amount INTEGER)`)
		return err
	}); err != nil {
		fmt.Println(err)
		return
	}

	msg := es.Message{ID: es.NewID(), Key: "order-42", Type: "orders.OrderPlaced", SchemaVersion: 1,
		Data: []byte(`{"order_id":"order-42","total":1999}`)}
	handle := func(ctx context.Context, m es.Message) error {
		return store.WriteTx(ctx, func(tx *sql.Tx) error {
			first, err := store.InboxTx(ctx, tx, "billing", m.ID)
			if err != nil || !first {
				return err // a redelivery: already invoiced
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO invoices VALUES (?, ?)`, "order-42", 1999)
			return err
		})
	}
	for range 2 {
		if err := handle(ctx, msg); err != nil {
			fmt.Println(err)
			return
		}
	}
	var n int
	if err := store.DB().QueryRowContext(ctx, `SELECT count(*) FROM invoices`).Scan(&n); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("invoices:", n)
	// Output:
	// invoices: 1
}
