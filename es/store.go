package es

import (
	"context"
	"iter"
)

// Store is an event store. Implementations are safe for concurrent use.
//
// Append writes events to one or more streams atomically: either every
// stream's expectation holds and all events are written, or nothing is.
// An append whose event IDs are all already stored, each in the same stream
// with the same type, schema version and data, is a successful no-op that
// returns the original results whatever its expectations: that is what
// makes a retried append safe. Data are the same when they are the same
// JSON value, whatever the key order, spacing or form of numbers; numbers
// are compared as exact decimals (1E2 is 100, 2^53+1 is not 2^53). Reusing
// a stored ID for anything else fails with [ErrDuplicateEventID].
//
// Reads are iterators: events are fetched as the caller ranges over them,
// so a long stream never has to fit in memory. An iterator yields at most
// one non-nil error, as its last element.
type Store interface {
	// Append writes each StreamAppend's events to its stream, in one
	// transaction, and returns one result per StreamAppend, in order.
	// A StreamAppend with no events only checks its expectation.
	Append(ctx context.Context, appends ...StreamAppend) ([]AppendResult, error)
	// ReadStream yields a stream's events in version order (or reverse
	// order when q.Backward is set). A stream with no events yields nothing.
	ReadStream(ctx context.Context, streamID string, q StreamQuery) iter.Seq2[Event, error]
	// ReadAll yields events of all streams in global position order.
	ReadAll(ctx context.Context, q AllQuery) iter.Seq2[Event, error]
}

// StreamAppend is the part of an append that goes to one stream.
type StreamAppend struct {
	StreamID string
	Expected ExpectedVersion
	Events   []EventData
}

// AppendResult tells where a StreamAppend's events landed.
type AppendResult struct {
	StreamID string
	// Version is the stream's version after the append: the version of its
	// last event.
	Version int64
	// Position is the global position of the last event appended, or 0 if
	// the StreamAppend had no events.
	Position int64
	// Repeated reports that the append was a repeat of one already stored
	// (all its event IDs were), so that this call wrote nothing.
	Repeated bool
}

// StreamQuery selects events of one stream.
type StreamQuery struct {
	// From is the first version to yield. Reading forward, 0 and 1 both
	// mean the start. Reading backward, 0 means the last event.
	From int64
	// Backward yields events from newest to oldest.
	Backward bool
	// Limit caps the number of events yielded; 0 means no limit.
	Limit int
}

// AllQuery selects events in global order.
type AllQuery struct {
	// After yields only events with a position greater than After: pass
	// the position of the last event handled.
	After int64
	// Categories, when not empty, keeps only events whose stream is in one
	// of these categories (see [Category]).
	Categories []string
	// Types, when not empty, keeps only events of these stored type names.
	//
	// A category or type in invalid UTF-8 or holding a NUL matches no
	// event (no append can store one); a filter with only such values
	// keeps nothing.
	Types []string
	// Limit caps the number of events yielded; 0 means no limit.
	Limit int
}

// Append appends events to one stream. It is shorthand for a Store.Append
// with a single StreamAppend.
func Append(ctx context.Context, s Store, streamID string, expected ExpectedVersion, events ...EventData) (AppendResult, error) {
	res, err := s.Append(ctx, StreamAppend{StreamID: streamID, Expected: expected, Events: events})
	if err != nil {
		return AppendResult{}, err
	}
	return res[0], nil
}

// Collect gathers an iterator's events into a slice, stopping at the first
// error. It is meant for short reads and tests; range over long ones.
func Collect(seq iter.Seq2[Event, error]) ([]Event, error) {
	var out []Event
	for e, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
	return out, nil
}

// Limits of an append, the same on every store, so that an event one store
// accepts every store accepts. A request beyond them fails with
// [ErrInvalidAppend] and writes nothing.
const (
	// MaxEventsPerAppend caps the number of events in one Append call,
	// across all its streams, so that one request cannot hold a store's
	// write lock for unbounded time.
	MaxEventsPerAppend = 10_000
	// MaxIDLength caps, in bytes, a stream ID, a stored type name and a
	// message key: they are indexed, and database indexes bound the size
	// of a key.
	MaxIDLength = 256
)

// Notifier is implemented by stores that can signal appends, so that
// readers following the global order need not poll. PostgreSQL uses
// LISTEN/NOTIFY and hears appends from every process; SQLite signals its
// own appends at once and hears other processes' by polling; memory hears
// its own.
type Notifier interface {
	// Notify returns a channel that receives a value after events have been
	// appended. Signals are coalesced: one value may stand for many appends,
	// and a reader should read until it catches up before waiting again.
	// The channel is closed when ctx is done.
	Notify(ctx context.Context) <-chan struct{}
}

// HeadReader is implemented by stores that can tell the global position of
// their last event. Subscriptions use it to report their lag and to tell
// when they have caught up ([Subscription.WaitFor]).
type HeadReader interface {
	// Head returns the highest position that ReadAll yields now (0 for an
	// empty store): a ReadAll that starts after Head returns yields every
	// event up to it.
	Head(ctx context.Context) (int64, error)
}
