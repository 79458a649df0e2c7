package storekit_test

import (
	"errors"
	"testing"

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
