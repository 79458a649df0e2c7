package estest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"esgo.dev/es"
)

// TestStore is the conformance suite for [es.Store] implementations. Every
// store in this module runs it; a third-party store should too:
//
//	func TestConformance(t *testing.T) {
//		estest.TestStore(t, func(t *testing.T) es.Store { return newEmptyStore(t) })
//	}
//
// newStore must return an empty store for each subtest and arrange (with
// t.Cleanup) to close it. The suite covers expectations of every kind,
// concurrent appends to one stream, atomic multi-stream appends, idempotent
// appends (data compared as JSON values, numbers as exact decimals),
// validation, global order, forward and backward stream reads, filters
// (values no event can have match nothing), early exit from iterators and
// a 100,000-event stream read through the iterator in bounded memory.
func TestStore(t *testing.T, newStore func(t *testing.T) es.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, es.Store)
	}{
		{"Expectations", testExpectations},
		{"ConflictError", testConflictError},
		{"RoundTrip", testRoundTrip},
		{"ConcurrentCreate", testConcurrentCreate},
		{"ConcurrentExactAppends", testConcurrentExactAppends},
		{"ConcurrentStreams", testConcurrentStreams},
		{"ConcurrentTail", testConcurrentTail},
		{"MultiStreamAtomic", testMultiStreamAtomic},
		{"MultiStreamGuard", testMultiStreamGuard},
		{"MultiStreamCommand", testMultiStreamCommand},
		{"CommandRepeatRace", testCommandRepeatRace},
		{"IdempotentAppend", testIdempotentAppend},
		{"IdempotentNumbers", testIdempotentNumbers},
		{"InvalidAppends", testInvalidAppends},
		{"CancelledAppend", testCancelledAppend},
		{"GlobalOrder", testGlobalOrder},
		{"ReadStreamForward", testReadStreamForward},
		{"ReadStreamBackward", testReadStreamBackward},
		{"MissingStream", testMissingStream},
		{"Filters", testFilters},
		{"FilterUnstorableValues", testFilterUnstorableValues},
		{"EarlyBreak", testEarlyBreak},
		{"AppendWhileReading", testAppendWhileReading},
		{"LongStream", testLongStream},
		{"Notify", testNotify},
		{"OddNames", testOddNames},
		{"NumbersAtTheLimits", testNumbersAtTheLimits},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

// event returns an event to append with a fresh ID.
func event(typ string, n int) es.EventData {
	return es.EventData{
		ID: es.NewID(), Type: typ, SchemaVersion: 1,
		Data: fmt.Appendf(nil, `{"n":%d,"note":"conformance"}`, n),
	}
}

func events(typ string, count int) []es.EventData {
	out := make([]es.EventData, count)
	for i := range out {
		out[i] = event(typ, i+1)
	}
	return out
}

func mustAppend(t testing.TB, s es.Store, stream string, exp es.ExpectedVersion, evs ...es.EventData) es.AppendResult {
	t.Helper()
	r, err := es.Append(context.Background(), s, stream, exp, evs...)
	if err != nil {
		t.Fatalf("append %d events to %s (%s): %v", len(evs), stream, exp, err)
	}
	return r
}

func readStream(t testing.TB, s es.Store, stream string, q es.StreamQuery) []es.Event {
	t.Helper()
	evs, err := es.Collect(s.ReadStream(context.Background(), stream, q))
	if err != nil {
		t.Fatalf("read %s: %v", stream, err)
	}
	return evs
}

func readAll(t testing.TB, s es.Store, q es.AllQuery) []es.Event {
	t.Helper()
	evs, err := es.Collect(s.ReadAll(context.Background(), q))
	if err != nil {
		t.Fatalf("read all: %v", err)
	}
	return evs
}

func versions(evs []es.Event) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.Version
	}
	return out
}

func testExpectations(t *testing.T, s es.Store) {
	ctx := context.Background()
	cases := []struct {
		name     string
		existing int // events in the stream before the append
		expected es.ExpectedVersion
		wantErr  error
	}{
		{"any version on a new stream", 0, es.AnyVersion, nil},
		{"any version on an existing stream", 2, es.AnyVersion, nil},
		{"no stream on a new stream", 0, es.NoStream, nil},
		{"no stream on an existing stream", 2, es.NoStream, es.ErrConcurrency},
		{"stream exists on an existing stream", 2, es.StreamExists, nil},
		{"stream exists on a new stream", 0, es.StreamExists, es.ErrStreamNotFound},
		{"exact version matching", 2, es.Exact(2), nil},
		{"exact version behind", 2, es.Exact(1), es.ErrConcurrency},
		{"exact version ahead", 2, es.Exact(7), es.ErrConcurrency},
		{"exact version on a new stream", 0, es.Exact(3), es.ErrConcurrency},
		{"exact zero on a new stream", 0, es.Exact(0), nil},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stream := fmt.Sprintf("acct-%d", i)
			if c.existing > 0 {
				mustAppend(t, s, stream, es.NoStream, events("Opened", c.existing)...)
			}
			_, err := es.Append(ctx, s, stream, c.expected, event("Deposited", 1))
			after := len(readStream(t, s, stream, es.StreamQuery{}))
			if c.wantErr == nil {
				if err != nil {
					t.Fatalf("append with %s: %v", c.expected, err)
				}
				if after != c.existing+1 {
					t.Fatalf("stream has %d events after a successful append, want %d", after, c.existing+1)
				}
				return
			}
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("append with %s: got error %v, want %v", c.expected, err, c.wantErr)
			}
			if !errors.Is(err, es.ErrConcurrency) {
				t.Fatalf("a failed expectation must match es.ErrConcurrency, got %v", err)
			}
			if after != c.existing {
				t.Fatalf("a failed append wrote %d events", after-c.existing)
			}
		})
	}
}

