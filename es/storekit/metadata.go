package storekit

import (
	"encoding/json"

	"esgo.dev/es"
)

// DecodeMetadata decodes the JSON of an event's metadata into m, as
// [encoding/json.Unmarshal] would, and faster in the common case: a flat
// object of the fields of [es.Metadata], holding printable ASCII strings
// without escapes (what json.Marshal writes for IDs and traceparents, with
// or without the spaces PostgreSQL's jsonb puts in its text). Anything
// else (escapes, other bytes, unknown keys, nulls) is handed to
// json.Unmarshal, so the result never differs. Stores call it once per
// event read.
func DecodeMetadata(data []byte, m *es.Metadata) error {
	var fast es.Metadata
	if decodeMetadataFast(data, &fast) {
		*m = fast
		return nil
	}
	*m = es.Metadata{}
	return json.Unmarshal(data, m)
}

// decodeMetadataFast decodes data into m and reports true, or reports
// false when data is not of the simple shape DecodeMetadata describes.
func decodeMetadataFast(data []byte, m *es.Metadata) bool {
	d := metaDecoder{b: data}
	if !d.byte('{') {
		return false
	}
	if d.byte('}') {
		return d.end()
	}
	for {
		key, ok := d.str()
		if !ok || !d.byte(':') {
			return false
		}
		switch key {
		case "correlation_id", "causation_id", "traceparent":
			v, ok := d.str()
			if !ok {
				return false
			}
			switch key {
			case "correlation_id":
				m.CorrelationID = v
			case "causation_id":
				m.CausationID = v
			default:
				m.TraceParent = v
			}
		case "extra":
			if !d.byte('{') {
				return false
			}
			if m.Extra == nil {
				m.Extra = map[string]string{}
			}
			if !d.byte('}') {
				for {
					k, ok := d.str()
					if !ok || !d.byte(':') {
						return false
					}
					v, ok := d.str()
					if !ok {
						return false
					}
					m.Extra[k] = v
					if d.byte('}') {
						break
					}
					if !d.byte(',') {
						return false
					}
				}
			}
		default:
			return false
		}
		if d.byte('}') {
			return d.end()
		}
		if !d.byte(',') {
			return false
		}
	}
}

// metaDecoder reads the simple JSON of decodeMetadataFast.
type metaDecoder struct {
	b []byte
	i int
}

func (d *metaDecoder) skipSpace() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// byte consumes c, after white space, if it comes next.
func (d *metaDecoder) byte(c byte) bool {
	d.skipSpace()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// str reads a string of printable ASCII without escapes.
func (d *metaDecoder) str() (string, bool) {
	if !d.byte('"') {
		return "", false
	}
	start := d.i
	for d.i < len(d.b) {
		switch c := d.b[d.i]; {
		case c == '"':
			s := string(d.b[start:d.i])
			d.i++
			return s, true
		case c == '\\' || c < 0x20 || c >= 0x7f:
			return "", false
		}
		d.i++
	}
	return "", false
}

// end reports whether only white space is left.
func (d *metaDecoder) end() bool {
	d.skipSpace()
	return d.i == len(d.b)
}
