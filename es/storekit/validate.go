package storekit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"esgo.dev/es"
)

// CheckAppend validates an append request before a store writes anything:
// at least one stream; stream IDs not empty and not repeated; expectations
// that are versions or sentinels; event IDs valid UUIDs ([es.ValidID]) not
// repeated within the request; type names not empty; schema versions at
// least 1; data a JSON object without \u0000; metadata without NUL; at
// most [es.MaxEventsPerAppend] events. Errors wrap [es.ErrInvalidAppend].
// Stores call it first, so that every store gives the same answer.
func CheckAppend(appends []es.StreamAppend) error {
	if len(appends) == 0 {
		return fmt.Errorf("%w: no streams", es.ErrInvalidAppend)
	}
	streams := make(map[string]bool, len(appends))
	ids := make(map[string]bool)
	total := 0
	for _, a := range appends {
		if a.StreamID == "" {
			return fmt.Errorf("%w: empty stream ID", es.ErrInvalidAppend)
		}
		if streams[a.StreamID] {
			return fmt.Errorf("%w: stream %q appears twice", es.ErrInvalidAppend, a.StreamID)
		}
		streams[a.StreamID] = true
		if a.Expected < 0 && a.Expected != es.AnyVersion && a.Expected != es.StreamExists {
			return fmt.Errorf("%w: stream %q: %s", es.ErrInvalidAppend, a.StreamID, a.Expected)
		}
		total += len(a.Events)
		if total > es.MaxEventsPerAppend {
			return fmt.Errorf("%w: more than %d events", es.ErrInvalidAppend, es.MaxEventsPerAppend)
		}
		for i, e := range a.Events {
			if err := checkEventData(e); err != nil {
				return fmt.Errorf("%w: stream %q, event %d: %v", es.ErrInvalidAppend, a.StreamID, i, err)
			}
			if ids[e.ID] {
				return fmt.Errorf("%w: event ID %s appears twice", es.ErrInvalidAppend, e.ID)
			}
			ids[e.ID] = true
		}
	}
	return nil
}

func checkEventData(e es.EventData) error {
	switch {
	case !es.ValidID(e.ID):
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

// CheckAppendEnqueue validates an [es.Outbox] AppendEnqueue request: the
// appends as [CheckAppend] does, except that there may be none when enq
// has messages or cancellations, and enq as [CheckEnqueue] does.
func CheckAppendEnqueue(enq es.Enqueue, appends []es.StreamAppend) error {
	if len(appends) > 0 || len(enq.Messages)+len(enq.Cancel) == 0 {
		if err := CheckAppend(appends); err != nil {
			return err
		}
	}
	return CheckEnqueue(enq)
}

// CheckEnqueue validates the messages of an append: IDs are UUIDs and not
// repeated, types are not empty, schema versions at least 1, data are JSON
// objects (without \u0000), metadata hold no NUL; cancelled IDs are UUIDs.
// Errors wrap [es.ErrInvalidAppend].
func CheckEnqueue(enq es.Enqueue) error {
	ids := make(map[string]bool, len(enq.Messages))
	for i, m := range enq.Messages {
		switch {
		case !es.ValidID(m.ID):
			return fmt.Errorf("%w: message %d: ID %q is not a lower-case UUID", es.ErrInvalidAppend, i, m.ID)
		case ids[m.ID]:
			return fmt.Errorf("%w: message ID %s appears twice", es.ErrInvalidAppend, m.ID)
		case m.Type == "":
			return fmt.Errorf("%w: message %s: empty type", es.ErrInvalidAppend, m.ID)
		case m.SchemaVersion < 1:
			return fmt.Errorf("%w: message %s (%s): schema version %d is below 1", es.ErrInvalidAppend, m.ID, m.Type, m.SchemaVersion)
		case !isJSONObject(m.Data) || hasNULEscape(m.Data):
			return fmt.Errorf("%w: message %s (%s): data is not a storable JSON object", es.ErrInvalidAppend, m.ID, m.Type)
		case metadataHasNUL(m.Metadata):
			return fmt.Errorf("%w: message %s: metadata holds a NUL character", es.ErrInvalidAppend, m.ID)
		}
		ids[m.ID] = true
	}
	for _, id := range enq.Cancel {
		if !es.ValidID(id) {
			return fmt.Errorf("%w: cancel: ID %q is not a lower-case UUID", es.ErrInvalidAppend, id)
		}
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

func metadataHasNUL(md es.Metadata) bool {
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
