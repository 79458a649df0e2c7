package es

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"reflect"
	"slices"
	"strings"
)

// Store is an event store. Implementations are safe for concurrent use.
//
// Append writes events to one or more streams atomically: either every
// stream's expectation holds and all events are written, or nothing is.
// An append whose event IDs are all already stored, each in the same stream
// with the same type, schema version and data, is a successful no-op that
// returns the original results whatever its expectations: that is what
// makes a retried append safe. Reusing a stored ID for anything else fails
// with [ErrDuplicateEventID].
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
	Types []string
	// Limit caps the number of events yielded; 0 means no limit.
	Limit int
}

// Matches reports whether e passes q's category and type filters.
func (q AllQuery) Matches(e Event) bool {
	if len(q.Categories) > 0 && !slices.Contains(q.Categories, Category(e.StreamID)) {
		return false
	}
	return len(q.Types) == 0 || slices.Contains(q.Types, e.Type)
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

// MaxEventsPerAppend caps the number of events in one Append call, across
// all its streams, so that one request cannot hold a store's write lock for
// unbounded time.
const MaxEventsPerAppend = 10_000

// CheckAppend validates an append request before a store writes anything:
// at least one stream; stream IDs not empty and not repeated; event IDs valid
// UUIDs ([ValidID]) not repeated within the request; type names not empty;
// schema versions at least 1; data a JSON object; at most
// [MaxEventsPerAppend] events. Errors wrap [ErrInvalidAppend]. Stores call it
// first.
func CheckAppend(appends []StreamAppend) error {
	if len(appends) == 0 {
		return fmt.Errorf("%w: no streams", ErrInvalidAppend)
	}
	streams := make(map[string]bool, len(appends))
	ids := make(map[string]bool)
	total := 0
	for _, a := range appends {
		if a.StreamID == "" {
			return fmt.Errorf("%w: empty stream ID", ErrInvalidAppend)
		}
		if streams[a.StreamID] {
			return fmt.Errorf("%w: stream %q appears twice", ErrInvalidAppend, a.StreamID)
		}
		streams[a.StreamID] = true
		if a.Expected < 0 && a.Expected != AnyVersion && a.Expected != StreamExists {
			return fmt.Errorf("%w: stream %q: %s", ErrInvalidAppend, a.StreamID, a.Expected)
		}
		total += len(a.Events)
		if total > MaxEventsPerAppend {
			return fmt.Errorf("%w: more than %d events", ErrInvalidAppend, MaxEventsPerAppend)
		}
		for i, e := range a.Events {
			if err := checkEventData(e); err != nil {
				return fmt.Errorf("%w: stream %q, event %d: %v", ErrInvalidAppend, a.StreamID, i, err)
			}
			if ids[e.ID] {
				return fmt.Errorf("%w: event ID %s appears twice", ErrInvalidAppend, e.ID)
			}
			ids[e.ID] = true
		}
	}
	return nil
}

func checkEventData(e EventData) error {
	switch {
	case !ValidID(e.ID):
		return fmt.Errorf("event ID %q is not a lower-case UUID", e.ID)
	case e.Type == "":
		return fmt.Errorf("empty type")
	case e.SchemaVersion < 1:
		return fmt.Errorf("type %s: schema version %d is below 1", e.Type, e.SchemaVersion)
	case !isJSONObject(e.Data):
		return fmt.Errorf("type %s: data is not a JSON object", e.Type)
	case hasNULEscape(e.Data):
		return fmt.Errorf(`type %s: data holds \u0000, which PostgreSQL's jsonb cannot store`, e.Type)
	case metadataHasNUL(e.Metadata):
		return fmt.Errorf("type %s: metadata holds a NUL character", e.Type)
	}
	return nil
}

// hasNULEscape reports whether JSON text b holds the escape \u0000 (a NUL
// character in a string). Not every store can keep one, so no store takes
// it: the same event must be storable everywhere.
func hasNULEscape(b []byte) bool {
	for i := 0; ; {
		j := bytes.Index(b[i:], []byte(`u0000`))
		if j < 0 {
			return false
		}
		j += i
		// It is an escape if an odd number of backslashes precede it.
		n := 0
		for k := j - 1; k >= 0 && b[k] == '\\'; k-- {
			n++
		}
		if n%2 == 1 {
			return true
		}
		i = j + 1
	}
}

func metadataHasNUL(md Metadata) bool {
	has := func(s string) bool { return strings.IndexByte(s, 0) >= 0 }
	if has(md.CorrelationID) || has(md.CausationID) || has(md.TraceParent) {
		return true
	}
	for k, v := range md.Extra {
		if has(k) || has(v) {
			return true
		}
	}
	return false
}

func isJSONObject(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{' && json.Valid(b)
}

// SamePayload reports whether a stored event is the same event as one
// proposed again under its ID: same stream, type, schema version and data.
// Data is compared as JSON values, so that key order and spacing (which
// some databases normalise) do not matter. Metadata is not compared. Stores
// use it for idempotent appends.
func SamePayload(stored Event, streamID string, proposed EventData) bool {
	if stored.StreamID != streamID || stored.Type != proposed.Type || stored.SchemaVersion != proposed.SchemaVersion {
		return false
	}
	if bytes.Equal(stored.Data, proposed.Data) {
		return true
	}
	var a, b any
	if json.Unmarshal(stored.Data, &a) != nil || json.Unmarshal(proposed.Data, &b) != nil {
		return false
	}
	return reflect.DeepEqual(a, b)
}

// MatchStored decides what an append whose event IDs may already be stored
// amounts to. stored maps each of the request's event IDs that the store
// already holds to the stored event. It returns:
//
//   - replay false and no error when none of the IDs is stored: append as usual;
//   - replay true with the original results when every ID is stored as the
//     same event in the same stream ([SamePayload]): the append is a no-op.
//     For a StreamAppend without events, Version is taken from current;
//   - an error wrapping [ErrDuplicateEventID] otherwise.
//
// Stores call it inside their write transaction, after reading stored.
func MatchStored(appends []StreamAppend, stored map[string]Event, current func(streamID string) int64) (results []AppendResult, replay bool, err error) {
	if len(stored) == 0 {
		return nil, false, nil
	}
	results = make([]AppendResult, len(appends))
	for i, a := range appends {
		results[i].StreamID, results[i].Repeated = a.StreamID, true
		if len(a.Events) == 0 {
			results[i].Version = current(a.StreamID)
		}
		for _, e := range a.Events {
			s, ok := stored[e.ID]
			if !ok {
				return nil, false, fmt.Errorf("%w: event %s is stored but event %s of the same append is not",
					ErrDuplicateEventID, anyKey(stored), e.ID)
			}
			if !SamePayload(s, a.StreamID, e) {
				return nil, false, fmt.Errorf("%w: event %s is stored in stream %q as %s v%d",
					ErrDuplicateEventID, e.ID, s.StreamID, s.Type, s.SchemaVersion)
			}
			results[i].Version = max(results[i].Version, s.Version)
			results[i].Position = max(results[i].Position, s.Position)
		}
	}
	return results, true, nil
}

func anyKey(m map[string]Event) string {
	for k := range m {
		return k
	}
	return ""
}

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
// their last event. Subscriptions use it to report their lag.
type HeadReader interface {
	Head(ctx context.Context) (int64, error)
}
