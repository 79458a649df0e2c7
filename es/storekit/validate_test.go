package storekit_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"esgo.dev/es"
	"esgo.dev/es/storekit"
)

func TestCheckAppendRefusesNULButNotAnEscapedBackslash(t *testing.T) {
	for data, ok := range map[string]bool{
		`{"a":"x\u0000"}`:     false,
		`{"a":"\\\u0000"}`:    false, // an escaped backslash, then the NUL escape
		`{"a":"\\u0000"}`:     true,  // the text \u0000, not a NUL
		`{"u0000":1}`:         true,
		`{"a":"\u00001"}`:     false,
		`{"a":"plain u0000"}`: true,
	} {
		err := storekit.CheckAppend([]es.StreamAppend{{StreamID: "s-1", Expected: es.AnyVersion,
			Events: []es.EventData{{ID: es.NewID(), Type: "T", SchemaVersion: 1, Data: []byte(data)}}}})
		if (err == nil) != ok || (err != nil && !errors.Is(err, es.ErrInvalidAppend)) {
			t.Errorf("CheckAppend(%s) = %v, want ok=%v", data, err, ok)
		}
	}
}

func TestCheckAppendRefusesWhatSomeStoreCannotKeep(t *testing.T) {
	long := strings.Repeat("x", es.MaxIDLength+1)
	ok := func() es.EventData {
		return es.EventData{ID: es.NewID(), Type: "T", SchemaVersion: 1, Data: []byte(`{"a":"b"}`)}
	}
	with := func(f func(*es.EventData)) es.EventData { e := ok(); f(&e); return e }
	cases := map[string]es.StreamAppend{
		"NUL in stream ID":          {StreamID: "s-\x00", Events: []es.EventData{ok()}},
		"invalid UTF-8 stream ID":   {StreamID: "s-\xff", Events: []es.EventData{ok()}},
		"long stream ID":            {StreamID: long, Events: []es.EventData{ok()}},
		"NUL in type":               {StreamID: "s-1", Events: []es.EventData{with(func(e *es.EventData) { e.Type = "T\x00" })}},
		"invalid UTF-8 type":        {StreamID: "s-1", Events: []es.EventData{with(func(e *es.EventData) { e.Type = "T\xc3" })}},
		"long type":                 {StreamID: "s-1", Events: []es.EventData{with(func(e *es.EventData) { e.Type = long })}},
		"invalid UTF-8 in data":     {StreamID: "s-1", Events: []es.EventData{with(func(e *es.EventData) { e.Data = []byte("{\"a\":\"\xff\"}") })}},
		"lone low surrogate":        {StreamID: "s-1", Events: []es.EventData{with(func(e *es.EventData) { e.Data = []byte(`{"a":"\udc00"}`) })}},
		"lone high surrogate":       {StreamID: "s-1", Events: []es.EventData{with(func(e *es.EventData) { e.Data = []byte(`{"a":"\ud800x"}`) })}},
		"high surrogate at the end": {StreamID: "s-1", Events: []es.EventData{with(func(e *es.EventData) { e.Data = []byte(`{"a":"\ud800"}`) })}},
		"invalid UTF-8 metadata":    {StreamID: "s-1", Events: []es.EventData{with(func(e *es.EventData) { e.Metadata.CorrelationID = "\xfe" })}},
	}
	for name, a := range cases {
		if err := storekit.CheckAppend([]es.StreamAppend{a}); !errors.Is(err, es.ErrInvalidAppend) {
			t.Errorf("%s: got %v, want ErrInvalidAppend", name, err)
		}
	}
	fine := []es.StreamAppend{
		{StreamID: strings.Repeat("é", es.MaxIDLength/2), Events: []es.EventData{ok()}},
		{StreamID: "s-2", Events: []es.EventData{with(func(e *es.EventData) { e.Data = []byte(`{"a":"\ud83d\ude00 ż \\ud800"}`) })}},
	}
	if err := storekit.CheckAppend(fine); err != nil {
		t.Fatalf("refused a storable append: %v", err)
	}
}

