package es

import (
	"encoding/json"
	"strings"
	"time"
)

// Event is an event as a store holds it.
type Event struct {
	// ID identifies the event across all streams (a UUID). Appending an
	// event whose ID is already stored is idempotent; see [Store].
	ID string
	// StreamID names the stream the event belongs to, e.g. "cart-42":
	// valid UTF-8 without NUL, 1 to [MaxIDLength] bytes.
	StreamID string
	// Version is the event's 1-based position within its stream. Versions
	// within a stream have no gaps.
	Version int64
	// Position is the event's position in the store's global order. It
	// grows with every event but may have gaps.
	Position int64
	// Type is the stored type name (see [Registry]).
	Type string
	// SchemaVersion is the version of Data's shape, starting at 1.
	SchemaVersion int
	// Data is the event's JSON payload as stored (not upcast).
	Data json.RawMessage
	// Metadata carries correlation, causation and free key/values.
	Metadata Metadata
	// RecordedAt is when the store recorded the event (UTC).
	RecordedAt time.Time
}

// EventData is an event to append. The store assigns its stream version,
// global position and recording time.
type EventData struct {
	// ID must be a UUID (see [NewID]). Callers that may retry an append
	// should keep the same ID so that the retry is recognised.
	ID string
	// Type is the stored type name: valid UTF-8 without NUL, 1 to
	// [MaxIDLength] bytes.
	Type string
	// SchemaVersion is the version of Data's shape, at least 1.
	SchemaVersion int
	// Data is a JSON object in valid UTF-8. Strings may not hold NUL
	// (\u0000) or unpaired surrogates (\ud800), and numbers must fit
	// PostgreSQL's numeric (at most 131072 digits before the decimal
	// point and 16383 after it, exponents below 2^30), which is what
	// every database can store.
	Data json.RawMessage
	// Metadata's strings must be valid UTF-8 without NUL.
	Metadata Metadata
}

// Metadata travels with an event. CorrelationID ties together everything
// that one request caused; CausationID names the message (command or event)
// that directly caused this one.
type Metadata struct {
	CorrelationID string `json:"correlation_id,omitempty"`
	CausationID   string `json:"causation_id,omitempty"`
	// TraceParent is a W3C traceparent header value, when the caller has one.
	TraceParent string `json:"traceparent,omitempty"`
	// Extra holds application key/values.
	Extra map[string]string `json:"extra,omitempty"`
}

// IsZero reports whether m holds nothing.
func (m Metadata) IsZero() bool {
	return m.CorrelationID == "" && m.CausationID == "" && m.TraceParent == "" && len(m.Extra) == 0
}

// Category returns the category of a stream: the part of its ID before the
// first '-', or the whole ID if it has none. "cart-42" is in category "cart".
func Category(streamID string) string {
	if i := strings.IndexByte(streamID, '-'); i >= 0 {
		return streamID[:i]
	}
	return streamID
}
