package es

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"
)

// Decider is the functional form of an aggregate: the state of a stream is
// a fold of its events, and a command is decided against that state.
//
// S is the state, C the command type and E the event type, usually an
// interface that all of the stream's event types implement. Decide reports
// broken business rules as errors (sentinels or types that errors.Is and
// errors.As can find); it never panics for them. Decide and Evolve must be
// pure: whatever they need to know, such as the current time, comes in the
// command.
type Decider[S, C, E any] struct {
	// Initial returns the state of a stream with no events.
	Initial func() S
	// Decide returns the events a command causes, or why it is refused.
	Decide func(state S, cmd C) ([]E, error)
	// Evolve returns the state after one more event.
	Evolve func(state S, event E) S
	// SnapshotName, when set, allows handlers configured with
	// [HandlerConfig].SnapshotEvery to keep snapshots of S, as JSON, under
	// this name: unique per decider, since several deciders may fold one
	// stream ("inventory", "inventory-stats"). S must be plain data:
	// exported fields of strings, numbers, booleans, time.Time, and
	// structs, slices, arrays and maps of those; no pointers, interfaces,
	// channels or functions, whose sharing JSON cannot keep. A handler
	// refuses other states with [ErrInvalidConfig].
	SnapshotName string
	// SnapshotVersion is the version of S's snapshots. Raise it whenever
	// S's shape or Evolve's meaning changes: snapshots of another version
	// are ignored and rebuilt, so a change to the state never needs a
	// migration.
	SnapshotVersion int
}

// Fold returns the state after the given events.
func (d Decider[S, C, E]) Fold(events ...E) S {
	s := d.Initial()
	for _, e := range events {
		s = d.Evolve(s, e)
	}
	return s
}

// CommandHandler runs commands against event-sourced streams: it loads a
// stream, folds it with a [Decider], decides, and appends the new events
// with the loaded version as the expectation. When another writer got there
// first, it reloads and decides again, up to a bounded number of attempts.
//
// Handling is idempotent by command ID: the handler records the command ID
// as the causation ID of the events it appends and derives their event IDs
// from it, so a command handled again appends nothing and returns the
// outcome of its first handling.
//
// A CommandHandler is safe for concurrent use.
type CommandHandler[S, C, E any] struct {
	store    Store
	registry *Registry
	decider  Decider[S, C, E]
	cfg      HandlerConfig
	announce announcer[S, E]
	cfgErr   error        // an invalid configuration, returned by every Handle
	streams  *streamLocks // nil unless SerializePerStream
	snaps    *snapshotter // nil unless SnapshotEvery
}

// HandlerConfig configures a [CommandHandler]. The zero value is a working
// configuration: each field says its default.
type HandlerConfig struct {
	// MaxAttempts is how many times a command is decided before a
	// persisting concurrency conflict is returned (default 5). Between
	// attempts the handler waits a random time of up to 1ms, 2ms, 4ms ...
	// 32ms. A stream that many writers contend for (a concert's ticket
	// inventory in a flash sale) needs more attempts.
	MaxAttempts int
	// SerializePerStream makes the handler run the commands for one stream
	// one at a time within this process, while commands for different
	// streams still run in parallel. A stream that many requests contend
	// for then costs no retries inside one process; writers in other
	// processes are still kept apart by the expected version, and retried.
	SerializePerStream bool
	// Announce, when set, makes the handler publish integration messages
	// about what its commands did (see [Announce]). They are enqueued in
	// the same transaction as the events ([Outbox.AppendEnqueue]), so a
	// message goes out if and only if its events were stored. The store
	// must implement [Outbox].
	Announce Announcer
	// SnapshotEvery, when positive, makes the handler keep a snapshot of
	// each stream's state (see [Snapshot]): a load that folded at least
	// this many events after the latest snapshot saves a new one, and
	// loads start from the snapshot. The store must implement
	// [SnapshotStore], and the decider must have a SnapshotName
	// (deciders without one are folded in full). Snapshots never change a
	// result: a repeated command whose events lie before the snapshot is
	// still recognised, by the ID of its first event.
	SnapshotEvery int
}

// Announcer turns a command handler's decisions into integration messages.
// Make one with [Announce].
type Announcer interface {
	announcer() // sealed: only Announce makes Announcers
}

type announcer[S, E any] func(streamID string, state S, events []E) []Send

func (announcer[S, E]) announcer() {}

// Announce returns an [Announcer] for a [HandlerConfig]: after each
// decision, fn gets the stream, the new state and the new events, and
// returns the messages to send. Message IDs are derived from the command
// ID unless set; keys default to the stream ID. S and E must be the
// handler's state and event types.
func Announce[S, E any](fn func(streamID string, state S, events []E) []Send) Announcer {
	return announcer[S, E](fn)
}