func testConflictError(t *testing.T, s es.Store) {
	mustAppend(t, s, "order-1", es.NoStream, events("Placed", 3)...)
	_, err := es.Append(context.Background(), s, "order-1", es.Exact(1), event("Paid", 1))
	var conflict *es.VersionConflictError
	if !errors.As(err, &conflict) {
		t.Fatalf("got %v, want a *es.VersionConflictError", err)
	}
	want := es.VersionConflictError{StreamID: "order-1", Expected: es.Exact(1), Actual: 3}
	if *conflict != want {
		t.Fatalf("conflict = %+v, want %+v", *conflict, want)
	}
}

func testRoundTrip(t *testing.T, s es.Store) {
	in := es.EventData{
		ID: es.NewID(), Type: "ItemAdded", SchemaVersion: 3,
		Data: json.RawMessage(`{"sku":"A-1","qty":2,"price":{"amount":1999,"currency":"PLN"},"tags":["x","y"],"note":"zażółć \"gęślą\""}`),
		Metadata: es.Metadata{
			CorrelationID: es.NewID(), CausationID: es.NewID(),
			TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
			Extra:       map[string]string{"user": "u-1", "ip": "127.0.0.1"},
		},
	}
	before := time.Now().Add(-time.Minute)
	res := mustAppend(t, s, "cart-7", es.NoStream, in)
	if res.StreamID != "cart-7" || res.Version != 1 || res.Position <= 0 {
		t.Fatalf("append result = %+v, want stream cart-7 at version 1 with a position", res)
	}
	got := readStream(t, s, "cart-7", es.StreamQuery{})
	if len(got) != 1 {
		t.Fatalf("read %d events, want 1", len(got))
	}
	e := got[0]
	if e.ID != in.ID || e.StreamID != "cart-7" || e.Version != 1 || e.Position != res.Position ||
		e.Type != in.Type || e.SchemaVersion != 3 {
		t.Fatalf("read %+v, want what was appended", e)
	}
	var a, b any
	if err := json.Unmarshal(e.Data, &a); err != nil {
		t.Fatalf("stored data is not JSON: %v", err)
	}
	_ = json.Unmarshal(in.Data, &b)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("data = %s, want %s", e.Data, in.Data)
	}
	if e.Metadata.CorrelationID != in.Metadata.CorrelationID || e.Metadata.CausationID != in.Metadata.CausationID ||
		e.Metadata.TraceParent != in.Metadata.TraceParent || fmt.Sprint(e.Metadata.Extra) != fmt.Sprint(in.Metadata.Extra) {
		t.Fatalf("metadata = %+v, want %+v", e.Metadata, in.Metadata)
	}
	if e.RecordedAt.Before(before) || e.RecordedAt.After(time.Now().Add(time.Minute)) || e.RecordedAt.Location() != time.UTC {
		t.Fatalf("recorded at %v: want the append time, in UTC", e.RecordedAt)
	}
	all := readAll(t, s, es.AllQuery{})
	if len(all) != 1 || all[0].ID != in.ID {
		t.Fatalf("read all = %d events, want the one appended", len(all))
	}
}

func testConcurrentCreate(t *testing.T, s es.Store) {
	const writers = 50
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() {
			_, errs[i] = es.Append(context.Background(), s, "seat-1", es.NoStream, event("Claimed", i))
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, es.ErrConcurrency):
			t.Errorf("loser got %v, want es.ErrConcurrency", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d writers created the stream, want exactly 1", won)
	}
	if n := len(readStream(t, s, "seat-1", es.StreamQuery{})); n != 1 {
		t.Fatalf("stream has %d events, want 1", n)
	}
}

// testConcurrentExactAppends: 50 goroutines each append 4 events one at a
// time to one stream, each time expecting the version they last read. Every
// version must be written exactly once, and every failed try must be a
// concurrency error.
func testConcurrentExactAppends(t *testing.T, s es.Store) {
	const writers, each = 50, 4
	ctx := context.Background()
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		written   = map[int64]string{} // version -> event ID
		conflicts int
	)
	for w := range writers {
		wg.Go(func() {
			for i := 0; i < each; {
				evs := readStream(t, s, "counter-1", es.StreamQuery{Backward: true, Limit: 1})
				v := int64(0)
				if len(evs) == 1 {
					v = evs[0].Version
				}
				ev := event("Incremented", w*each+i)
				res, err := es.Append(ctx, s, "counter-1", es.Exact(v), ev)
				if errors.Is(err, es.ErrConcurrency) {
					mu.Lock()
					conflicts++
					mu.Unlock()
					continue
				}
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				mu.Lock()
				if prev, dup := written[res.Version]; dup {
					t.Errorf("version %d acknowledged twice (events %s and %s)", res.Version, prev, ev.ID)
				}
				written[res.Version] = ev.ID
				mu.Unlock()
				if res.Version != v+1 {
					t.Errorf("append expecting %d landed at version %d", v, res.Version)
				}
				i++
			}
		})
	}
	wg.Wait()
	got := readStream(t, s, "counter-1", es.StreamQuery{})
	if len(got) != writers*each {
		t.Fatalf("stream has %d events, want %d", len(got), writers*each)
	}
	for i, e := range got {
		if e.Version != int64(i+1) {
			t.Fatalf("event %d has version %d: versions must be 1..n without gaps", i, e.Version)
		}
		if written[e.Version] != e.ID {
			t.Fatalf("version %d holds event %s, but %s was acknowledged there", e.Version, e.ID, written[e.Version])
		}
	}
	t.Logf("%d appends, %d conflicts", writers*each, conflicts)
}

