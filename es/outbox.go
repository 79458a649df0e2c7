package es

import (
	"context"
	"encoding/json"
	"hash/fnv"
	"time"
)

// Message is an integration message: the public contract between modules
// (an integration event, or a command for another module), as opposed to
// a module's internal domain events. Messages travel through an [Outbox].
type Message struct {
	// ID identifies the message for good: a redelivered message has the
	// same ID, and consumers deduplicate on it (see [Inbox]).
	ID string
	// Key orders messages: those with the same key are delivered in the
	// order they were written. Use the ID of what the message is about
	// (an order ID, say). Messages with different keys may overtake each
	// other.
	Key string
	// Type names the message, e.g. "orders.OrderPlaced", and
	// SchemaVersion the version of its shape: messages are registered in a
	// [Registry] like events, and upcast like them.
	Type          string
	SchemaVersion int
	// Data is the JSON payload.
	Data json.RawMessage
	// Metadata carries correlation and causation, as for events.
	Metadata Metadata
	// DeliverAt, when set, delays delivery until that time: a deadline.
	// A scheduled message does not hold back others of its key until it
	// is due.
	DeliverAt time.Time
}

// Enqueue is what an append adds to the outbox in its transaction.
type Enqueue struct {
	// Messages to deliver, in this order.
	Messages []Message
	// Cancel lists the IDs of scheduled messages (deadlines) that must
	// no longer be delivered. Cancelling a message that was delivered or
	// never existed is not an error.
	Cancel []string
}

// OutboxBuckets is the number of buckets messages are spread over by key
// (see [MessageBucket]). Relay workers divide the buckets among them.
const OutboxBuckets = 64

// MessageBucket returns the bucket of a message key, in [0, OutboxBuckets).
// Messages of one key share a bucket, so one relay worker delivers them
// all, in order.
func MessageBucket(key string) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % OutboxBuckets)
}

// OutboxMessage is a message as the outbox holds it.
type OutboxMessage struct {
	Message
	// Seq is the message's place in the outbox's order.
	Seq int64
	// Attempts counts failed deliveries so far.
	Attempts int
}

// Outbox is implemented by stores that keep an outbox: messages written in
// the same transaction as the events that cause them, then delivered by a
// [Relay]. The memory, SQLite and PostgreSQL stores implement it.
type Outbox interface {
	Store
	// AppendEnqueue is Store.Append that also enqueues enq's messages and
	// cancels its scheduled ones, atomically with the events. A repeated
	// append (see Store) enqueues nothing, and a message whose ID is
	// already in the outbox is skipped: enqueuing is idempotent by message
	// ID. appends may be empty when enq is not. Invalid requests fail with
	// [ErrInvalidAppend].
	AppendEnqueue(ctx context.Context, enq Enqueue, appends ...StreamAppend) ([]AppendResult, error)
	// Due returns up to limit messages of the given buckets that may be
	// delivered at now, in outbox order (Seq): not delivered, not
	// cancelled, not parked, due (DeliverAt and any retry time at or before
	// now), and not behind a held-back message of the same key — an earlier
	// one that is due but waiting for a retry, or parked. Per-key order
	// then holds as long as the caller delivers the returned messages in
	// order and, when one fails, skips the rest of its key.
	Due(ctx context.Context, now time.Time, buckets []int, limit int) ([]OutboxMessage, error)
	// MarkDelivered records that the message with sequence number seq was
	// delivered.
	MarkDelivered(ctx context.Context, seq int64) error
	// MarkFailed records a failed delivery: the message is retried at
	// retryAt, or, if park is set, not retried until an operator acts (a
	// parked message keeps holding back the later messages of its key).
	MarkFailed(ctx context.Context, seq int64, retryAt time.Time, park bool, reason string) error
	// Backlog returns the number of messages not yet delivered nor cancelled.
	Backlog(ctx context.Context) (int64, error)
}

// MessageReader is implemented by outboxes that keep delivered messages
// and can look messages up by ID, so that an operator's tool (an event
// explorer) can show what a message said and, through its metadata, what
// caused it. The memory, SQLite and PostgreSQL stores implement it.
type MessageReader interface {
	// Messages returns the outbox's messages with the given IDs, in
	// outbox order (Seq), delivered and cancelled ones included; IDs the
	// outbox does not hold are left out.
	Messages(ctx context.Context, ids []string) ([]OutboxMessage, error)
}

// Inbox remembers which messages a consumer has handled, so that a
// redelivered message has no second effect. SQL stores offer inboxes that
// record the message inside the consumer's own transaction; this interface
// is for consumers without one.
type Inbox interface {
	// Handle calls fn unless consumer has already handled messageID, and
	// records messageID as handled if fn succeeds. It reports whether fn ran.
	Handle(ctx context.Context, consumer, messageID string, fn func(ctx context.Context) error) (bool, error)
}

// NewMessage encodes v, a type registered in reg, as a message with a new
// ID and the given ordering key.
func NewMessage(reg *Registry, key string, v any) (Message, error) {
	d, err := reg.Encode(v)
	if err != nil {
		return Message{}, err
	}
	return Message{ID: d.ID, Key: key, Type: d.Type, SchemaVersion: d.SchemaVersion, Data: d.Data}, nil
}

// DecodeMessage returns the Go value of a message, upcast to the current
// schema version of its type.
func DecodeMessage(reg *Registry, m Message) (any, error) {
	return reg.DecodeData(m.Type, m.SchemaVersion, m.Data)
}
