package storekit

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"esgo.dev/es"
)

// SamePayload reports whether a stored event is the same event as one
// proposed again under its ID: same stream, type, schema version and data.
// Data is compared as JSON values, so that key order and spacing (which
// some databases normalise) do not matter, and numbers as exact decimal
// values, so that their form does not matter either (PostgreSQL's jsonb
// gives 1E2 back as 100) but their precision does: 9007199254740993 is
// not 9007199254740992, though a float64 cannot tell them apart.
// Metadata is not compared.
func SamePayload(stored es.Event, streamID string, proposed es.EventData) bool {
	if stored.StreamID != streamID || stored.Type != proposed.Type || stored.SchemaVersion != proposed.SchemaVersion {
		return false
	}
	return bytes.Equal(stored.Data, proposed.Data) || sameJSON(stored.Data, proposed.Data)
}

// MatchStored decides what an append whose event IDs may already be stored
// amounts to. stored maps each of the request's event IDs that the store
// already holds to the stored event. It returns:
//
//   - replay false and no error when none of the IDs is stored: append as usual;
//   - replay true with the original results, marked Repeated, when every ID
//     is stored as the same event in the same stream ([SamePayload]): the
//     append is a no-op. For a StreamAppend without events, Version is
//     taken from current;
//   - an error wrapping [es.ErrDuplicateEventID] otherwise.
//
// Stores call it inside their write transaction, after reading stored and
// before checking expectations: a repeat succeeds whatever its
// expectations say, which is what makes a retried append safe.
func MatchStored(appends []es.StreamAppend, stored map[string]es.Event, current func(streamID string) int64) (results []es.AppendResult, replay bool, err error) {
	if len(stored) == 0 {
		return nil, false, nil
	}
	results = make([]es.AppendResult, len(appends))
	for i, a := range appends {
		results[i].StreamID, results[i].Repeated = a.StreamID, true
		if len(a.Events) == 0 {
			results[i].Version = current(a.StreamID)
		}
		for _, e := range a.Events {
			s, ok := stored[e.ID]
			if !ok {
				return nil, false, fmt.Errorf("%w: event %s is stored but event %s of the same append is not",
					es.ErrDuplicateEventID, firstKey(stored), e.ID)
			}
			if !SamePayload(s, a.StreamID, e) {
				return nil, false, fmt.Errorf("%w: event %s is stored in stream %q as %s v%d",
					es.ErrDuplicateEventID, e.ID, s.StreamID, s.Type, s.SchemaVersion)
			}
			results[i].Version = max(results[i].Version, s.Version)
			results[i].Position = max(results[i].Position, s.Position)
		}
	}
	return results, true, nil
}

// firstKey returns the smallest key of m, so that error messages do not
// vary from run to run.
func firstKey(m map[string]es.Event) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return slices.Min(keys)
}

// MatchesQuery reports whether e passes q's category and type filters
// (q.After and q.Limit are not considered). Stores that filter in Go
// rather than in their query language use it.
func MatchesQuery(q es.AllQuery, e es.Event) bool {
	if len(q.Categories) > 0 && !slices.Contains(q.Categories, es.Category(e.StreamID)) {
		return false
	}
	return len(q.Types) == 0 || slices.Contains(q.Types, e.Type)
}

// PruneQuery drops from q's category and type filters the values that no
// stored event can have: text in invalid UTF-8 or holding a NUL, which
// [CheckAppend] refuses in stream IDs and type names. ok is false when a
// filter that was set has no value left: the read matches nothing and
// need not run. Stores call it before querying, so that such a filter
// finds nothing everywhere instead of failing where the database refuses
// the text (PostgreSQL).
func PruneQuery(q es.AllQuery) (_ es.AllQuery, ok bool) {
	prune := func(values []string) ([]string, bool) {
		if !slices.ContainsFunc(values, unstorable) {
			return values, true
		}
		kept := slices.DeleteFunc(slices.Clone(values), unstorable)
		return kept, len(kept) > 0
	}
	var okC, okT bool
	q.Categories, okC = prune(q.Categories)
	q.Types, okT = prune(q.Types)
	return q, okC && okT
}

// unstorable reports whether no stored stream ID or type name can hold s.
func unstorable(s string) bool {
	return !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0
}