// NewCommandHandler returns a handler for the streams that d decides.
// Events are encoded and decoded with reg. An invalid configuration is
// reported by every Handle, wrapping [ErrInvalidConfig].
func NewCommandHandler[S, C, E any](store Store, reg *Registry, d Decider[S, C, E], cfg HandlerConfig) *CommandHandler[S, C, E] {
	h := &CommandHandler[S, C, E]{store: store, registry: reg, decider: d, cfg: cfg}
	switch {
	case cfg.MaxAttempts < 0:
		h.cfgErr = fmt.Errorf("%w: command handler: MaxAttempts %d is negative", ErrInvalidConfig, cfg.MaxAttempts)
	case store == nil || reg == nil || d.Initial == nil || d.Decide == nil || d.Evolve == nil:
		h.cfgErr = fmt.Errorf("%w: command handler: the store, the registry and the decider's Initial, Decide and Evolve are required", ErrInvalidConfig)
	}
	h.cfg.MaxAttempts = cmp.Or(cfg.MaxAttempts, 5)
	if cfg.Announce != nil {
		a, ok := cfg.Announce.(announcer[S, E])
		if !ok {
			h.cfgErr = fmt.Errorf("%w: command handler: Announce takes %T, not a function of %v and %v",
				ErrInvalidConfig, cfg.Announce, reflect.TypeFor[S](), reflect.TypeFor[[]E]())
		}
		h.announce = a
	}
	if cfg.SerializePerStream {
		h.streams = &streamLocks{held: make(map[string]*streamLock)}
	}
	snaps, err := newSnapshotter(store, cfg.SnapshotEvery)
	if err == nil && snaps != nil {
		err = checkSnapshotState(d)
	}
	if err != nil && h.cfgErr == nil {
		h.cfgErr = fmt.Errorf("command handler: %w", err)
	}
	h.snaps = snaps
	return h
}

// Result is the outcome of a handled command.
type Result[S, E any] struct {
	// Events are the events the command appended (on a repeated command,
	// the events its first handling appended).
	Events []E
	// State is the stream's state after the command.
	State S
	// Version is the stream's version after the command (on a repeated
	// command, the version of its last event).
	Version int64
	// Position is the global position of the last event appended, 0 if none.
	Position int64
	// Repeated reports that the command ID had been handled before, so
	// nothing was appended this time.
	Repeated bool
}

// Load folds a stream into its state and returns the state and the
// stream's version.
func (h *CommandHandler[S, C, E]) Load(ctx context.Context, streamID string) (S, int64, error) {
	s, _, err := h.load(ctx, streamID, "")
	return s.state, s.version, err
}

type loaded[S, E any] struct {
	state    S
	version  int64
	previous Result[S, E] // the earlier outcome of the command, if Repeated
}

func (h *CommandHandler[S, C, E]) load(ctx context.Context, streamID, commandID string) (loaded[S, E], bool, error) {
	f, err := foldStream(ctx, h.store, h.registry, h.snaps, h.decider, streamID, commandID)
	l := loaded[S, E]{state: f.state, version: f.version,
		previous: Result[S, E]{Events: f.previous, Version: f.prevVersion, Position: f.prevPosition}}
	return l, len(f.previous) > 0, err
}

// Handle decides cmd against the stream streamID and appends the events it
// causes. commandID identifies the command (a UUID chosen by the sender,
// usually): a command handled twice with the same ID takes effect once.
// An empty commandID makes one up, and the command is not idempotent.
//
// Business rule violations come back as Decide returned them; a conflict
// that outlasts the handler's attempts wraps [ErrConcurrency].
func (h *CommandHandler[S, C, E]) Handle(ctx context.Context, commandID, streamID string, cmd C) (Result[S, E], error) {
	return h.handle(ctx, commandID, streamID, -1, cmd)
}

// HandleExpecting is [CommandHandler.Handle] for a client that saw the
// stream at version expected (an HTTP ETag, say) and wants cmd decided on
// exactly that state: when the stream is at another version, or moves on
// before the append, it returns a *[VersionConflictError] (errors.Is
// [ErrConcurrency]) and appends nothing, instead of deciding again on the
// newer state. A command already handled with commandID is a repeat, as
// for Handle, whatever the stream's version now.
func (h *CommandHandler[S, C, E]) HandleExpecting(ctx context.Context, commandID, streamID string, expected int64, cmd C) (Result[S, E], error) {
	if expected < 0 {
		return Result[S, E]{}, fmt.Errorf("%w: expected version %d is negative", ErrInvalidAppend, expected)
	}
	return h.handle(ctx, commandID, streamID, expected, cmd)
}