func testConcurrentStreams(t *testing.T, s es.Store) {
	const writers, each = 16, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			stream := fmt.Sprintf("user-%d", w)
			for i := range each {
				if _, err := es.Append(context.Background(), s, stream, es.Exact(int64(i)), event("Clicked", i)); err != nil {
					t.Errorf("%s: %v", stream, err)
					return
				}
			}
		})
	}
	wg.Wait()
	all := readAll(t, s, es.AllQuery{})
	if len(all) != writers*each {
		t.Fatalf("read all = %d events, want %d", len(all), writers*each)
	}
	checkGlobalOrder(t, all)
}

// testConcurrentTail: 8 writers append to 3 shared streams while a reader
// follows the global order from its last position, as a subscription does.
// The reader must see every event exactly once, never going back in
// position, and each stream's events in version order: a projection that
// keeps "last version seen" depends on it.
func testConcurrentTail(t *testing.T, s es.Store) {
	const writers, each = 8, 150
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := 0; i < each; {
				n := min(1+i%3, each-i) // appends of 1 to 3 events
				evs := events("Tick", n)
				if _, err := es.Append(ctx, s, fmt.Sprintf("tail-%d", w%3), es.AnyVersion, evs...); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				i += n
			}
		})
	}
	seen := make(map[string]bool)
	versions := make(map[string]int64)
	var last int64
	for len(seen) < writers*each {
		if ctx.Err() != nil {
			t.Fatalf("the reader saw %d of %d events before the deadline", len(seen), writers*each)
		}
		got := 0
		for e, err := range s.ReadAll(ctx, es.AllQuery{After: last}) {
			if err != nil {
				t.Fatal(err)
			}
			if e.Position <= last {
				t.Fatalf("position %d after %d: the reader went back", e.Position, last)
			}
			if seen[e.ID] {
				t.Fatalf("event %s read twice", e.ID)
			}
			if e.Version != versions[e.StreamID]+1 {
				t.Fatalf("%s version %d read after version %d: the global order must keep each stream's order",
					e.StreamID, e.Version, versions[e.StreamID])
			}
			seen[e.ID], last, versions[e.StreamID] = true, e.Position, e.Version
			got++
		}
		if got == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	wg.Wait()
	if all := readAll(t, s, es.AllQuery{}); len(all) != len(seen) {
		t.Fatalf("the store holds %d events, the reader saw %d", len(all), len(seen))
	}
}

func checkGlobalOrder(t testing.TB, all []es.Event) {
	t.Helper()
	last := map[string]int64{}
	ids := map[string]bool{}
	for i, e := range all {
		if i > 0 && e.Position <= all[i-1].Position {
			t.Fatalf("position %d follows %d: read all must be in increasing position order", e.Position, all[i-1].Position)
		}
		if e.Version != last[e.StreamID]+1 {
			t.Fatalf("%s version %d follows version %d in global order", e.StreamID, e.Version, last[e.StreamID])
		}
		last[e.StreamID] = e.Version
		if ids[e.ID] {
			t.Fatalf("event %s read twice", e.ID)
		}
		ids[e.ID] = true
	}
}

func testMultiStreamAtomic(t *testing.T, s es.Store) {
	ctx := context.Background()
	mustAppend(t, s, "inventory-1", es.NoStream, event("Stocked", 1))

	// One failing expectation: nothing is written anywhere.
	_, err := s.Append(ctx,
		es.StreamAppend{StreamID: "order-9", Expected: es.NoStream, Events: events("Placed", 2)},
		es.StreamAppend{StreamID: "inventory-1", Expected: es.Exact(5), Events: events("Reserved", 1)},
		es.StreamAppend{StreamID: "payment-9", Expected: es.NoStream, Events: events("Requested", 1)},
	)
	if !errors.Is(err, es.ErrConcurrency) {
		t.Fatalf("got %v, want es.ErrConcurrency", err)
	}
	var conflict *es.VersionConflictError
	if !errors.As(err, &conflict) || conflict.StreamID != "inventory-1" {
		t.Fatalf("conflict %v should name stream inventory-1", err)
	}
	if all := readAll(t, s, es.AllQuery{}); len(all) != 1 {
		t.Fatalf("a failed multi-stream append wrote %d events", len(all)-1)
	}

	// All expectations hold: every stream is written.
	res, err := s.Append(ctx,
		es.StreamAppend{StreamID: "order-9", Expected: es.NoStream, Events: events("Placed", 2)},
		es.StreamAppend{StreamID: "inventory-1", Expected: es.Exact(1), Events: events("Reserved", 1)},
	)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].StreamID != "order-9" || res[0].Version != 2 || res[1].StreamID != "inventory-1" || res[1].Version != 2 {
		t.Fatalf("results = %+v, want order-9 at 2 and inventory-1 at 2", res)
	}
	if res[1].Position <= res[0].Position {
		t.Fatalf("results = %+v: streams are written in request order", res)
	}
	all := readAll(t, s, es.AllQuery{})
	if len(all) != 4 {
		t.Fatalf("read all = %d events, want 4", len(all))
	}
	checkGlobalOrder(t, all)
}

