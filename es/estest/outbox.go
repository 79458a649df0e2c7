package estest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/storekit"
)

// TestOutbox is the conformance suite for [es.Outbox] implementations:
// messages commit with their events or not at all, enqueuing is
// idempotent, Due honours due times, retries, parking, cancellation and
// per-key order, and the bookkeeping (delivered, failed, backlog) holds.
// newOutbox must return an empty outbox for each subtest.
func TestOutbox(t *testing.T, newOutbox func(t *testing.T) es.Outbox) {
	tests := []struct {
		name string
		fn   func(*testing.T, es.Outbox)
	}{
		{"EnqueueWithEvents", testEnqueueWithEvents},
		{"FailedAppendEnqueuesNothing", testFailedAppendEnqueuesNothing},
		{"RepeatedAppendEnqueuesNothing", testRepeatedAppendEnqueuesNothing},
		{"EnqueueIsIdempotent", testEnqueueIsIdempotent},
		{"InvalidMessages", testInvalidMessages},
		{"RoundTrip", testMessageRoundTrip},
		{"Buckets", testBuckets},
		{"DeadlinesAndCancel", testDeadlinesAndCancel},
		{"RetryHoldsBackItsKey", testRetryHoldsBackItsKey},
		{"ParkedHoldsBackItsKey", testParkedHoldsBackItsKey},
		{"ScheduledDoesNotHoldBack", testScheduledDoesNotHoldBack},
		{"ConcurrentEnqueue", testConcurrentEnqueue},
		{"MessagesByID", testMessagesByID},
		{"DueWhereItsTwoPartsMeet", testDueWhereItsTwoPartsMeet},
		{"DueAgreesWithTheMemoryStore/1", testDueAgreesWithTheMemoryStore(1)},
		{"DueAgreesWithTheMemoryStore/2", testDueAgreesWithTheMemoryStore(2)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newOutbox(t)) })
	}
}

// outboxNow is the time the outbox suite runs at.
func outboxNow() time.Time { return time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC) }

func allOutboxBuckets() []int {
	b := make([]int, es.OutboxBuckets)
	for i := range b {
		b[i] = i
	}
	return b
}

func msgOf(key string, n int) es.Message {
	return es.Message{ID: es.NewID(), Key: key, Type: "Note", SchemaVersion: 1, Data: fmt.Appendf(nil, `{"n":%d}`, n)}
}

