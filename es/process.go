package es

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ProcessManager coordinates a process that spans modules — an order
// going from cart to payment to tickets — by reacting to messages. Each
// instance of the process (one order) has its own event-sourced state in
// the stream Name + "-" + its ID, and answers a message with events that
// record what it learnt, messages to send (commands for other modules,
// possibly scheduled: deadlines) and deadlines to cancel.
//
// S is the state and E the type of the process's own events. Messages and
// events are registered in the [Registry] the [ProcessHandler] uses.
// Correlate and React must be pure; the time comes in as now.
type ProcessManager[S, E any] struct {
	// Name names the process; it is the category of its streams.
	Name string
	// Correlate returns the ID of the process instance a message belongs
	// to, or "" if the process does not handle it.
	Correlate func(msg any) string
	// Initial returns the state of an instance that has seen nothing.
	Initial func() S
	// React decides what a message means for an instance in state.
	React func(state S, msg any, now time.Time) (Reaction[E], error)
	// Evolve returns the state after one of the process's events.
	Evolve func(state S, event E) S
}

// Reaction is what a process manager does about one message. All of it
// commits atomically: the events, the messages sent and the deadlines
// cancelled.
type Reaction[E any] struct {
	Events []E
	Send   []Send
	// Cancel lists the IDs of deadlines (scheduled Sends) to cancel.
	Cancel []string
}

// Send is a message a process manager sends.
type Send struct {
	// Message is the message, a value of a registered type.
	Message any
	// Key orders the message among others (default: the instance's ID).
	Key string
	// DeliverAt, when set, makes the message a deadline delivered then.
	DeliverAt time.Time
	// ID is the message's ID. Leave it empty to have one derived from the
	// handled message (so that a retry sends the same message); set it,
	// e.g. with DeriveID, to be able to cancel a deadline later.
	ID string
}

// MessageHandledType is the stored type name of [MessageHandled].
const MessageHandledType = "es.MessageHandled"

// MessageHandled is the event a [ProcessHandler] records in an instance's
// stream when a reaction sends or cancels messages but records no events of
// its own, so that a redelivery of the message is recognised. Every
// [Registry] decodes it, without registration.
type MessageHandled struct {
	MessageID   string `json:"message_id"`
	MessageType string `json:"message_type"`
}

// DeadlinesCancelledType is the stored type name of [DeadlinesCancelled].
const DeadlinesCancelledType = "es.DeadlinesCancelled"

// DeadlinesCancelled is the event a [ProcessHandler] records in an
// instance's stream, with the reaction's own events, when a reaction
// cancels deadlines. A cancelled deadline that the relay had already
// fetched is still delivered; the handler then finds its ID here and
// drops it without calling React. Every [Registry] decodes it, without
// registration.
type DeadlinesCancelled struct {
	DeadlineIDs []string `json:"deadline_ids"`
}

// ProcessHandler runs a [ProcessManager]: it handles messages (from a
// [Relay], usually through a [Bus]) for the process's instances. It is
// idempotent by message ID: an instance records the ID of every message
// it reacted to as the causation ID of its events, and a redelivered
// message finds it and does nothing.
//
// A deadline and its cancellation race: the outbox stops a cancelled
// deadline only if the cancellation commits before a relay fetched it.
// The handler settles the race on the instance's stream, which orders
// both: a deadline that arrives after the instance cancelled it is
// dropped without calling React (see [DeadlinesCancelled]); a deadline
// handled before the cancellation has been reacted to, and React sees
// that in the state when it handles the message that would have
// cancelled it. Either way React sees one consistent history. The instance's events, the messages
// it sends and the deadlines it cancels are written in one transaction
// ([Outbox.AppendEnqueue]): a crash leaves either all of them or none.
//
// A ProcessHandler is safe for concurrent use.
type ProcessHandler[S, E any] struct {
	outbox Outbox
	reg    *Registry
	pm     ProcessManager[S, E]
	cfg    ProcessConfig
	cfgErr error
}