// testMultiStreamGuard: a StreamAppend without events checks its
// expectation only, guarding a decision that read another stream.
func testMultiStreamGuard(t *testing.T, s es.Store) {
	ctx := context.Background()
	mustAppend(t, s, "policy-1", es.NoStream, events("Set", 3)...)
	res, err := s.Append(ctx,
		es.StreamAppend{StreamID: "policy-1", Expected: es.Exact(3)},
		es.StreamAppend{StreamID: "claim-1", Expected: es.NoStream, Events: events("Filed", 1)},
	)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Version != 3 || res[0].Position != 0 || res[1].Version != 1 {
		t.Fatalf("results = %+v, want policy-1 unchanged at 3 and claim-1 at 1", res)
	}
	_, err = s.Append(ctx,
		es.StreamAppend{StreamID: "policy-1", Expected: es.Exact(2)},
		es.StreamAppend{StreamID: "claim-2", Expected: es.NoStream, Events: events("Filed", 1)},
	)
	if !errors.Is(err, es.ErrConcurrency) {
		t.Fatalf("stale guard: got %v, want es.ErrConcurrency", err)
	}
	if n := len(readStream(t, s, "claim-2", es.StreamQuery{})); n != 0 {
		t.Fatalf("a failed guard let %d events through", n)
	}
}

func testIdempotentAppend(t *testing.T, s es.Store) {
	ctx := context.Background()
	evs := events("Booked", 3)
	first := mustAppend(t, s, "room-1", es.NoStream, evs...)
	mustAppend(t, s, "room-1", es.AnyVersion, event("Cleaned", 1))

	// The same events again, even with an expectation that no longer
	// holds, are a no-op that reports where they landed.
	again, err := es.Append(ctx, s, "room-1", es.NoStream, evs...)
	if err != nil {
		t.Fatalf("repeated append: %v", err)
	}
	want := first
	want.Repeated = true
	if again != want {
		t.Fatalf("repeated append = %+v, want the first result, marked repeated: %+v", again, want)
	}
	if first.Repeated {
		t.Fatalf("first append = %+v: marked repeated", first)
	}
	// Metadata is not part of the identity of an event.
	withMeta := slices.Clone(evs)
	withMeta[0].Metadata.CorrelationID = es.NewID()
	if _, err := es.Append(ctx, s, "room-1", es.Exact(4), withMeta...); err != nil {
		t.Fatalf("repeated append with other metadata: %v", err)
	}
	// JSON that differs only in spacing and key order is the same data.
	spaced := slices.Clone(evs)
	spaced[1].Data = json.RawMessage(`{ "note" : "conformance", "n" : 2 }`)
	if _, err := es.Append(ctx, s, "room-1", es.AnyVersion, spaced...); err != nil {
		t.Fatalf("repeated append with reformatted JSON: %v", err)
	}
	if n := len(readStream(t, s, "room-1", es.StreamQuery{})); n != 4 {
		t.Fatalf("stream has %d events after repeated appends, want 4", n)
	}

	changed := slices.Clone(evs)
	changed[2].Data = json.RawMessage(`{"n":99}`)
	otherType := slices.Clone(evs)
	otherType[0].Type = "Cancelled"
	cases := map[string]func() error{
		"same ID, other data": func() error { _, err := es.Append(ctx, s, "room-1", es.AnyVersion, changed...); return err },
		"same ID, other type": func() error { _, err := es.Append(ctx, s, "room-1", es.AnyVersion, otherType...); return err },
		"same ID, other stream": func() error {
			_, err := es.Append(ctx, s, "room-2", es.AnyVersion, evs...)
			return err
		},
		"some IDs stored, some new": func() error {
			_, err := es.Append(ctx, s, "room-1", es.AnyVersion, evs[2], event("Booked", 4))
			return err
		},
		"stored ID in a multi-stream append": func() error {
			_, err := s.Append(ctx,
				es.StreamAppend{StreamID: "room-3", Expected: es.NoStream, Events: events("Booked", 1)},
				es.StreamAppend{StreamID: "room-2", Expected: es.AnyVersion, Events: evs[:1]})
			return err
		},
	}
	for name, fn := range cases {
		if err := fn(); !errors.Is(err, es.ErrDuplicateEventID) {
			t.Errorf("%s: got %v, want es.ErrDuplicateEventID", name, err)
		}
	}
	if all := readAll(t, s, es.AllQuery{}); len(all) != 4 {
		t.Fatalf("store has %d events after refused appends, want 4", len(all))
	}
}

