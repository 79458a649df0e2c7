package es

import (
	"cmp"
	"context"
	"errors"
	"fmt"
)

// MultiStreamHandler runs commands whose decision spans several streams,
// such as creating a concert together with its ticket inventory, where
// each stream keeps its own [Decider] and state type.
//
// A command is a function that loads the streams it needs into a
// [Decision] ([Load], [DecideOn]) and records the events each stream gets
// ([Record]). The handler then appends to every stream the decision loaded
// in one [Store.Append], each expecting the version it was loaded at: the
// streams change together or not at all, and a stream that was only read
// still guards the decision. When another writer got there first, the
// handler decides again on fresh state, up to a bounded number of attempts.
//
// Handling is idempotent by command ID, as for [CommandHandler]: the
// command ID is the causation ID of every event appended, and event IDs
// are derived from the command ID and the stream, so that a command handled
// again appends nothing and returns the outcome of its first handling.
//
// A MultiStreamHandler is safe for concurrent use.
type MultiStreamHandler struct {
	store       Store
	registry    *Registry
	maxAttempts int
	snaps       *snapshotter // nil unless SnapshotEvery
	cfgErr      error        // an invalid configuration, returned by every Handle
}

// NewMultiStreamHandler returns a handler that appends to store and encodes
// and decodes events with reg. Of cfg it honours MaxAttempts; commands are
// not serialized per stream (they conflict and are decided again), and
// messages are sent from the decision ([Decision.Send]), so
// SerializePerStream and Announce are refused: every Handle then returns an
// error wrapping [ErrInvalidConfig].
func NewMultiStreamHandler(store Store, reg *Registry, cfg HandlerConfig) *MultiStreamHandler {
	h := &MultiStreamHandler{store: store, registry: reg, maxAttempts: cmp.Or(cfg.MaxAttempts, 5)}
	switch {
	case cfg.MaxAttempts < 0:
		h.cfgErr = fmt.Errorf("%w: multi-stream handler: MaxAttempts %d is negative", ErrInvalidConfig, cfg.MaxAttempts)
	case cfg.SerializePerStream:
		h.cfgErr = fmt.Errorf("%w: multi-stream handler: SerializePerStream is not supported", ErrInvalidConfig)
	case cfg.Announce != nil:
		h.cfgErr = fmt.Errorf("%w: multi-stream handler: Announce is not supported; use Decision.Send", ErrInvalidConfig)
	}
	snaps, err := newSnapshotter(store, cfg.SnapshotEvery)
	if err != nil && h.cfgErr == nil {
		h.cfgErr = fmt.Errorf("multi-stream handler: %w", err)
	}
	h.snaps = snaps
	return h
}

// MultiStreamResult is the outcome of a command handled by a
// [MultiStreamHandler].
type MultiStreamResult struct {
	// Streams has one entry per stream the command appended events to, in
	// the order the decision loaded them. On a repeated command, it lists
	// the streams that the decision loaded and the first handling wrote to.
	Streams []StreamResult
	// Repeated reports that the command ID had been handled before, so
	// nothing was appended this time.
	Repeated bool
}

// StreamResult is what a command appended to one stream.
type StreamResult struct {
	StreamID string
	// Version is the stream's version after the command (on a repeated
	// command, the version of the last event it appended).
	Version int64
	// Position is the global position of the last event appended.
	Position int64
	// Events are the events appended, as the decision recorded them (on a
	// repeated command, as the first handling stored them).
	Events []any
}

// Decision collects what one attempt at a command loads and decides. The
// handler passes a fresh Decision to every attempt. It is not safe for
// concurrent use, and it is of no use once the attempt is over.
type Decision struct {
	store     Store
	registry  *Registry
	snaps     *snapshotter
	commandID string
	md        Metadata
	streams   []*decidedStream
	byID      map[string]*decidedStream
	messages  []Message
	repeated  bool  // a loaded stream holds the command's events
	err       error // the first failure to load, encode or send
	done      bool
}

// decidedStream is a stream a decision loaded, and what it decided for it.
type decidedStream struct {
	id      string
	version int64 // as loaded
	events  []any
	data    []EventData
	// previous is what the command appended to the stream when it was
	// first handled, found by causation ID.
	previous []any
	prevVer  int64
	prevPos  int64
}

// fail records the decision's first failure and returns err.
func (d *Decision) fail(err error) error {
	if d.err == nil {
		d.err = err
	}
	return err
}

// Load folds the stream streamID with decider into its current state, and
// makes the stream part of the decision: it is appended to (or, if nothing
// is recorded for it, only checked) expecting the version it was loaded
// at. Events recorded in the decision are not folded in. Loading a stream
// twice reads it twice; the expectation stays the version of the first
// load. Only the decider's Initial and Evolve are used.
func Load[S, C, E any](ctx context.Context, d *Decision, decider Decider[S, C, E], streamID string) (S, error) {
	s, _, err := load(ctx, d, decider, streamID)
	return s, err
}