// handle runs cmd; expected, unless negative, is the only version of the
// stream the command may be decided on.
func (h *CommandHandler[S, C, E]) handle(ctx context.Context, commandID, streamID string, expected int64, cmd C) (Result[S, E], error) {
	if h.cfgErr != nil {
		return Result[S, E]{}, h.cfgErr
	}
	if commandID == "" {
		commandID = NewID()
	}
	if h.streams != nil {
		unlock, err := h.streams.lock(ctx, streamID)
		if err != nil {
			return Result[S, E]{}, err
		}
		defer unlock()
	}
	md := commandMetadata(ctx, commandID)

	var lastErr error
	for attempt := 0; attempt < h.cfg.MaxAttempts; attempt++ {
		l, seen, err := h.load(ctx, streamID, commandID)
		if err != nil {
			return Result[S, E]{}, err
		}
		if seen {
			r := l.previous
			r.State, r.Repeated = l.state, true
			return r, nil
		}
		if expected >= 0 && l.version != expected {
			return Result[S, E]{}, &VersionConflictError{StreamID: streamID, Expected: Exact(expected), Actual: l.version}
		}
		events, err := h.decider.Decide(l.state, cmd)
		if err != nil {
			return Result[S, E]{}, err
		}
		res := Result[S, E]{Events: events, State: l.state, Version: l.version}
		if len(events) == 0 {
			return res, nil
		}
		data := make([]EventData, len(events))
		for i, ev := range events {
			d, err := h.registry.Encode(ev)
			if err != nil {
				return Result[S, E]{}, fmt.Errorf("es: handle command on %q: %w", streamID, err)
			}
			d.ID = DeriveID(commandID, i)
			d.Metadata = md
			data[i] = d
			res.State = h.decider.Evolve(res.State, ev)
		}
		ar, err := h.append(ctx, streamID, l.version, data, res.State, events, commandID, md)
		if errors.Is(err, ErrDuplicateEventID) {
			// A concurrent handling of this command, which decided on a
			// later state, stored different events under the same IDs:
			// the command was handled, and its stored outcome is the answer.
			if l, seen, lerr := h.load(ctx, streamID, commandID); lerr == nil && seen {
				r := l.previous
				r.State, r.Repeated = l.state, true
				return r, nil
			}
			return Result[S, E]{}, err
		}
		if errors.Is(err, ErrConcurrency) {
			lastErr = err
			if !sleep(ctx, conflictBackoff(attempt)) {
				return Result[S, E]{}, ctx.Err()
			}
			continue
		}
		if err != nil {
			return Result[S, E]{}, err
		}
		// A concurrent handling of the same command may have stored these
		// very events first: then the store took this append as a repeat.
		res.Version, res.Position, res.Repeated = ar.Version, ar.Position, ar.Repeated
		return res, nil
	}
	return Result[S, E]{}, fmt.Errorf("es: command on %q gave up after %d attempts: %w", streamID, h.cfg.MaxAttempts, lastErr)
}

// commandMetadata is the metadata of the events a command causes: the
// context's, with the command as their causation and, unless the context
// says otherwise, their correlation.
func commandMetadata(ctx context.Context, commandID string) Metadata {
	md := MetadataFrom(ctx)
	md.CausationID = commandID
	if md.CorrelationID == "" {
		md.CorrelationID = commandID
	}
	return md
}

// conflictBackoff is how long a command waits after its attempt-th
// (0-based) concurrency conflict: a random time up to 1ms, 2ms, ... 32ms,
// so that writers that collided do not collide again in step.
func conflictBackoff(attempt int) time.Duration {
	return jitter(time.Millisecond << min(attempt, 5))
}

// append writes the decided events, and the messages Announce derives
// from them, expecting the stream at version.
func (h *CommandHandler[S, C, E]) append(ctx context.Context, streamID string, version int64, data []EventData,
	state S, events []E, commandID string, md Metadata) (AppendResult, error) {
	if h.announce == nil {
		return Append(ctx, h.store, streamID, Exact(version), data...)
	}
	outbox, ok := h.store.(Outbox)
	if !ok {
		return AppendResult{}, fmt.Errorf("es: handler for %q announces messages, but its store %T has no outbox", streamID, h.store)
	}
	var enq Enqueue
	for i, s := range h.announce(streamID, state, events) {
		m, err := NewMessage(h.registry, s.Key, s.Message)
		if err != nil {
			return AppendResult{}, fmt.Errorf("es: announce for %q: %w", streamID, err)
		}
		m.ID, m.DeliverAt, m.Metadata = s.ID, s.DeliverAt, md
		if m.ID == "" {
			m.ID = DeriveID(commandID+"/message", i)
		}
		if m.Key == "" {
			m.Key = streamID
		}
		enq.Messages = append(enq.Messages, m)
	}
	res, err := outbox.AppendEnqueue(ctx, enq, StreamAppend{StreamID: streamID, Expected: Exact(version), Events: data})
	if err != nil {
		return AppendResult{}, err
	}
	return res[0], nil
}

// streamLocks is a mutex per stream ID, created on demand and dropped when
// nobody holds or waits for it.
type streamLocks struct {
	mu   sync.Mutex
	held map[string]*streamLock
}

type streamLock struct {
	token chan struct{} // holds one value while the lock is held
	refs  int           // holders and waiters
}

func (l *streamLocks) lock(ctx context.Context, streamID string) (unlock func(), err error) {
	l.mu.Lock()
	e := l.held[streamID]
	if e == nil {
		e = &streamLock{token: make(chan struct{}, 1)}
		l.held[streamID] = e
	}
	e.refs++
	l.mu.Unlock()
	release := func() {
		l.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(l.held, streamID)
		}
		l.mu.Unlock()
	}
	select {
	case e.token <- struct{}{}:
		return func() { <-e.token; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}