// testIdempotentNumbers: a repeated append is recognised by the values of
// its data, and numbers are values of any size and precision. A store may
// give a number back in another form (PostgreSQL's jsonb writes 1e400 out
// in full, 1E2 as 100) and the repeat must still be recognised; numbers
// that a float64 cannot tell apart (2^53 and 2^53+1) are different data,
// so an event reusing the ID with the other is not a repeat.
func testIdempotentNumbers(t *testing.T, s es.Store) {
	ctx := context.Background()
	same := map[string][2]string{
		"beyond float64":   {`{"n":1e400}`, `{"n":1e400}`},
		"exponent forms":   {`{"n":1E2,"m":-2.5e-3}`, `{"n":100,"m":-0.0025}`},
		"trailing zeros":   {`{"n":1.0,"m":[0.50]}`, `{"n":1.00,"m":[0.5]}`},
		"negative zero":    {`{"n":-0}`, `{"n":0.0}`},
		"above 2^53":       {`{"n":9007199254740993}`, `{"n":9007199254740993}`},
		"long fraction":    {`{"n":0.1000000000000000000000000000001}`, `{"n":0.1000000000000000000000000000001}`},
		"huge and precise": {`{"n":123456789012345678901234567890.123456789}`, `{"n":1234567890123456789012345678901.23456789e-1}`},
	}
	for name, data := range same {
		t.Run("same/"+name, func(t *testing.T) {
			stream := "num-" + es.NewID()
			e := es.EventData{ID: es.NewID(), Type: "Measured", SchemaVersion: 1, Data: json.RawMessage(data[0])}
			first := mustAppend(t, s, stream, es.NoStream, e)
			e.Data = json.RawMessage(data[1])
			again, err := es.Append(ctx, s, stream, es.NoStream, e)
			if err != nil {
				t.Fatalf("repeating %s as %s: %v", data[0], data[1], err)
			}
			if !again.Repeated || again.Version != first.Version || again.Position != first.Position {
				t.Fatalf("repeat = %+v, want %+v marked repeated", again, first)
			}
		})
	}
	differ := map[string][2]string{
		"2^53 and 2^53+1":   {`{"n":9007199254740993}`, `{"n":9007199254740992}`},
		"close decimals":    {`{"n":0.1}`, `{"n":0.10000000000000001}`},
		"huge exponents":    {`{"n":1e400}`, `{"n":1e401}`},
		"tiny exponents":    {`{"n":1e-400}`, `{"n":2e-400}`},
		"sign":              {`{"n":1e400}`, `{"n":-1e400}`},
		"number and string": {`{"n":1}`, `{"n":"1"}`},
		"deep in an array":  {`{"a":[1,{"b":[12345678901234567890]}]}`, `{"a":[1,{"b":[12345678901234567891]}]}`},
	}
	for name, data := range differ {
		t.Run("differ/"+name, func(t *testing.T) {
			stream := "num-" + es.NewID()
			e := es.EventData{ID: es.NewID(), Type: "Measured", SchemaVersion: 1, Data: json.RawMessage(data[0])}
			mustAppend(t, s, stream, es.NoStream, e)
			e.Data = json.RawMessage(data[1])
			if _, err := es.Append(ctx, s, stream, es.AnyVersion, e); !errors.Is(err, es.ErrDuplicateEventID) {
				t.Fatalf("appending %s under the ID of %s: got %v, want es.ErrDuplicateEventID", data[1], data[0], err)
			}
			if n := len(readStream(t, s, stream, es.StreamQuery{})); n != 1 {
				t.Fatalf("stream has %d events, want 1", n)
			}
		})
	}
}

func testInvalidAppends(t *testing.T, s es.Store) {
	ctx := context.Background()
	good := event("Ok", 1)
	badID, upperID, noType, badVersion, notJSON, notObject := good, good, good, good, good, good
	badID.ID = "not-a-uuid"
	upperID.ID = "0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B"
	noType.Type = ""
	badVersion.SchemaVersion = 0
	notJSON.Data = json.RawMessage(`{"n":`)
	notObject.Data = json.RawMessage(`[1,2]`)
	nul := good
	nul.Data = json.RawMessage(`{"note":"a\u0000b"}`)
	nulMeta := event("Ok", 3)
	nulMeta.Metadata.Extra = map[string]string{"k": "a\x00b"}
	dup := event("Ok", 2)
	cases := map[string][]es.StreamAppend{
		"no streams":              nil,
		"empty stream ID":         {{StreamID: "", Expected: es.AnyVersion, Events: []es.EventData{event("Ok", 1)}}},
		"invalid event ID":        {{StreamID: "bad-1", Expected: es.AnyVersion, Events: []es.EventData{badID}}},
		"upper-case event ID":     {{StreamID: "bad-1", Expected: es.AnyVersion, Events: []es.EventData{upperID}}},
		"empty type":              {{StreamID: "bad-1", Expected: es.AnyVersion, Events: []es.EventData{noType}}},
		"schema version 0":        {{StreamID: "bad-1", Expected: es.AnyVersion, Events: []es.EventData{badVersion}}},
		"malformed JSON":          {{StreamID: "bad-1", Expected: es.AnyVersion, Events: []es.EventData{notJSON}}},
		"data not a JSON object":  {{StreamID: "bad-1", Expected: es.AnyVersion, Events: []es.EventData{notObject}}},
		"negative exact version":  {{StreamID: "bad-1", Expected: es.Exact(-3), Events: []es.EventData{event("Ok", 1)}}},
		"event ID twice":          {{StreamID: "bad-1", Expected: es.AnyVersion, Events: []es.EventData{dup, dup}}},
		"NUL escape in data":      {{StreamID: "bad-1", Expected: es.AnyVersion, Events: []es.EventData{nul}}},
		"NUL in metadata":         {{StreamID: "bad-1", Expected: es.AnyVersion, Events: []es.EventData{nulMeta}}},
		"stream twice":            {{StreamID: "bad-1", Expected: es.AnyVersion}, {StreamID: "bad-1", Expected: es.AnyVersion}},
		"valid and invalid mixed": {{StreamID: "good-1", Expected: es.AnyVersion, Events: events("Ok", 2)}, {StreamID: "bad-1", Expected: es.AnyVersion, Events: []es.EventData{noType}}},
		"too many events":         {{StreamID: "bad-1", Expected: es.AnyVersion, Events: events("Ok", es.MaxEventsPerAppend+1)}},
	}
	// What one store cannot keep, no store takes: the same event must be
	// storable everywhere.
	long := strings.Repeat("x", es.MaxIDLength+1)
	with := func(f func(*es.EventData)) []es.EventData { e := event("Ok", 1); f(&e); return []es.EventData{e} }
	for name, a := range map[string]es.StreamAppend{
		"NUL in stream ID":           {StreamID: "bad-\x00", Events: events("Ok", 1)},
		"invalid UTF-8 stream ID":    {StreamID: "bad-\xff", Events: events("Ok", 1)},
		"stream ID over the limit":   {StreamID: long, Events: events("Ok", 1)},
		"NUL in type":                {StreamID: "bad-1", Events: with(func(e *es.EventData) { e.Type = "Ok\x00" })},
		"invalid UTF-8 type":         {StreamID: "bad-1", Events: with(func(e *es.EventData) { e.Type = "Ok\xc3" })},
		"type over the limit":        {StreamID: "bad-1", Events: with(func(e *es.EventData) { e.Type = long })},
		"invalid UTF-8 in data":      {StreamID: "bad-1", Events: with(func(e *es.EventData) { e.Data = json.RawMessage("{\"n\":\"\xff\"}") })},
		"unpaired surrogate in data": {StreamID: "bad-1", Events: with(func(e *es.EventData) { e.Data = json.RawMessage(`{"n":"\ud800"}`) })},
		"invalid UTF-8 in metadata":  {StreamID: "bad-1", Events: with(func(e *es.EventData) { e.Metadata.CausationID = "\xfe" })},
	} {
		a.Expected = es.AnyVersion
		cases[name] = []es.StreamAppend{a}
	}
	for name, appends := range cases {
		if _, err := s.Append(ctx, appends...); !errors.Is(err, es.ErrInvalidAppend) {
			t.Errorf("%s: got %v, want es.ErrInvalidAppend", name, err)
		}
	}
	if all := readAll(t, s, es.AllQuery{}); len(all) != 0 {
		t.Fatalf("invalid appends wrote %d events", len(all))
	}
	// A stream ID no store can keep has no events, whichever store is asked.
	for _, id := range []string{"bad-\x00", "bad-\xff", long} {
		if evs := readStream(t, s, id, es.StreamQuery{}); len(evs) != 0 {
			t.Fatalf("stream %q has %d events", id, len(evs))
		}
	}
}