// load is Load that also returns the events the command appended to the
// stream when it was handled before, if it was.
func load[S, C, E any](ctx context.Context, d *Decision, decider Decider[S, C, E], streamID string) (S, []E, error) {
	if d.done {
		return decider.Initial(), nil, errDecisionOver
	}
	f, err := foldStream(ctx, d.store, d.registry, d.snaps, decider, streamID, d.commandID)
	if err != nil {
		return decider.Initial(), nil, d.fail(err)
	}
	state, version, previous, prevVer, prevPos := f.state, f.version, f.previous, f.prevVersion, f.prevPosition
	s := d.byID[streamID]
	if s == nil {
		s = &decidedStream{id: streamID, version: version}
		d.byID[streamID] = s
		d.streams = append(d.streams, s)
	}
	if len(previous) > 0 {
		d.repeated = true
		s.previous = s.previous[:0]
		for _, e := range previous {
			s.previous = append(s.previous, e)
		}
		s.prevVer, s.prevPos = prevVer, prevPos
	}
	return state, previous, nil
}

// Version returns the version the decision loaded streamID at, which its
// append expects; ok is false for a stream it has not loaded. A command
// that must be decided on a version a client saw (an HTTP If-Match) loads
// the stream, compares, and returns a conflict of its own when they
// differ: a writer that moves the stream after the load makes the append
// conflict, and the next attempt sees the new version.
func (d *Decision) Version(streamID string) (version int64, ok bool) {
	s := d.byID[streamID]
	if s == nil {
		return 0, false
	}
	return s.version, true
}

// DecideOn loads the stream streamID with decider ([Load]), decides cmd
// against its state and records the events decided ([Record]). It returns
// them, or the error Decide returned, unchanged. cmd must have the
// decider's command type: convert a concrete command to it, as in
// DecideOn(ctx, d, carts.Decider(), id, carts.Command(add)).
//
// When the command turns out to have been handled before, nothing is
// decided: DecideOn returns the events the first handling appended to this
// stream, so that the rest of the decision can run as it did then.
func DecideOn[S, C, E any](ctx context.Context, d *Decision, decider Decider[S, C, E], streamID string, cmd C) ([]E, error) {
	state, previous, err := load(ctx, d, decider, streamID)
	if err != nil {
		return nil, err
	}
	if d.repeated {
		return previous, nil
	}
	events, err := decider.Decide(state, cmd)
	if err != nil {
		return nil, err
	}
	if err := Record(d, streamID, events...); err != nil {
		return nil, err
	}
	return events, nil
}

// Record adds events to what the decision appends to streamID, a stream it
// has loaded: appending to a stream the decision has not seen would
// bypass its expected version. Events are encoded at once, so an
// unregistered type fails here. Once the command is known to be a repeat,
// Record records nothing.
func Record[E any](d *Decision, streamID string, events ...E) error {
	if d.done {
		return errDecisionOver
	}
	s := d.byID[streamID]
	if s == nil {
		return d.fail(fmt.Errorf("es: record on stream %q: the decision has not loaded it", streamID))
	}
	if d.repeated {
		return nil
	}
	for _, ev := range events {
		data, err := d.registry.Encode(ev)
		if err != nil {
			return d.fail(fmt.Errorf("es: record on stream %q: %w", streamID, err))
		}
		data.ID = DeriveID(d.commandID+"@"+streamID, len(s.data))
		data.Metadata = d.md
		s.events = append(s.events, ev)
		s.data = append(s.data, data)
	}
	return nil
}

// Send enqueues an integration message in the outbox, in the same
// transaction as the decision's events ([Outbox.AppendEnqueue]), so that it
// goes out if and only if they are stored. The store must implement
// [Outbox]. The message's Key is required; its ID, when empty, is derived
// from the command ID. A message sent by a decision that records no events
// is still enqueued once (the outbox skips IDs it holds), but a repeat of
// such a command is not reported as Repeated. Once the command is known to
// be a repeat, Send sends nothing.
func (d *Decision) Send(s Send) error {
	if d.done {
		return errDecisionOver
	}
	if _, ok := d.store.(Outbox); !ok {
		return d.fail(fmt.Errorf("es: send %T: the store %T has no outbox", s.Message, d.store))
	}
	if s.Key == "" {
		return d.fail(fmt.Errorf("es: send %T: no key", s.Message))
	}
	if d.repeated {
		return nil
	}
	m, err := NewMessage(d.registry, s.Key, s.Message)
	if err != nil {
		return d.fail(fmt.Errorf("es: send: %w", err))
	}
	m.ID, m.DeliverAt, m.Metadata = s.ID, s.DeliverAt, d.md
	if m.ID == "" {
		m.ID = DeriveID(d.commandID+"/message", len(d.messages))
	}
	d.messages = append(d.messages, m)
	return nil
}

var errDecisionOver = errors.New("es: decision used after its attempt ended")