// FuzzCheckAppend feeds arbitrary stream IDs, type names and data to the
// validation: it must never panic, and what it accepts must be what every
// store can keep.
func FuzzCheckAppend(f *testing.F) {
	f.Add("cart-1", "T", []byte(`{"a":"b"}`))
	f.Add("s-\x00", "T", []byte(`{"a":"\u0000"}`))
	f.Add("s", "T", []byte(`{"a":"\ud800\udc00"}`))
	f.Add("s", "T", []byte(`{"a":"\\\ud800"}`))
	f.Fuzz(func(t *testing.T, stream, typ string, data []byte) {
		err := storekit.CheckAppend([]es.StreamAppend{{StreamID: stream, Expected: es.AnyVersion,
			Events: []es.EventData{{ID: es.NewID(), Type: typ, SchemaVersion: 1, Data: data}}}})
		if err != nil {
			if !errors.Is(err, es.ErrInvalidAppend) {
				t.Fatalf("error %v does not wrap ErrInvalidAppend", err)
			}
			return
		}
		if !utf8.ValidString(stream) || !utf8.ValidString(typ) || !utf8.Valid(data) ||
			strings.ContainsRune(stream, 0) || strings.ContainsRune(typ, 0) ||
			len(stream) == 0 || len(stream) > es.MaxIDLength || len(typ) == 0 || len(typ) > es.MaxIDLength {
			t.Fatalf("accepted stream %q, type %q, data %q", stream, typ, data)
		}
		var v map[string]any
		if json.Unmarshal(data, &v) != nil {
			t.Fatalf("accepted data that is not a JSON object: %q", data)
		}
		// What was accepted survives a round trip through Go strings
		// unchanged in meaning: no NUL, no replacement character that the
		// input did not have.
		b, _ := json.Marshal(v)
		if hasNUL(v) {
			t.Fatalf("accepted a NUL: %q", data)
		}
		if strings.ContainsRune(string(b), utf8.RuneError) && !strings.ContainsRune(string(data), utf8.RuneError) && !bytes.Contains(data, []byte(`\ufffd`)) && !bytes.Contains(data, []byte(`\uFFFD`)) {
			t.Fatalf("accepted data that decodes with replacement characters: %q", data)
		}
	})
}

// hasNUL reports whether a decoded JSON value holds a NUL in a key or a
// string. (Looking for \u0000 in the re-encoded text would also find an
// escaped backslash followed by "u0000", which is no NUL.)
func hasNUL(v any) bool {
	switch v := v.(type) {
	case string:
		return strings.ContainsRune(v, 0)
	case []any:
		return slices.ContainsFunc(v, hasNUL)
	case map[string]any:
		for k, e := range v {
			if strings.ContainsRune(k, 0) || hasNUL(e) {
				return true
			}
		}
	}
	return false
}

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

func TestRecordedAtRefusesTimesNoStoreCanReadBack(t *testing.T) {
	for _, at := range []time.Time{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(0, 12, 31, 0, 0, 0, 0, time.UTC)} {
		if _, err := storekit.RecordedAt(fixedClock(at)); !errors.Is(err, es.ErrInvalidConfig) {
			t.Errorf("RecordedAt(%v) = %v, want ErrInvalidConfig", at, err)
		}
	}
	at := time.Date(9999, 12, 31, 23, 59, 59, 0, time.FixedZone("CET", 3600))
	got, err := storekit.RecordedAt(fixedClock(at))
	if err != nil || !got.Equal(at) || got.Location() != time.UTC {
		t.Fatalf("RecordedAt(%v) = %v, %v", at, got, err)
	}
}

func TestSamePayloadComparesNumbersExactly(t *testing.T) {
	same := func(stored, proposed string) bool {
		e := es.EventData{ID: es.NewID(), Type: "T", SchemaVersion: 1, Data: []byte(proposed)}
		return storekit.SamePayload(es.Event{StreamID: "s-1", Type: "T", SchemaVersion: 1, Data: []byte(stored)}, "s-1", e)
	}
	for _, c := range []struct {
		stored, proposed string
		want             bool
	}{
		// What PostgreSQL's jsonb gives back for what was appended.
		{`{"n":1` + strings.Repeat("0", 400) + `}`, `{"n":1e400}`, true},
		{`{"n":100}`, `{"n":1E+2}`, true},
		{`{"n":0.0025}`, `{"n":2.5e-3}`, true},
		{`{"n":0}`, `{"n":-0}`, true},
		{`{"n":1.00}`, `{"n":1.0}`, true},
		{`{"b": [1, 2.50], "a": {"x": null, "y": true}}`, `{"a":{"y":true,"x":null},"b":[1.0,25e-1]}`, true},
		{`{"n":1e999999999}`, `{"n":10e999999998}`, true}, // compared without building 10^999999999
		{`{"n":1e99999999999999999999999}`, `{"n":0.1e100000000000000000000000}`, true},
		// Numbers a float64 cannot tell apart.
		{`{"n":9007199254740993}`, `{"n":9007199254740992}`, false},
		{`{"n":0.1}`, `{"n":0.10000000000000001}`, false},
		{`{"n":1e-400}`, `{"n":2e-400}`, false},
		{`{"n":1e400}`, `{"n":1e401}`, false},
		{`{"n":1e999999999}`, `{"n":1e999999998}`, false},
		{`{"n":-1e400}`, `{"n":1e400}`, false},
		// Not numbers, or not the same shape.
		{`{"n":1}`, `{"n":"1"}`, false},
		{`{"n":[1,2]}`, `{"n":[2,1]}`, false},
		{`{"n":1}`, `{"n":1,"m":1}`, false},
		{`{"n":1}`, `{"n":1} {}`, false},
		{`{"n":1`, `{"n":1}`, false},
	} {
		if got := same(c.stored, c.proposed); got != c.want {
			t.Errorf("SamePayload(%.60s, %.60s) = %v, want %v", c.stored, c.proposed, got, c.want)
		}
	}
}