func testCancelledAppend(t *testing.T, s es.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := es.Append(ctx, s, "late-1", es.AnyVersion, event("Tried", 1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("append with a cancelled context: got %v, want context.Canceled", err)
	}
	if all := readAll(t, s, es.AllQuery{}); len(all) != 0 {
		t.Fatalf("a cancelled append wrote %d events", len(all))
	}
	for _, err := range s.ReadAll(ctx, es.AllQuery{}) {
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("read with a cancelled context: got %v, want context.Canceled", err)
		}
	}
}

func testGlobalOrder(t *testing.T, s es.Store) {
	var ids []string
	for i := range 30 {
		e := event("Step", i)
		ids = append(ids, e.ID)
		mustAppend(t, s, fmt.Sprintf("job-%d", i%4), es.AnyVersion, e)
	}
	all := readAll(t, s, es.AllQuery{})
	if len(all) != 30 {
		t.Fatalf("read all = %d events, want 30", len(all))
	}
	checkGlobalOrder(t, all)
	for i, e := range all {
		if e.ID != ids[i] {
			t.Fatalf("event %d of read all is %s, want %s (the append order)", i, e.ID, ids[i])
		}
	}
	after := readAll(t, s, es.AllQuery{After: all[9].Position})
	if len(after) != 20 || after[0].ID != ids[10] {
		t.Fatalf("read all after position %d = %d events, want the last 20", all[9].Position, len(after))
	}
	limited := readAll(t, s, es.AllQuery{After: all[9].Position, Limit: 5})
	if len(limited) != 5 || limited[4].ID != ids[14] {
		t.Fatalf("read all with limit 5 = %d events, want events 11..15", len(limited))
	}
	if none := readAll(t, s, es.AllQuery{After: all[29].Position}); len(none) != 0 {
		t.Fatalf("read all after the last position = %d events, want 0", len(none))
	}
}

