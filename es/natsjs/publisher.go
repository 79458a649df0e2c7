// Package natsjs carries es's integration messages ([es.Message]) through
// NATS JetStream, so that modules in different processes exchange them
// with the guarantees of the outbox: a [Publisher] for the [es.Relay],
// and a [Subscriber] that hands each message to a handler through an
// [es.Inbox]. It lives beside the stores, so that package es itself
// depends on no broker client.
//
// Wire the two ends like this:
//
//	pub, _ := natsjs.NewPublisher(ctx, js, natsjs.PublisherConfig{})
//	go es.NewRelay(store, pub, es.RelayConfig{}).Run(ctx)
//
//	sub := natsjs.NewSubscriber(js, "billing", store.Inbox(), handle, natsjs.SubscriberConfig{})
//	go sub.Run(ctx)
//
// # What holds
//
//   - Each message is published with its ID as the Nats-Msg-Id header:
//     JetStream drops a second publish of the same ID within the stream's
//     duplicate window, so a relay that redelivers after a crash does not
//     store the message twice (and the inbox catches what the window
//     misses).
//   - Publish returns only once JetStream acknowledged the message (it is
//     stored), so the relay records a delivery only when it is safe.
//   - The relay publishes the messages of one key one after another, in
//     outbox order, and the subject of each names its bucket
//     ([es.MessageBucket]): <Subject>.<bucket>.<type>.
//   - A subscriber has one durable consumer per bucket with at most one
//     unacknowledged message (MaxAckPending 1): JetStream hands it the
//     bucket's next message only once the previous one is acknowledged, and
//     a redelivery (a failed handler's nak, an ack lost in a crash) comes
//     before anything later. So the messages of one key are handled in the
//     order they were written, whatever fails.
//   - The handler runs inside [es.Inbox.Handle], and the message is
//     acknowledged only after Handle returned, that is after the inbox's
//     transaction committed: a redelivered message finds its ID in the
//     inbox and has no second effect.
//
// The price of the order is one message in flight per bucket: a
// subscriber handles at most [es.OutboxBuckets] messages at a time, one
// per bucket, and each bucket waits for a round trip to the server
// between two messages. docs/nats.md has the figures.
package natsjs

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"esgo.dev/es"
)

// The headers a message travels with; its Data is the NATS message's
// payload.
const (
	// HeaderKey holds the message's ordering key (es.Message.Key). The
	// ID travels in JetStream's own Nats-Msg-Id header.
	HeaderKey = "Es-Key"
	// HeaderType holds the message type.
	HeaderType = "Es-Type"
	// HeaderSchemaVersion holds the schema version of the message type.
	HeaderSchemaVersion = "Es-Schema-Version"
	// HeaderCorrelationID holds the metadata's correlation ID.
	HeaderCorrelationID = "Es-Correlation-Id"
	// HeaderCausationID holds the metadata's causation ID.
	HeaderCausationID = "Es-Causation-Id"
	// HeaderTraceParent holds the W3C traceparent, under its standard name.
	HeaderTraceParent = "traceparent"
	// HeaderExtra holds the metadata's free key/values, as a JSON object.
	HeaderExtra = "Es-Extra"
)

// ErrInvalidType is returned by [Publisher.Publish] for a message whose
// type cannot be part of a NATS subject: empty, or with a space, a '*',
// a '>' or an empty token ("a..b", a leading or trailing dot). The relay
// retries and finally parks such a message; rename the type.
var ErrInvalidType = errors.New("natsjs: message type cannot be part of a subject")

// Defaults of [PublisherConfig] and [SubscriberConfig].
const (
	// DefaultStream is the stream's default name.
	DefaultStream = "ES"
	// DefaultSubject is the default prefix of the messages' subjects.
	DefaultSubject = "es"
)

