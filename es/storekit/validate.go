package storekit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"esgo.dev/es"
)

// CheckAppend validates an append request before a store writes anything:
// at least one stream; stream IDs valid ([CheckStreamID]) and not
// repeated; expectations that are versions or sentinels; event IDs valid
// UUIDs ([es.ValidID]) not repeated within the request; type names valid
// like stream IDs; schema versions at least 1; data a JSON object in valid
// UTF-8 whose strings hold no NUL and no unpaired surrogate; metadata in
// valid UTF-8 without NUL; at most [es.MaxEventsPerAppend] events. Errors
// wrap [es.ErrInvalidAppend]. Stores call it first, so that every store
// gives the same answer.
func CheckAppend(appends []es.StreamAppend) error {
	if len(appends) == 0 {
		return fmt.Errorf("%w: no streams", es.ErrInvalidAppend)
	}
	streams := make(map[string]bool, len(appends))
	ids := make(map[string]bool)
	total := 0
	for _, a := range appends {
		if err := CheckStreamID(a.StreamID); err != nil {
			return err
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
	if !es.ValidID(e.ID) {
		return fmt.Errorf("event ID %q is not a lower-case UUID", e.ID)
	}
	if err := checkName("type", e.Type); err != nil {
		return err
	}
	if e.SchemaVersion < 1 {
		return fmt.Errorf("type %s: schema version %d is below 1", e.Type, e.SchemaVersion)
	}
	if err := checkJSONObject(e.Data); err != nil {
		return fmt.Errorf("type %s: data %v", e.Type, err)
	}
	if err := checkMetadata(e.Metadata); err != nil {
		return fmt.Errorf("type %s: %v", e.Type, err)
	}
	return nil
}

// CheckStreamID validates a stream ID: valid UTF-8 without NUL, 1 to
// [es.MaxIDLength] bytes. Errors wrap [es.ErrInvalidAppend]. Stores call
// it through [CheckAppend]; a read of a stream ID that fails it can only
// find nothing.
func CheckStreamID(id string) error {
	if err := checkName("stream ID", id); err != nil {
		return fmt.Errorf("%w: %v", es.ErrInvalidAppend, err)
	}
	return nil
}

// checkName validates an identifier that stores index: a stream ID, a type
// name, a message key.
func checkName(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("empty %s", what)
	case len(s) > es.MaxIDLength:
		return fmt.Errorf("%s of %d bytes is longer than %d", what, len(s), es.MaxIDLength)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s %q is not valid UTF-8", what, s)
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("%s %q holds a NUL character", what, s)
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
		case m.SchemaVersion < 1:
			return fmt.Errorf("%w: message %s (%s): schema version %d is below 1", es.ErrInvalidAppend, m.ID, m.Type, m.SchemaVersion)
		}
		if err := checkName("type", m.Type); err != nil {
			return fmt.Errorf("%w: message %s: %v", es.ErrInvalidAppend, m.ID, err)
		}
		if m.Key != "" {
			if err := checkName("key", m.Key); err != nil {
				return fmt.Errorf("%w: message %s: %v", es.ErrInvalidAppend, m.ID, err)
			}
		}
		if err := checkJSONObject(m.Data); err != nil {
			return fmt.Errorf("%w: message %s (%s): data %v", es.ErrInvalidAppend, m.ID, m.Type, err)
		}
		if err := checkMetadata(m.Metadata); err != nil {
			return fmt.Errorf("%w: message %s: %v", es.ErrInvalidAppend, m.ID, err)
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

// checkJSONObject validates data that every store can keep: a JSON object,
// in valid UTF-8, whose strings hold neither NUL (\u0000) nor an unpaired
// surrogate escape (\ud800): encoding/json accepts both, PostgreSQL's
// jsonb refuses them, and the same event must be storable everywhere.
func checkJSONObject(b []byte) error {
	// JSON's own whitespace only: bytes.TrimSpace would also drop a form
	// feed, which no JSON parser accepts.
	t := bytes.TrimLeft(b, " \t\r\n")
	if len(t) == 0 || t[0] != '{' || !json.Valid(b) {
		return errors.New("is not a JSON object")
	}
	if !utf8.Valid(b) {
		return errors.New("is not valid UTF-8")
	}
	return checkEscapes(t)
}

// checkEscapes scans the \u escapes and the numbers of valid JSON text b.
func checkEscapes(b []byte) error {
	inString := false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case !inString && (c == '-' || c >= '0' && c <= '9'):
			j := i + 1
			for j < len(b) && strings.IndexByte("0123456789+-.eE", b[j]) >= 0 {
				j++
			}
			if err := checkNumber(b[i:j]); err != nil {
				return err
			}
			i = j - 1
		case c == '"':
			inString = !inString
		case c == '\\' && inString:
			if b[i+1] != 'u' {
				i++ // a one-character escape, maybe \"
				continue
			}
			r := hex4(b[i+2 : i+6])
			i += 5
			switch {
			case r == 0:
				return errors.New(`holds \u0000`)
			case r >= 0xdc00 && r <= 0xdfff:
				return errors.New("holds an unpaired low surrogate")
			case r >= 0xd800 && r <= 0xdbff:
				if i+6 >= len(b) || b[i+1] != '\\' || b[i+2] != 'u' {
					return errors.New("holds an unpaired high surrogate")
				}
				if lo := hex4(b[i+3 : i+7]); lo < 0xdc00 || lo > 0xdfff {
					return errors.New("holds an unpaired high surrogate")
				}
				i += 6
			}
		}
	}
	return nil
}

// The range of a number every store can keep: PostgreSQL's jsonb holds
// numbers as numeric, with at most 131072 digits before the decimal point
// and 16383 after it (trailing zeros written count), and an exponent
// below 2^30.
const (
	maxIntegerDigits = 131072
	maxScale         = 16383
	maxExponent      = 1<<30 - 1
)

// checkNumber checks that a JSON number token, which json.Valid has
// checked, is within the range every store can keep.
func checkNumber(tok []byte) error {
	if len(tok) <= maxScale && !bytes.ContainsAny(tok, "eE") {
		return nil // too short to break either limit
	}
	mant, exp := bytes.TrimPrefix(tok, []byte("-")), int64(0)
	if k := bytes.IndexAny(mant, "eE"); k >= 0 {
		e := mant[k+1:]
		mant = mant[:k]
		neg := e[0] == '-'
		if e[0] == '-' || e[0] == '+' {
			e = e[1:]
		}
		for _, c := range e {
			if exp = exp*10 + int64(c-'0'); exp >= maxExponent {
				return errors.New("holds a number whose exponent is out of range")
			}
		}
		if neg {
			exp = -exp
		}
	}
	intPart, frac := mant, []byte(nil)
	if k := bytes.IndexByte(mant, '.'); k >= 0 {
		intPart, frac = mant[:k], mant[k+1:]
	}
	if int64(len(frac))-exp > maxScale {
		return fmt.Errorf("holds a number with more than %d digits after the decimal point", maxScale)
	}
	// The most significant digit's power of ten, for a number that is not 0.
	if t := bytes.TrimLeft(intPart, "0"); len(t) > 0 {
		if int64(len(t))+exp > maxIntegerDigits {
			return fmt.Errorf("holds a number with more than %d digits before the decimal point", maxIntegerDigits)
		}
	} else if i := bytes.IndexFunc(frac, func(r rune) bool { return r != '0' }); i >= 0 && exp-int64(i) > maxIntegerDigits {
		return fmt.Errorf("holds a number with more than %d digits before the decimal point", maxIntegerDigits)
	}
	return nil
}

// hex4 decodes four hexadecimal digits, which json.Valid has checked.
func hex4(h []byte) rune {
	var r rune
	for _, c := range h {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		default:
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}

// checkMetadata requires valid UTF-8 without NUL in every string.
func checkMetadata(md es.Metadata) error {
	bad := func(s string) bool { return !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 }
	if bad(md.CorrelationID) || bad(md.CausationID) || bad(md.TraceParent) {
		return errors.New("metadata holds invalid UTF-8 or a NUL character")
	}
	for k, v := range md.Extra {
		if bad(k) || bad(v) {
			return errors.New("metadata holds invalid UTF-8 or a NUL character")
		}
	}
	return nil
}

// CheckSnapshot validates an [es.SnapshotStore] SaveSnapshot request: a
// valid stream ID and name, a version of at least 1 and data that is valid
// JSON in valid UTF-8. Errors wrap [es.ErrInvalidAppend].
func CheckSnapshot(s es.Snapshot) error {
	err := checkName("stream ID", s.StreamID)
	if err == nil {
		err = checkName("snapshot name", s.Name)
	}
	switch {
	case err != nil:
	case s.Version < 1:
		err = fmt.Errorf("snapshot version %d is below 1", s.Version)
	case !json.Valid(s.Data) || !utf8.Valid(s.Data):
		err = errors.New("snapshot data is not valid JSON in UTF-8")
	}
	if err != nil {
		return fmt.Errorf("%w: %v", es.ErrInvalidAppend, err)
	}
	return nil
}

// CheckName validates the name of a checkpoint, or an inbox's consumer
// or message ID: valid UTF-8 without NUL, 1 to [es.MaxIDLength] bytes,
// which every store can keep. what says what the name is, for the error,
// which wraps [es.ErrInvalidConfig].
func CheckName(what, name string) error {
	if err := checkName(what, name); err != nil {
		return fmt.Errorf("%w: %v", es.ErrInvalidConfig, err)
	}
	return nil
}