func due(t testing.TB, o es.Outbox, now time.Time) []es.OutboxMessage {
	t.Helper()
	msgs, err := o.Due(context.Background(), now, allOutboxBuckets(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

func dueIDs(t testing.TB, o es.Outbox, now time.Time) []string {
	t.Helper()
	var ids []string
	for _, m := range due(t, o, now) {
		ids = append(ids, m.ID)
	}
	return ids
}

func ids(msgs ...es.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.ID)
	}
	return out
}

func mustEnqueue(t testing.TB, o es.Outbox, enq es.Enqueue, appends ...es.StreamAppend) {
	t.Helper()
	if _, err := o.AppendEnqueue(context.Background(), enq, appends...); err != nil {
		t.Fatal(err)
	}
}

func backlog(t testing.TB, o es.Outbox) int64 {
	t.Helper()
	n, err := o.Backlog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func testEnqueueWithEvents(t *testing.T, o es.Outbox) {
	a, b := msgOf("order-1", 1), msgOf("order-2", 2)
	res, err := o.AppendEnqueue(context.Background(), es.Enqueue{Messages: []es.Message{a, b}},
		es.StreamAppend{StreamID: "order-1", Expected: es.NoStream, Events: events("Placed", 1)})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Version != 1 {
		t.Fatalf("result = %+v", res)
	}
	if got := dueIDs(t, o, outboxNow()); !slices.Equal(got, ids(a, b)) {
		t.Fatalf("due = %v, want both messages in order", got)
	}
	msgs := due(t, o, outboxNow())
	if msgs[0].Seq >= msgs[1].Seq || msgs[0].Attempts != 0 {
		t.Fatalf("due = %+v: sequence numbers must follow the enqueue order", msgs)
	}
	if n := backlog(t, o); n != 2 {
		t.Fatalf("backlog = %d, want 2", n)
	}
	if err := o.MarkDelivered(context.Background(), msgs[0].Seq); err != nil {
		t.Fatal(err)
	}
	if got := dueIDs(t, o, outboxNow()); !slices.Equal(got, ids(b)) {
		t.Fatalf("due after delivering the first = %v", got)
	}
	if n := backlog(t, o); n != 1 {
		t.Fatalf("backlog = %d, want 1", n)
	}
	// Messages alone, without events.
	c := msgOf("order-3", 3)
	mustEnqueue(t, o, es.Enqueue{Messages: []es.Message{c}})
	if got := dueIDs(t, o, outboxNow()); !slices.Equal(got, ids(b, c)) {
		t.Fatalf("due = %v after a message-only enqueue", got)
	}
}

func testFailedAppendEnqueuesNothing(t *testing.T, o es.Outbox) {
	mustAppend(t, o, "order-1", es.NoStream, event("Placed", 1))
	_, err := o.AppendEnqueue(context.Background(), es.Enqueue{Messages: []es.Message{msgOf("order-1", 1)}},
		es.StreamAppend{StreamID: "order-1", Expected: es.NoStream, Events: events("Placed", 1)})
	if !errors.Is(err, es.ErrConcurrency) {
		t.Fatalf("got %v, want ErrConcurrency", err)
	}
	if got := due(t, o, outboxNow()); len(got) != 0 || backlog(t, o) != 0 {
		t.Fatalf("a failed append enqueued %d messages", len(got))
	}
}

func testRepeatedAppendEnqueuesNothing(t *testing.T, o es.Outbox) {
	evs := events("Placed", 2)
	mustEnqueue(t, o, es.Enqueue{Messages: []es.Message{msgOf("order-1", 1)}},
		es.StreamAppend{StreamID: "order-1", Expected: es.NoStream, Events: evs})
	// The same events again, with a message under a new ID: a repeated
	// append is a no-op, messages included.
	mustEnqueue(t, o, es.Enqueue{Messages: []es.Message{msgOf("order-1", 2)}},
		es.StreamAppend{StreamID: "order-1", Expected: es.NoStream, Events: evs})
	if n := backlog(t, o); n != 1 {
		t.Fatalf("backlog = %d after a repeated append, want 1", n)
	}
}

func testEnqueueIsIdempotent(t *testing.T, o es.Outbox) {
	m := msgOf("order-1", 1)
	mustEnqueue(t, o, es.Enqueue{Messages: []es.Message{m}})
	mustEnqueue(t, o, es.Enqueue{Messages: []es.Message{m, msgOf("order-1", 2)}})
	if got := due(t, o, outboxNow()); len(got) != 2 || got[0].ID != m.ID {
		t.Fatalf("due = %d messages, want the first once and the new one", len(got))
	}
	// Even after delivery, the same ID is not enqueued again.
	if err := o.MarkDelivered(context.Background(), due(t, o, outboxNow())[0].Seq); err != nil {
		t.Fatal(err)
	}
	mustEnqueue(t, o, es.Enqueue{Messages: []es.Message{m}})
	if n := backlog(t, o); n != 1 {
		t.Fatalf("backlog = %d: a delivered message was enqueued again", n)
	}
}

func testInvalidMessages(t *testing.T, o es.Outbox) {
	ok := msgOf("k", 1)
	badID, noType, noVersion, notObject, nul := ok, ok, ok, ok, ok
	badID.ID = "nope"
	noType.Type = ""
	noVersion.SchemaVersion = 0
	notObject.Data = []byte(`"x"`)
	nul.Data = []byte(`{"a":"\u0000"}`)
	cases := map[string]es.Enqueue{
		"invalid ID":        {Messages: []es.Message{badID}},
		"empty type":        {Messages: []es.Message{noType}},
		"schema version 0":  {Messages: []es.Message{noVersion}},
		"data not object":   {Messages: []es.Message{notObject}},
		"NUL in data":       {Messages: []es.Message{nul}},
		"ID twice":          {Messages: []es.Message{ok, ok}},
		"invalid cancel ID": {Cancel: []string{"nope"}},
	}
	for name, enq := range cases {
		_, err := o.AppendEnqueue(context.Background(), enq,
			es.StreamAppend{StreamID: "k-1", Expected: es.AnyVersion, Events: events("E", 1)})
		if !errors.Is(err, es.ErrInvalidAppend) {
			t.Errorf("%s: got %v, want ErrInvalidAppend", name, err)
		}
	}
	if _, err := o.AppendEnqueue(context.Background(), es.Enqueue{}); !errors.Is(err, es.ErrInvalidAppend) {
		t.Errorf("an empty request: got %v, want ErrInvalidAppend", err)
	}
	if n := backlog(t, o); n != 0 {
		t.Fatalf("invalid requests enqueued %d messages", n)
	}
	if all := readAll(t, o, es.AllQuery{}); len(all) != 0 {
		t.Fatalf("invalid requests appended %d events", len(all))
	}
}

func testMessageRoundTrip(t *testing.T, o es.Outbox) {
	m := es.Message{
		ID: es.NewID(), Key: "order-7", Type: "orders.OrderPlaced", SchemaVersion: 2,
		Data:     []byte(`{"order_id":"order-7","total":{"amount":1999,"currency":"PLN"}}`),
		Metadata: es.Metadata{CorrelationID: es.NewID(), CausationID: es.NewID(), TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", Extra: map[string]string{"tenant": "t1"}},
	}
	mustEnqueue(t, o, es.Enqueue{Messages: []es.Message{m}})
	got := due(t, o, outboxNow())
	if len(got) != 1 {
		t.Fatalf("due = %d messages", len(got))
	}
	g := got[0].Message
	if g.ID != m.ID || g.Key != m.Key || g.Type != m.Type || g.SchemaVersion != 2 || !g.DeliverAt.IsZero() ||
		!sameJSON(g.Data, m.Data) || g.Metadata.CorrelationID != m.Metadata.CorrelationID ||
		g.Metadata.CausationID != m.Metadata.CausationID || g.Metadata.TraceParent != m.Metadata.TraceParent ||
		g.Metadata.Extra["tenant"] != "t1" {
		t.Fatalf("read back %+v, want %+v", g, m)
	}
}

// testMessagesByID checks an outbox that is an [es.MessageReader]: its
// messages are found by ID, delivered ones too, in outbox order, and
// unknown IDs are left out.
func testMessagesByID(t *testing.T, o es.Outbox) {
	r, ok := o.(es.MessageReader)
	if !ok {
		t.Skip("the outbox is not an es.MessageReader")
	}
	a, b, c := msgOf("k", 1), msgOf("k", 2), msgOf("other", 3)
	a.Metadata = es.Metadata{CorrelationID: "purchase", CausationID: "checkout"}
	mustEnqueue(t, o, es.Enqueue{Messages: []es.Message{a, b, c}})
	first := due(t, o, outboxNow())[0]
	if err := o.MarkDelivered(context.Background(), first.Seq); err != nil {
		t.Fatal(err)
	}
	got, err := r.Messages(context.Background(), []string{c.ID, es.NewID(), a.ID, a.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != a.ID || got[1].ID != c.ID || got[0].Type != a.Type ||
		got[0].Metadata.CorrelationID != "purchase" || got[0].Metadata.CausationID != "checkout" || !sameJSON(got[1].Data, c.Data) {
		t.Fatalf("Messages = %+v, want %s (delivered) then %s", got, a.ID, c.ID)
	}
	if got, err := r.Messages(context.Background(), nil); err != nil || len(got) != 0 {
		t.Fatalf("Messages(none) = %v, %v", got, err)
	}
}

func sameJSON(a, b []byte) bool {
	return storekit.SamePayload(es.Event{StreamID: "x", Type: "t", SchemaVersion: 1, Data: a}, "x", es.EventData{Type: "t", SchemaVersion: 1, Data: b})
}

func testBuckets(t *testing.T, o es.Outbox) {
	var msgs []es.Message
	for i := range 40 {
		msgs = append(msgs, msgOf(fmt.Sprintf("key-%d", i), i))
	}
	mustEnqueue(t, o, es.Enqueue{Messages: msgs})
	seen := map[string]bool{}
	for w := range 3 {
		var buckets []int
		for b := w; b < es.OutboxBuckets; b += 3 {
			buckets = append(buckets, b)
		}
		got, err := o.Due(context.Background(), outboxNow(), buckets, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range got {
			if !slices.Contains(buckets, es.MessageBucket(m.Key)) {
				t.Fatalf("worker %d got key %s from bucket %d", w, m.Key, es.MessageBucket(m.Key))
			}
			seen[m.ID] = true
		}
	}
	if len(seen) != 40 {
		t.Fatalf("the workers' buckets together gave %d of 40 messages", len(seen))
	}
	if got, _ := o.Due(context.Background(), outboxNow(), allOutboxBuckets(), 7); len(got) != 7 {
		t.Fatalf("limit 7 gave %d messages", len(got))
	}
}

func testDeadlinesAndCancel(t *testing.T, o es.Outbox) {
	soon, later, cancelled := msgOf("a", 1), msgOf("b", 2), msgOf("c", 3)
	soon.DeliverAt = outboxNow().Add(time.Minute)
	later.DeliverAt = outboxNow().Add(time.Hour)
	cancelled.DeliverAt = outboxNow().Add(time.Minute)
	mustEnqueue(t, o, es.Enqueue{Messages: []es.Message{soon, later, cancelled}})
	mustEnqueue(t, o, es.Enqueue{Cancel: []string{cancelled.ID, es.NewID()}}) // an unknown ID is fine
	if got := dueIDs(t, o, outboxNow()); len(got) != 0 {
		t.Fatalf("due before their time: %v", got)
	}
	if got := dueIDs(t, o, outboxNow().Add(time.Minute)); !slices.Equal(got, ids(soon)) {
		t.Fatalf("due at +1m: %v, want the first deadline only", got)
	}
	if got := dueIDs(t, o, outboxNow().Add(2*time.Hour)); !slices.Equal(got, ids(soon, later)) {
		t.Fatalf("due at +2h: %v", got)
	}
	if n := backlog(t, o); n != 2 {
		t.Fatalf("backlog = %d: a cancelled message is not backlog", n)
	}
	got := due(t, o, outboxNow().Add(time.Minute))
	if !got[0].DeliverAt.Equal(soon.DeliverAt) {
		t.Fatalf("deliver at = %v, want %v", got[0].DeliverAt, soon.DeliverAt)
	}
	// Cancelling a delivered message changes nothing.
	if err := o.MarkDelivered(context.Background(), got[0].Seq); err != nil {
		t.Fatal(err)
	}
	mustEnqueue(t, o, es.Enqueue{Cancel: []string{soon.ID}})
	if n := backlog(t, o); n != 1 {
		t.Fatalf("backlog = %d", n)
	}
}

func testRetryHoldsBackItsKey(t *testing.T, o es.Outbox) {
	first, second, other := msgOf("order-1", 1), msgOf("order-1", 2), msgOf("order-2", 3)
	mustEnqueue(t, o, es.Enqueue{Messages: []es.Message{first, second, other}})
	if got := dueIDs(t, o, outboxNow()); !slices.Equal(got, ids(first, second, other)) {
		t.Fatalf("due = %v", got)
	}
	seq := due(t, o, outboxNow())[0].Seq
	if err := o.MarkFailed(context.Background(), seq, outboxNow().Add(time.Minute), false, "broker down"); err != nil {
		t.Fatal(err)
	}
	// Until its retry time, the failed message holds back its key.
	if got := dueIDs(t, o, outboxNow().Add(30*time.Second)); !slices.Equal(got, ids(other)) {
		t.Fatalf("due while waiting for the retry = %v, want only the other key", got)
	}
	got := due(t, o, outboxNow().Add(time.Minute))
	if len(got) != 3 || got[0].ID != first.ID || got[0].Attempts != 1 {
		t.Fatalf("due at the retry time = %+v, want all three, the first with 1 attempt", got)
	}
	if err := o.MarkFailed(context.Background(), seq, outboxNow().Add(2*time.Minute), false, "still down"); err != nil {
		t.Fatal(err)
	}
	if got := due(t, o, outboxNow().Add(2*time.Minute)); got[0].Attempts != 2 {
		t.Fatalf("attempts = %d, want 2", got[0].Attempts)
	}
}

func testParkedHoldsBackItsKey(t *testing.T, o es.Outbox) {
	first, second, other := msgOf("order-1", 1), msgOf("order-1", 2), msgOf("order-2", 3)
	mustEnqueue(t, o, es.Enqueue{Messages: []es.Message{first, second, other}})
	if err := o.MarkFailed(context.Background(), due(t, o, outboxNow())[0].Seq, outboxNow(), true, "poison"); err != nil {
		t.Fatal(err)
	}
	if got := dueIDs(t, o, outboxNow().Add(24*time.Hour)); !slices.Equal(got, ids(other)) {
		t.Fatalf("due with a parked message = %v, want only the other key", got)
	}
	if n := backlog(t, o); n != 3 {
		t.Fatalf("backlog = %d: parked messages and those behind them are backlog", n)
	}
}

func testScheduledDoesNotHoldBack(t *testing.T, o es.Outbox) {
	deadline, now := msgOf("order-1", 1), msgOf("order-1", 2)
	deadline.DeliverAt = outboxNow().Add(time.Hour)
	mustEnqueue(t, o, es.Enqueue{Messages: []es.Message{deadline, now}})
	if got := dueIDs(t, o, outboxNow()); !slices.Equal(got, ids(now)) {
		t.Fatalf("due = %v: a deadline not yet due must not hold back its key", got)
	}
}

func testConcurrentEnqueue(t *testing.T, o es.Outbox) {
	const writers, each = 8, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				_, err := o.AppendEnqueue(context.Background(), es.Enqueue{Messages: []es.Message{msgOf(fmt.Sprintf("w-%d", w), i)}},
					es.StreamAppend{StreamID: fmt.Sprintf("w-%d", w), Expected: es.Exact(int64(i)), Events: events("E", 1)})
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		})
	}
	wg.Wait()
	got := due(t, o, outboxNow())
	if len(got) != writers*each {
		t.Fatalf("due = %d messages, want %d", len(got), writers*each)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Seq <= got[i-1].Seq {
			t.Fatalf("due is not in sequence order at %d", i)
		}
	}
}