// PublisherConfig configures a [Publisher]. The zero value is a working
// configuration: each field says its default.
type PublisherConfig struct {
	// Stream is the name of the JetStream stream the messages go to
	// (default [DefaultStream]). A publish whose subject lands in another
	// stream fails.
	Stream string
	// Subject is the prefix of the messages' subjects (default
	// [DefaultSubject]): a message is published on
	// <Subject>.<bucket>.<type>, bucket being [es.MessageBucket] of its
	// key. Subscribers must use the same Stream and Subject.
	Subject string
	// Duplicates is the duplicate window of the stream, when
	// [NewPublisher] creates it (default 2 minutes, the server's):
	// JetStream drops a message whose ID it stored within the window. A
	// relay redelivering later (after a long outage) stores the message a
	// second time, and the subscriber's inbox drops it.
	Duplicates time.Duration
	// Timeout bounds one publish, from sending to JetStream's
	// acknowledgement (default 5s). A publish that times out fails and
	// the relay retries it, with the same ID.
	Timeout time.Duration
}

func (c PublisherConfig) withDefaults() (PublisherConfig, error) {
	if c.Duplicates < 0 || c.Timeout < 0 {
		return c, fmt.Errorf("%w: natsjs: negative Duplicates or Timeout", es.ErrInvalidConfig)
	}
	c.Stream = cmp.Or(c.Stream, DefaultStream)
	c.Subject = cmp.Or(c.Subject, DefaultSubject)
	c.Duplicates = cmp.Or(c.Duplicates, 2*time.Minute)
	c.Timeout = cmp.Or(c.Timeout, 5*time.Second)
	if err := checkNames(c.Stream, c.Subject); err != nil {
		return c, err
	}
	return c, nil
}

// checkNames checks a stream name and a subject prefix.
func checkNames(stream, subject string) error {
	if strings.ContainsAny(stream, ".*> \t\r\n") {
		return fmt.Errorf("%w: natsjs: stream name %q has a '.', '*', '>' or a space", es.ErrInvalidConfig, stream)
	}
	if !validSubject(subject) {
		return fmt.Errorf("%w: natsjs: subject prefix %q is not a literal NATS subject", es.ErrInvalidConfig, subject)
	}
	return nil
}

// validSubject reports whether s is a literal subject: dot-separated
// tokens, none empty, without spaces or wildcards.
func validSubject(s string) bool {
	if s == "" || strings.ContainsAny(s, "*> \t\r\n") {
		return false
	}
	for tok := range strings.SplitSeq(s, ".") {
		if tok == "" {
			return false
		}
	}
	return true
}

// Publisher is an [es.Publisher] that publishes each message to a
// JetStream stream and returns once JetStream stored it. Hand it to
// [es.NewRelay]. It is safe for concurrent use.
type Publisher struct {
	js  jetstream.JetStream
	cfg PublisherConfig
}

var _ es.Publisher = (*Publisher)(nil)

// NewPublisher returns a publisher to the stream of cfg, and creates the
// stream if it does not exist: file storage, the subjects <Subject>.>,
// the duplicate window of cfg, messages kept until the operator's limits
// remove them. An existing stream is used as it is. It fails with an
// error wrapping [es.ErrInvalidConfig] for an invalid configuration, or
// with JetStream's error if the stream can be neither found nor created.
func NewPublisher(ctx context.Context, js jetstream.JetStream, cfg PublisherConfig) (*Publisher, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := ensureStream(ctx, js, cfg.Stream, cfg.Subject, cfg.Duplicates); err != nil {
		return nil, err
	}
	return &Publisher{js: js, cfg: cfg}, nil
}

// ensureStream creates the stream unless it exists.
func ensureStream(ctx context.Context, js jetstream.JetStream, stream, subject string, dup time.Duration) error {
	_, err := js.Stream(ctx, stream)
	if err == nil {
		return nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("natsjs: stream %s: %w", stream, err)
	}
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{
		Name:       stream,
		Subjects:   []string{subject + ".>"},
		Storage:    jetstream.FileStorage,
		Duplicates: dup,
	})
	if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return fmt.Errorf("natsjs: creating stream %s: %w", stream, err)
	}
	return nil
}