// Handle runs decide, which loads streams into d and records events, and
// appends what it recorded in one transaction. decide may run more than
// once (after a conflict), each time with a fresh Decision, so it must not
// have effects of its own. An error decide returns comes back unchanged and
// nothing is written; so does a failure to load, record or send, even if
// decide ignored it. A conflict that outlasts the handler's attempts wraps
// [ErrConcurrency].
//
// The command is a repeat when a stream the decision loads holds events
// caused by commandID. Then nothing is appended, whatever decide records or
// returns, and Handle returns the outcome of the first handling, marked
// Repeated. So is a handling that raced with another of the same command
// and lost.
//
// commandID identifies the command (see [CommandHandler.Handle]); when it is empty, the
// handler makes one up, and the command is not idempotent. Events and
// messages carry the command ID as their causation ID, and the correlation
// ID (by default the command ID), trace parent and extra values of the
// context's metadata ([WithMetadata]).
func (h *MultiStreamHandler) Handle(ctx context.Context, commandID string, decide func(ctx context.Context, d *Decision) error) (MultiStreamResult, error) {
	if h.cfgErr != nil {
		return MultiStreamResult{}, h.cfgErr
	}
	if commandID == "" {
		commandID = NewID()
	}
	md := commandMetadata(ctx, commandID)
	var lastErr error
	for attempt := range h.maxAttempts {
		if attempt > 0 {
			if !sleep(ctx, conflictBackoff(attempt-1)) {
				return MultiStreamResult{}, ctx.Err()
			}
		}
		d, err := h.decide(ctx, commandID, md, decide)
		if err != nil {
			return MultiStreamResult{}, err
		}
		if d.repeated {
			// The first handling may have committed between this
			// decision's loads of two of its streams, so that the earlier
			// load missed its events there. Every load from now on sees
			// them all (they committed atomically): decide once more.
			if again, err := h.decide(ctx, commandID, md, decide); err == nil && again.repeated {
				return again.previous(), nil
			}
			return d.previous(), nil
		}
		res, err := h.append(ctx, d)
		if errors.Is(err, ErrDuplicateEventID) {
			// A concurrent handling of this command may have stored
			// events that differ from these (a decision may legitimately
			// vary, with a salted hash say): then it was handled, and a
			// fresh decision finds its events.
			if again, aerr := h.decide(ctx, commandID, md, decide); aerr == nil && again.repeated {
				return again.previous(), nil
			}
			return MultiStreamResult{}, err
		}
		if errors.Is(err, ErrConcurrency) {
			lastErr = err
			continue
		}
		return res, err
	}
	return MultiStreamResult{}, fmt.Errorf("es: command %s gave up after %d attempts: %w", commandID, h.maxAttempts, lastErr)
}

// decide runs one attempt's decision. It returns the error decide
// returned, unless a load, record or send failed (that failure wins, as
// the decision may rest on it) or the command turned out to be a repeat
// (the command was handled: its second decision does not matter).
func (h *MultiStreamHandler) decide(ctx context.Context, commandID string, md Metadata, decide func(context.Context, *Decision) error) (*Decision, error) {
	d := &Decision{store: h.store, registry: h.registry, snaps: h.snaps, commandID: commandID, md: md, byID: make(map[string]*decidedStream)}
	err := decide(ctx, d)
	d.done = true
	switch {
	case d.err != nil:
		return nil, d.err
	case d.repeated:
		return d, nil
	case err != nil:
		return nil, err
	}
	return d, nil
}

// previous returns the outcome of the first handling of a repeated command.
func (d *Decision) previous() MultiStreamResult {
	res := MultiStreamResult{Repeated: true}
	for _, s := range d.streams {
		if len(s.previous) > 0 {
			res.Streams = append(res.Streams, StreamResult{StreamID: s.id, Version: s.prevVer, Position: s.prevPos, Events: s.previous})
		}
	}
	return res
}

// append writes what d decided: every loaded stream, expecting the version
// it was loaded at, and d's messages.
func (h *MultiStreamHandler) append(ctx context.Context, d *Decision) (MultiStreamResult, error) {
	var res MultiStreamResult
	appends := make([]StreamAppend, len(d.streams))
	events := 0
	for i, s := range d.streams {
		appends[i] = StreamAppend{StreamID: s.id, Expected: Exact(s.version), Events: s.data}
		events += len(s.data)
	}
	if events == 0 && len(d.messages) == 0 {
		return res, nil
	}
	var (
		results []AppendResult
		err     error
	)
	if len(d.messages) > 0 {
		// Send made sure that the store is an Outbox.
		results, err = h.store.(Outbox).AppendEnqueue(ctx, Enqueue{Messages: d.messages}, appends...)
	} else {
		results, err = h.store.Append(ctx, appends...)
	}
	if err != nil {
		return MultiStreamResult{}, err
	}
	for i, s := range d.streams {
		r := results[i]
		// A concurrent handling of the same command may have stored these
		// very events first: then the store took this append as a repeat.
		res.Repeated = res.Repeated || r.Repeated
		if len(s.events) > 0 {
			res.Streams = append(res.Streams, StreamResult{StreamID: s.id, Version: r.Version, Position: r.Position, Events: s.events})
		}
	}
	return res, nil
}
