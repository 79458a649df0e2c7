package es_test

import (
	"errors"
	"testing"

	"esgo.dev/es"
)

func TestExpectedVersionCheck(t *testing.T) {
	cases := []struct {
		e      es.ExpectedVersion
		actual int64
		ok     bool
	}{
		{es.AnyVersion, 0, true}, {es.AnyVersion, 5, true},
		{es.NoStream, 0, true}, {es.NoStream, 1, false},
		{es.StreamExists, 0, false}, {es.StreamExists, 3, true},
		{es.Exact(3), 3, true}, {es.Exact(3), 2, false}, {es.Exact(3), 4, false},
		{es.Exact(-1), 0, false}, {es.Exact(-1), 1, false},
	}
	for _, c := range cases {
		err := c.e.Check("s-1", c.actual)
		if (err == nil) != c.ok {
			t.Errorf("%s against version %d: %v", c.e, c.actual, err)
		}
	}
}

func TestConflictErrorMatchesSentinels(t *testing.T) {
	err := es.StreamExists.Check("order-1", 0)
	if !errors.Is(err, es.ErrConcurrency) || !errors.Is(err, es.ErrStreamNotFound) {
		t.Fatalf("%v should match ErrConcurrency and ErrStreamNotFound", err)
	}
	err = es.Exact(2).Check("order-1", 0)
	if !errors.Is(err, es.ErrConcurrency) || errors.Is(err, es.ErrStreamNotFound) {
		t.Fatalf("%v should match ErrConcurrency only", err)
	}
	want := `es: wrong expected version for stream "order-1": expected version 2, stream is at version 0`
	if err.Error() != want {
		t.Fatalf("message = %q, want %q", err, want)
	}
}

func TestIDs(t *testing.T) {
	a, b := es.NewID(), es.NewID()
	if !es.ValidID(a) || a == b || a[14] != '7' {
		t.Fatalf("NewID gave %s and %s", a, b)
	}
	first, again := es.DeriveID("cmd", 1), es.DeriveID("cmd", 1)
	if first != again || first == es.DeriveID("cmd", 2) || !es.ValidID(es.DeriveID("x", 0)) {
		t.Fatal("DeriveID must be deterministic, distinct per input, and a valid UUID")
	}
	for _, bad := range []string{"", "abc", "0190a1b2c3d47e5f8a9b0c1d2e3f4a5b0000", "0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5g"} {
		if es.ValidID(bad) {
			t.Errorf("ValidID(%q) = true", bad)
		}
	}
}

func TestCategory(t *testing.T) {
	for in, want := range map[string]string{"cart-42": "cart", "cart": "cart", "order-a-b": "order", "-x": ""} {
		if got := es.Category(in); got != want {
			t.Errorf("Category(%q) = %q, want %q", in, got, want)
		}
	}
}