// ProcessConfig configures a [ProcessHandler]. The zero value is a working
// configuration: each field says its default.
type ProcessConfig struct {
	// Clock gives React its now (default [SystemClock]).
	Clock Clock
	// MaxAttempts is how many times a message is reacted to before a
	// persisting concurrency conflict on the instance's stream is returned
	// (default 5): another delivery of a message for the same instance
	// got there first.
	MaxAttempts int
}

// NewProcessHandler returns a handler for pm's messages, writing to outbox
// and encoding with reg. An invalid configuration is reported by every
// Handle, wrapping [ErrInvalidConfig].
func NewProcessHandler[S, E any](outbox Outbox, reg *Registry, pm ProcessManager[S, E], cfg ProcessConfig) *ProcessHandler[S, E] {
	h := &ProcessHandler[S, E]{outbox: outbox, reg: reg, pm: pm, cfg: cfg}
	switch {
	case cfg.MaxAttempts < 0:
		h.cfgErr = fmt.Errorf("%w: process %s: MaxAttempts %d is negative", ErrInvalidConfig, pm.Name, cfg.MaxAttempts)
	case !validName(pm.Name) || strings.Contains(pm.Name, "-"):
		// The name is the category of the instances' streams: a '-' would
		// make it another category.
		h.cfgErr = fmt.Errorf("%w: process name %q: want a stream category (UTF-8, no NUL, no '-')", ErrInvalidConfig, pm.Name)
	case outbox == nil || reg == nil || pm.Correlate == nil || pm.Initial == nil || pm.React == nil || pm.Evolve == nil:
		h.cfgErr = fmt.Errorf("%w: process %s: the outbox, the registry, Correlate, Initial, React and Evolve are required", ErrInvalidConfig, pm.Name)
	}
	h.cfg.MaxAttempts = cmp.Or(cfg.MaxAttempts, 5)
	if h.cfg.Clock == nil {
		h.cfg.Clock = SystemClock{}
	}
	return h
}

// Handle reacts to m. Messages the process does not correlate are
// ignored. An error from React is returned as it is, and nothing is written.
func (h *ProcessHandler[S, E]) Handle(ctx context.Context, m Message) error {
	if h.cfgErr != nil {
		return h.cfgErr
	}
	msg, err := DecodeMessage(h.reg, m)
	if err != nil {
		return fmt.Errorf("es: process %s: %w", h.pm.Name, err)
	}
	id := h.pm.Correlate(msg)
	if id == "" {
		return nil
	}
	stream := h.pm.Name + "-" + id
	var lastErr error
	for attempt := range h.cfg.MaxAttempts {
		state, version, seen, err := h.load(ctx, stream, m.ID)
		if err != nil || seen {
			return err
		}
		if state.cancelled[m.ID] {
			return nil // a deadline the instance cancelled before it came
		}
		r, err := h.pm.React(state.state, msg, h.cfg.Clock.Now())
		if err != nil {
			return err
		}
		events, enq, err := h.encode(stream, id, m, r)
		if err != nil {
			return err
		}
		if len(events) == 0 {
			return nil
		}
		_, err = h.outbox.AppendEnqueue(ctx, enq, StreamAppend{StreamID: stream, Expected: Exact(version), Events: events})
		if errors.Is(err, ErrDuplicateEventID) {
			// A concurrent delivery of this message, reacting to a later
			// state, stored other events under the same IDs: the message
			// was handled.
			if _, _, seen, lerr := h.load(ctx, stream, m.ID); lerr == nil && seen {
				return nil
			}
			return err
		}
		if errors.Is(err, ErrConcurrency) {
			lastErr = err
			if !sleep(ctx, conflictBackoff(attempt)) {
				return ctx.Err()
			}
			continue
		}
		return err
	}
	return fmt.Errorf("es: process %s: message %s gave up after %d attempts: %w", h.pm.Name, m.ID, h.cfg.MaxAttempts, lastErr)
}

// State returns the state of the process instance id.
func (h *ProcessHandler[S, E]) State(ctx context.Context, id string) (S, error) {
	s, _, _, err := h.load(ctx, h.pm.Name+"-"+id, "")
	return s.state, err
}

// instance is a process instance as its stream tells it.
type instance[S any] struct {
	state     S
	cancelled map[string]bool // deadline IDs the instance cancelled
}