func TestPruneQueryDropsWhatNoEventCanHave(t *testing.T) {
	for _, c := range []struct {
		in   es.AllQuery
		want es.AllQuery
		ok   bool
	}{
		{es.AllQuery{}, es.AllQuery{}, true},
		{es.AllQuery{Categories: []string{"cart"}, Types: []string{"A", "B"}, After: 3, Limit: 2},
			es.AllQuery{Categories: []string{"cart"}, Types: []string{"A", "B"}, After: 3, Limit: 2}, true},
		{es.AllQuery{Categories: []string{"cart\x00", "order"}}, es.AllQuery{Categories: []string{"order"}}, true},
		{es.AllQuery{Types: []string{"\xff", "A", "A\x00B"}}, es.AllQuery{Types: []string{"A"}}, true},
		{es.AllQuery{Categories: []string{"\xc3"}}, es.AllQuery{Categories: []string{}}, false},
		{es.AllQuery{Categories: []string{"cart"}, Types: []string{"\x00"}}, es.AllQuery{Categories: []string{"cart"}, Types: []string{}}, false},
	} {
		in := slices.Clone(c.in.Types)
		got, ok := storekit.PruneQuery(c.in)
		if ok != c.ok || !slices.Equal(got.Categories, c.want.Categories) || !slices.Equal(got.Types, c.want.Types) ||
			got.After != c.want.After || got.Limit != c.want.Limit {
			t.Errorf("PruneQuery(%#v) = %#v, %v; want %#v, %v", c.in, got, ok, c.want, c.ok)
		}
		if !slices.Equal(in, c.in.Types) {
			t.Errorf("PruneQuery changed its argument's Types: %q, was %q", c.in.Types, in)
		}
	}
}

// The numbers PostgreSQL's jsonb can keep are what every store accepts;
// the limits were read off PostgreSQL 15 (SELECT '{"n":...}'::jsonb).
func TestNumbersEveryStoreCanKeep(t *testing.T) {
	for n, ok := range map[string]bool{
		"1e131071": true, "1e131072": false, "9.9e131071": true, "10e131071": false,
		"123.45e131069": true, "123.45e131070": false, "0.00001e131076": true,
		"1e-16383": true, "1e-16384": false, "1.000e-16380": true, "1.0000e-16380": false,
		"0e999999": true, "0e-16383": true, "0e-99999": false, "0.000e-16381": false,
		"0.0e131072": true, "0e1000000000": true, "0e2147483647": false, "-1E+5": true,
		"1e999999999": false, "1e-999999999": false,
		"0." + strings.Repeat("1", 16383): true, "0." + strings.Repeat("1", 16384): false,
	} {
		err := storekit.CheckAppend([]es.StreamAppend{{StreamID: "s-1", Expected: es.AnyVersion,
			Events: []es.EventData{{ID: es.NewID(), Type: "T", SchemaVersion: 1, Data: []byte(`{"n":` + n + `}`)}}}})
		if ok != (err == nil) {
			t.Errorf("%.40s: %v, want accepted %v", n, err, ok)
		}
		if err != nil && !errors.Is(err, es.ErrInvalidAppend) {
			t.Errorf("%.40s: %v, want ErrInvalidAppend", n, err)
		}
	}
}