func testReadStreamForward(t *testing.T, s es.Store) {
	mustAppend(t, s, "log-1", es.NoStream, events("Line", 10)...)
	mustAppend(t, s, "log-2", es.NoStream, events("Line", 3)...)
	check := func(q es.StreamQuery, want ...int64) {
		t.Helper()
		if got := versions(readStream(t, s, "log-1", q)); !slices.Equal(got, want) {
			t.Errorf("read %+v = versions %v, want %v", q, got, want)
		}
	}
	check(es.StreamQuery{}, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	check(es.StreamQuery{From: 1}, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	check(es.StreamQuery{From: 8}, 8, 9, 10)
	check(es.StreamQuery{From: 3, Limit: 2}, 3, 4)
	check(es.StreamQuery{From: 11})
}

func testReadStreamBackward(t *testing.T, s es.Store) {
	mustAppend(t, s, "log-1", es.NoStream, events("Line", 10)...)
	mustAppend(t, s, "log-2", es.NoStream, events("Line", 3)...)
	check := func(q es.StreamQuery, want ...int64) {
		t.Helper()
		q.Backward = true
		if got := versions(readStream(t, s, "log-1", q)); !slices.Equal(got, want) {
			t.Errorf("read %+v = versions %v, want %v", q, got, want)
		}
	}
	check(es.StreamQuery{}, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1)
	check(es.StreamQuery{Limit: 1}, 10)
	check(es.StreamQuery{From: 4}, 4, 3, 2, 1)
	check(es.StreamQuery{From: 7, Limit: 3}, 7, 6, 5)
	check(es.StreamQuery{From: 50, Limit: 2}, 10, 9)
}

func testMissingStream(t *testing.T, s es.Store) {
	mustAppend(t, s, "other-1", es.NoStream, event("X", 1))
	for _, q := range []es.StreamQuery{{}, {Backward: true}} {
		if evs := readStream(t, s, "nothing-here", q); len(evs) != 0 {
			t.Fatalf("reading a missing stream yielded %d events", len(evs))
		}
	}
}

func testFilters(t *testing.T, s es.Store) {
	mustAppend(t, s, "cart-1", es.NoStream, event("CartOpened", 1), event("ItemAdded", 2))
	mustAppend(t, s, "order-1", es.NoStream, event("OrderPlaced", 1))
	mustAppend(t, s, "cart-2", es.NoStream, event("CartOpened", 1))
	mustAppend(t, s, "cartography-1", es.NoStream, event("MapDrawn", 1))
	mustAppend(t, s, "cart", es.NoStream, event("CartOpened", 1))
	mustAppend(t, s, "order-2", es.NoStream, event("ItemAdded", 1))
	check := func(q es.AllQuery, want ...string) {
		t.Helper()
		var got []string
		for _, e := range readAll(t, s, q) {
			got = append(got, e.StreamID+"/"+e.Type)
		}
		if !slices.Equal(got, want) {
			t.Errorf("read all %+v = %v, want %v", q, got, want)
		}
	}
	check(es.AllQuery{Categories: []string{"cart"}}, "cart-1/CartOpened", "cart-1/ItemAdded", "cart-2/CartOpened", "cart/CartOpened")
	check(es.AllQuery{Categories: []string{"order", "cartography"}}, "order-1/OrderPlaced", "cartography-1/MapDrawn", "order-2/ItemAdded")
	check(es.AllQuery{Types: []string{"ItemAdded"}}, "cart-1/ItemAdded", "order-2/ItemAdded")
	check(es.AllQuery{Categories: []string{"cart"}, Types: []string{"CartOpened"}}, "cart-1/CartOpened", "cart-2/CartOpened", "cart/CartOpened")
	check(es.AllQuery{Categories: []string{"cart"}, Types: []string{"CartOpened"}, Limit: 2}, "cart-1/CartOpened", "cart-2/CartOpened")
	check(es.AllQuery{Categories: []string{"nope"}})
	first := readAll(t, s, es.AllQuery{Limit: 1})[0]
	check(es.AllQuery{After: first.Position, Types: []string{"CartOpened"}}, "cart-2/CartOpened", "cart/CartOpened")
}

// testFilterUnstorableValues: a category or type that no append can store
// (invalid UTF-8, a NUL) matches nothing, on every store, rather than
// failing the read where the database refuses such text. A filter left
// with no value that can match keeps no event.
func testFilterUnstorableValues(t *testing.T, s es.Store) {
	mustAppend(t, s, "cart-1", es.NoStream, event("CartOpened", 1), event("ItemAdded", 2))
	mustAppend(t, s, "order-1", es.NoStream, event("OrderPlaced", 1))
	check := func(q es.AllQuery, want ...string) {
		t.Helper()
		var got []string
		for _, e := range readAll(t, s, q) {
			got = append(got, e.StreamID+"/"+e.Type)
		}
		if !slices.Equal(got, want) {
			t.Errorf("read all %#v = %q, want %q", q, got, want)
		}
	}
	check(es.AllQuery{Categories: []string{"cart\x00"}})
	check(es.AllQuery{Categories: []string{"\xff"}})
	check(es.AllQuery{Categories: []string{"cart\x00", "order\xc3"}, Types: []string{"OrderPlaced"}})
	check(es.AllQuery{Categories: []string{"\xff", "order"}}, "order-1/OrderPlaced")
	check(es.AllQuery{Types: []string{"ItemAdded\x00"}})
	check(es.AllQuery{Types: []string{"Item\xc3Added", "\x00"}})
	check(es.AllQuery{Types: []string{"\xfe", "ItemAdded"}}, "cart-1/ItemAdded")
	check(es.AllQuery{Categories: []string{"cart"}, Types: []string{"\x00"}})
	check(es.AllQuery{Categories: []string{"cart", "\x00"}, Types: []string{"CartOpened", "\xff"}, Limit: 5}, "cart-1/CartOpened")
}

// testEarlyBreak stops iterating early many times; a store that leaked a
// connection or a lock per abandoned iterator would stall here.
func testEarlyBreak(t *testing.T, s es.Store) {
	ctx := context.Background()
	mustAppend(t, s, "feed-1", es.NoStream, events("Item", 50)...)
	for range 200 {
		for range s.ReadStream(ctx, "feed-1", es.StreamQuery{}) {
			break
		}
		for range s.ReadAll(ctx, es.AllQuery{}) {
			break
		}
	}
	mustAppend(t, s, "feed-1", es.Exact(50), event("Item", 51))
	if n := len(readAll(t, s, es.AllQuery{})); n != 51 {
		t.Fatalf("read all = %d events, want 51", n)
	}
}

// testAppendWhileReading appends from inside read loops, as a projection
// that writes back to the store would. A store that holds its only
// connection, or a lock, while yielding deadlocks here.
func testAppendWhileReading(t *testing.T, s es.Store) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mustAppend(t, s, "source-1", es.NoStream, events("Item", 1200)...)
	n := 0
	for e, err := range s.ReadStream(ctx, "source-1", es.StreamQuery{}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Version%100 == 0 {
			if _, err := es.Append(ctx, s, "copy-1", es.Exact(int64(n)), event("Copied", int(e.Version))); err != nil {
				t.Fatalf("append inside a stream read: %v", err)
			}
			n++
		}
	}
	for e, err := range s.ReadAll(ctx, es.AllQuery{Categories: []string{"source"}}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Version%100 == 0 {
			if _, err := es.Append(ctx, s, "copy-1", es.Exact(int64(n)), event("Copied", int(e.Version))); err != nil {
				t.Fatalf("append inside a read of all: %v", err)
			}
			n++
		}
	}
	if got := len(readStream(t, s, "copy-1", es.StreamQuery{})); got != 24 {
		t.Fatalf("copy-1 has %d events, want 24", got)
	}
}

// testLongStream reads a 100,000-event stream through the iterator and
// checks that the heap did not grow by anything near the size of the
// stream: events must be fetched as they are consumed.
func testLongStream(t *testing.T, s es.Store) {
	if testing.Short() {
		t.Skip("100,000 events: skipped with -short")
	}
	const total, batch = 100_000, 2_000
	payload := `{"n":%d,"pad":"` + strings.Repeat("x", 200) + `"}`
	ctx := context.Background()
	for i := 0; i < total; i += batch {
		evs := make([]es.EventData, batch)
		for j := range evs {
			evs[j] = es.EventData{ID: es.NewID(), Type: "Tick", SchemaVersion: 1, Data: fmt.Appendf(nil, payload, i+j)}
		}
		mustAppend(t, s, "clock-1", es.Exact(int64(i)), evs...)
	}

	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	base := heap()
	var peak uint64
	n := int64(0)
	for e, err := range s.ReadStream(ctx, "clock-1", es.StreamQuery{}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if e.Version != n {
			t.Fatalf("event %d has version %d", n, e.Version)
		}
		if n%25_000 == 0 {
			peak = max(peak, heap())
		}
	}
	if n != total {
		t.Fatalf("read %d events, want %d", n, total)
	}
	// Holding the stream would take about total*(200+ bytes of data plus
	// the envelope) = over 30 MB. Allow a tenth of that for batches.
	const limit = 3 << 20
	grew := int64(peak) - int64(base)
	t.Logf("heap grew by %d KiB while iterating over %d events", grew>>10, total)
	if grew > limit {
		t.Fatalf("heap grew by %d bytes while iterating: the store seems to hold the whole stream in memory", grew)
	}
}

// testNotify checks, for stores that implement es.Notifier, that an append
// wakes a waiting reader and that the channel closes with its context.
func testNotify(t *testing.T, s es.Store) {
	n, ok := s.(es.Notifier)
	if !ok {
		t.Skip("the store does not implement es.Notifier")
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := n.Notify(ctx)
	// A listener may need a moment to start listening: append until heard.
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	mustAppend(t, s, "bell-1", es.AnyVersion, event("Rang", 0))
heard:
	for i := 1; ; i++ {
		select {
		case <-ch:
			break heard
		case <-tick.C:
			mustAppend(t, s, "bell-1", es.AnyVersion, event("Rang", i))
		case <-deadline:
			t.Fatal("no notification within 10s of appending")
		}
	}
	cancel()
	for {
		select {
		case _, open := <-ch:
			if !open {
				return
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the notification channel was not closed after its context ended")
		}
	}
}

// testOddNames: checkpoint names and inbox consumers and message IDs that
// not every store can keep are refused alike, with ErrInvalidConfig, and
// run nothing.
func testOddNames(t *testing.T, s es.Store) {
	ctx := context.Background()
	odd := []string{"", "a\x00b", "\xff", strings.Repeat("n", es.MaxIDLength+1)}
	if cs, ok := s.(es.CheckpointStore); ok {
		for _, name := range odd {
			if err := cs.SaveCheckpoint(ctx, name, 1); !errors.Is(err, es.ErrInvalidConfig) {
				t.Errorf("SaveCheckpoint(%q) = %v, want ErrInvalidConfig", name, err)
			}
			if _, err := cs.LoadCheckpoint(ctx, name); !errors.Is(err, es.ErrInvalidConfig) {
				t.Errorf("LoadCheckpoint(%q) = %v, want ErrInvalidConfig", name, err)
			}
		}
	}
	if ib, ok := s.(interface{ Inbox() es.Inbox }); ok {
		for _, name := range odd {
			ran := false
			run := func(context.Context) error { ran = true; return nil }
			if _, err := ib.Inbox().Handle(ctx, name, es.NewID(), run); !errors.Is(err, es.ErrInvalidConfig) || ran {
				t.Errorf("inbox consumer %q: %v (ran %v), want ErrInvalidConfig", name, err, ran)
			}
			if _, err := ib.Inbox().Handle(ctx, "consumer", name, run); !errors.Is(err, es.ErrInvalidConfig) || ran {
				t.Errorf("inbox message ID %q: %v (ran %v), want ErrInvalidConfig", name, err, ran)
			}
		}
	}
}

// testNumbersAtTheLimits: numbers at the edge of what every store can keep
// (PostgreSQL's numeric) are stored by every store, and those just past it
// refused by every store.
func testNumbersAtTheLimits(t *testing.T, s es.Store) {
	ctx := context.Background()
	for _, n := range []string{"1e131071", "-9.9e131071", "1e-16383", "0e-16383", "0e1000000000"} {
		e := es.EventData{ID: es.NewID(), Type: "N", SchemaVersion: 1, Data: []byte(`{"n":` + n + `}`)}
		if _, err := es.Append(ctx, s, "numbers-ok", es.AnyVersion, e); err != nil {
			t.Errorf("%s refused: %v", n, err)
		}
	}
	for _, n := range []string{"1e131072", "1e-16384", "0e-16384", "1e999999999", "0e2147483647"} {
		e := es.EventData{ID: es.NewID(), Type: "N", SchemaVersion: 1, Data: []byte(`{"n":` + n + `}`)}
		if _, err := es.Append(ctx, s, "numbers-bad", es.AnyVersion, e); !errors.Is(err, es.ErrInvalidAppend) {
			t.Errorf("%s: %v, want ErrInvalidAppend", n, err)
		}
	}
	if n := len(readStream(t, s, "numbers-bad", es.StreamQuery{})); n != 0 {
		t.Errorf("refused numbers left %d events", n)
	}
}