func (h *ProcessHandler[S, E]) load(ctx context.Context, stream, messageID string) (instance[S], int64, bool, error) {
	in := instance[S]{state: h.pm.Initial()}
	var version int64
	seen := false
	for e, err := range h.outbox.ReadStream(ctx, stream, StreamQuery{}) {
		if err != nil {
			return in, 0, false, err
		}
		version = e.Version
		if messageID != "" && e.Metadata.CausationID == messageID {
			seen = true
		}
		switch e.Type {
		case MessageHandledType:
			continue
		case DeadlinesCancelledType:
			var dc DeadlinesCancelled
			if err := json.Unmarshal(e.Data, &dc); err != nil {
				return in, 0, false, fmt.Errorf("es: process stream %s: event %s: %w", stream, e.ID, err)
			}
			if in.cancelled == nil {
				in.cancelled = make(map[string]bool)
			}
			for _, id := range dc.DeadlineIDs {
				in.cancelled[id] = true
			}
			continue
		}
		ev, err := Decode[E](h.reg, e)
		if err != nil {
			return in, 0, false, fmt.Errorf("es: process stream %s: %w", stream, err)
		}
		in.state = h.pm.Evolve(in.state, ev)
	}
	return in, version, seen, nil
}

func (h *ProcessHandler[S, E]) encode(stream, id string, m Message, r Reaction[E]) ([]EventData, Enqueue, error) {
	md := Metadata{CorrelationID: m.Metadata.CorrelationID, CausationID: m.ID, TraceParent: m.Metadata.TraceParent}
	if md.CorrelationID == "" {
		md.CorrelationID = m.ID
	}
	// IDs derive from the handled message and the stream, so that a retry
	// writes the same events and messages.
	base := m.ID + "@" + stream
	var events []EventData
	for i, ev := range r.Events {
		d, err := h.reg.Encode(ev)
		if err != nil {
			return nil, Enqueue{}, fmt.Errorf("es: process %s: %w", h.pm.Name, err)
		}
		d.ID, d.Metadata = DeriveID(base, i), md
		events = append(events, d)
	}
	enq := Enqueue{Cancel: r.Cancel}
	for i, s := range r.Send {
		msg, err := NewMessage(h.reg, s.Key, s.Message)
		if err != nil {
			return nil, Enqueue{}, fmt.Errorf("es: process %s: %w", h.pm.Name, err)
		}
		msg.ID, msg.DeliverAt, msg.Metadata = s.ID, s.DeliverAt, md
		if msg.ID == "" {
			msg.ID = DeriveID(base+"/send", i)
		}
		if msg.Key == "" {
			msg.Key = id
		}
		enq.Messages = append(enq.Messages, msg)
	}
	if len(r.Cancel) > 0 {
		// Recorded so that a cancelled deadline the relay had already
		// fetched is recognised when it arrives; it also marks the message
		// as handled when the reaction has no events of its own.
		data, err := json.Marshal(DeadlinesCancelled{DeadlineIDs: r.Cancel})
		if err != nil {
			return nil, Enqueue{}, fmt.Errorf("es: process %s: %w", h.pm.Name, err)
		}
		events = append(events, EventData{ID: DeriveID(base, len(events)), Type: DeadlinesCancelledType, SchemaVersion: 1, Data: data, Metadata: md})
	}
	if len(events) == 0 && len(enq.Messages) > 0 {
		data, _ := json.Marshal(MessageHandled{MessageID: m.ID, MessageType: m.Type})
		events = append(events, EventData{ID: DeriveID(base, 0), Type: MessageHandledType, SchemaVersion: 1, Data: data, Metadata: md})
	}
	return events, enq, nil
}

// DeadlineID returns a stable ID for a process instance's deadline of the
// given name, to set on a scheduled [Send] and to cancel it with later.
// An ID is used once: the outbox skips a message whose ID it holds, a
// cancelled one included, so a deadline scheduled again after it was
// cancelled needs another name ("payment-timeout-2").
func DeadlineID(process, instance, name string) string {
	return DeriveID("deadline:"+process+"-"+instance+":"+name, 0)
}