// Publish implements [es.Publisher]: it publishes m with its ID as
// Nats-Msg-Id and waits for JetStream's acknowledgement. A message that
// JetStream recognises as a duplicate counts as published.
func (p *Publisher) Publish(ctx context.Context, m es.Message) error {
	msg, err := encode(p.cfg.Subject, m)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	if _, err := p.js.PublishMsg(ctx, msg, jetstream.WithMsgID(m.ID), jetstream.WithExpectStream(p.cfg.Stream)); err != nil {
		return fmt.Errorf("natsjs: publish %s (%s): %w", m.ID, m.Type, err)
	}
	return nil
}

// Subject returns the subject that m is published on, with the
// configured prefix: <Subject>.<bucket>.<type>.
func (p *Publisher) Subject(m es.Message) string { return subjectOf(p.cfg.Subject, m) }

func subjectOf(prefix string, m es.Message) string {
	return prefix + "." + strconv.Itoa(es.MessageBucket(m.Key)) + "." + m.Type
}

// encode turns m into a NATS message on its subject.
func encode(prefix string, m es.Message) (*nats.Msg, error) {
	if !validSubject(m.Type) {
		return nil, fmt.Errorf("%w: %q (message %s)", ErrInvalidType, m.Type, m.ID)
	}
	if m.ID == "" {
		return nil, errors.New("natsjs: message without an ID")
	}
	h := nats.Header{}
	h.Set(HeaderKey, m.Key)
	h.Set(HeaderType, m.Type)
	h.Set(HeaderSchemaVersion, strconv.Itoa(m.SchemaVersion))
	if v := m.Metadata.CorrelationID; v != "" {
		h.Set(HeaderCorrelationID, v)
	}
	if v := m.Metadata.CausationID; v != "" {
		h.Set(HeaderCausationID, v)
	}
	if v := m.Metadata.TraceParent; v != "" {
		h.Set(HeaderTraceParent, v)
	}
	if len(m.Metadata.Extra) > 0 {
		b, err := json.Marshal(m.Metadata.Extra)
		if err != nil {
			return nil, fmt.Errorf("natsjs: message %s: metadata: %w", m.ID, err)
		}
		h.Set(HeaderExtra, string(b))
	}
	return &nats.Msg{Subject: subjectOf(prefix, m), Header: h, Data: m.Data}, nil
}

// errNotOurs reports a NATS message without the headers of an es message.
var errNotOurs = errors.New("natsjs: not an es message")

// decode turns a NATS message back into the es message it carries.
func decode(h nats.Header, data []byte) (es.Message, error) {
	m := es.Message{
		ID:   h.Get(jetstream.MsgIDHeader),
		Key:  h.Get(HeaderKey),
		Type: h.Get(HeaderType),
		Data: json.RawMessage(data),
		Metadata: es.Metadata{
			CorrelationID: h.Get(HeaderCorrelationID),
			CausationID:   h.Get(HeaderCausationID),
			TraceParent:   h.Get(HeaderTraceParent),
		},
	}
	if m.ID == "" || m.Type == "" {
		return m, fmt.Errorf("%w: no %s or %s header", errNotOurs, jetstream.MsgIDHeader, HeaderType)
	}
	v, err := strconv.Atoi(h.Get(HeaderSchemaVersion))
	if err != nil {
		return m, fmt.Errorf("%w: %s header: %w", errNotOurs, HeaderSchemaVersion, err)
	}
	m.SchemaVersion = v
	if x := h.Get(HeaderExtra); x != "" {
		if err := json.Unmarshal([]byte(x), &m.Metadata.Extra); err != nil {
			return m, fmt.Errorf("%w: %s header: %w", errNotOurs, HeaderExtra, err)
		}
	}
	return m, nil
}
