package estest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"esgo.dev/es"
)

// TestSnapshots is the conformance suite for [es.SnapshotStore]
// implementations, and for command handlers that keep snapshots on them:
// snapshots round-trip and a save replaces the stored one; bad input
// is refused and writes nothing; FindEvent finds events by ID; and a
// handler with snapshots gives exactly the results of one without, also
// when snapshots are corrupted, of another state version, or claim more
// than the stream holds, and recognises a repeated command whose events
// lie before the snapshot, on single- and multi-stream handlers.
// newStore must return an empty store that implements es.SnapshotStore.
func TestSnapshots(t *testing.T, newStore func(t *testing.T) es.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, es.Store, es.SnapshotStore)
	}{
		{"SaveAndLoad", testSnapshotSaveLoad},
		{"InvalidSnapshots", testInvalidSnapshots},
		{"FindEvent", testFindEvent},
		{"SameResults", testSnapshotSameResults},
		{"RepeatBeforeSnapshot", testRepeatBeforeSnapshot},
		{"MultiStreamRepeatBeforeSnapshot", testMultiStreamRepeatBeforeSnapshot},
		{"TwoDecidersOneStream", testTwoDecidersOneStream},
		{"RepeatAcrossHandlerKinds", testRepeatAcrossHandlerKinds},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			ss, ok := s.(es.SnapshotStore)
			if !ok {
				t.Fatalf("%T does not implement es.SnapshotStore", s)
			}
			tc.fn(t, s, ss)
		})
	}
}

func loadSnap(t testing.TB, ss es.SnapshotStore, stream, name string) (es.Snapshot, bool) {
	t.Helper()
	s, ok, err := ss.LoadSnapshot(context.Background(), stream, name)
	if err != nil {
		t.Fatal(err)
	}
	return s, ok
}

func testSnapshotSaveLoad(t *testing.T, _ es.Store, ss es.SnapshotStore) {
	ctx := context.Background()
	if _, ok := loadSnap(t, ss, "snap-1", "counter"); ok {
		t.Fatal("a snapshot before any was saved")
	}
	v3 := es.Snapshot{StreamID: "snap-1", Name: "counter", Version: 3, StateVersion: 1, Data: []byte(`{"state":{"n":3}}`)}
	if err := ss.SaveSnapshot(ctx, v3); err != nil {
		t.Fatal(err)
	}
	// Another name on the same stream is another snapshot.
	other := es.Snapshot{StreamID: "snap-1", Name: "audit", Version: 1, StateVersion: 7, Data: []byte(`[1,2]`)}
	if err := ss.SaveSnapshot(ctx, other); err != nil {
		t.Fatal(err)
	}
	got, ok := loadSnap(t, ss, "snap-1", "counter")
	if !ok || !sameSnapshot(got, v3) {
		t.Fatalf("loaded %+v, %v; want %+v", got, ok, v3)
	}
	// A save replaces the snapshot, whatever its version.
	v5 := es.Snapshot{StreamID: "snap-1", Name: "counter", Version: 5, StateVersion: 2, Data: []byte(`{"state":{"n":5}}`)}
	if err := ss.SaveSnapshot(ctx, v5); err != nil {
		t.Fatal(err)
	}
	if got, ok := loadSnap(t, ss, "snap-1", "counter"); !ok || !sameSnapshot(got, v5) {
		t.Fatalf("after saving a newer one: %+v, %v; want %+v", got, ok, v5)
	}
	v2 := es.Snapshot{StreamID: "snap-1", Name: "counter", Version: 2, StateVersion: 1, Data: []byte(`{}`)}
	if err := ss.SaveSnapshot(ctx, v2); err != nil {
		t.Fatal(err)
	}
	if got, ok := loadSnap(t, ss, "snap-1", "counter"); !ok || !sameSnapshot(got, v2) {
		t.Fatalf("after saving an older one: %+v, %v; want %+v", got, ok, v2)
	}
	if got, ok := loadSnap(t, ss, "snap-1", "audit"); !ok || !sameSnapshot(got, other) {
		t.Fatalf("the other name: %+v, %v; want %+v", got, ok, other)
	}
}

// sameSnapshot compares snapshots, the data as JSON values: a store may
// keep them in a form that respaces them.
func sameSnapshot(a, b es.Snapshot) bool {
	return a.StreamID == b.StreamID && a.Name == b.Name && a.Version == b.Version && a.StateVersion == b.StateVersion &&
		sameJSON(a.Data, b.Data)
}

func testInvalidSnapshots(t *testing.T, _ es.Store, ss es.SnapshotStore) {
	ctx := context.Background()
	good := es.Snapshot{StreamID: "snap-bad", Name: "counter", Version: 1, StateVersion: 1, Data: []byte(`{}`)}
	for name, mutate := range map[string]func(*es.Snapshot){
		"empty stream ID":       func(s *es.Snapshot) { s.StreamID = "" },
		"stream ID with NUL":    func(s *es.Snapshot) { s.StreamID = "snap-\x00" },
		"stream ID not UTF-8":   func(s *es.Snapshot) { s.StreamID = "snap-\xff" },
		"stream ID too long":    func(s *es.Snapshot) { s.StreamID = "snap-" + strings.Repeat("x", es.MaxIDLength) },
		"empty name":            func(s *es.Snapshot) { s.Name = "" },
		"name with NUL":         func(s *es.Snapshot) { s.Name = "a\x00b" },
		"version 0":             func(s *es.Snapshot) { s.Version = 0 },
		"negative version":      func(s *es.Snapshot) { s.Version = -1 },
		"data not JSON":         func(s *es.Snapshot) { s.Data = []byte("{") },
		"no data":               func(s *es.Snapshot) { s.Data = nil },
		"data not UTF-8":        func(s *es.Snapshot) { s.Data = []byte("\"\xff\"") },
		"data with a NUL byte":  func(s *es.Snapshot) { s.Data = []byte("\"a\x00\"") },
		"data with a form feed": func(s *es.Snapshot) { s.Data = []byte("\f{}") },
		"name not UTF-8":        func(s *es.Snapshot) { s.Name = "\xfe" },
		"name too long":         func(s *es.Snapshot) { s.Name = strings.Repeat("n", es.MaxIDLength+1) },
	} {
		s := good
		mutate(&s)
		if err := ss.SaveSnapshot(ctx, s); !errors.Is(err, es.ErrInvalidAppend) {
			t.Errorf("%s: got %v, want ErrInvalidAppend", name, err)
		}
	}
	if _, ok := loadSnap(t, ss, "snap-bad", "counter"); ok {
		t.Fatal("a refused snapshot was stored")
	}
	// Reads of names no snapshot can have find nothing, without an error.
	for _, id := range []string{"", "snap-\x00", "snap-\xff", strings.Repeat("x", es.MaxIDLength+1)} {
		if _, ok := loadSnap(t, ss, id, "counter"); ok {
			t.Errorf("LoadSnapshot(%q) found a snapshot", id)
		}
	}
}

func testFindEvent(t *testing.T, s es.Store, ss es.SnapshotStore) {
	ctx := context.Background()
	mustAppend(t, s, "find-1", es.NoStream, events("E", 3)...)
	stored := readStream(t, s, "find-1", es.StreamQuery{})
	stream, v, ok, err := ss.FindEvent(ctx, stored[1].ID)
	if err != nil || !ok || stream != "find-1" || v != 2 {
		t.Fatalf("FindEvent(second event) = %q, %d, %v, %v; want find-1, 2, true", stream, v, ok, err)
	}
	for _, id := range []string{es.NewID(), "not-a-uuid", "", "\x00", strings.ToUpper(stored[0].ID)} {
		if _, _, ok, err := ss.FindEvent(ctx, id); ok || err != nil {
			t.Errorf("FindEvent(%q) = %v, %v; want not found, no error", id, ok, err)
		}
	}
}

// The counter is the decider the handler tests use: its decisions depend
// on its state, so a wrong state shows in the results.
type snapCounter struct {
	Total int      `json:"total"`
	Last  []string `json:"last"` // the last few notes, in order
}

type (
	snapAdd   struct{ N int }
	snapAdded struct {
		N     int    `json:"n"`
		Total int    `json:"total"`
		Note  string `json:"note"`
	}
)

var errSnapLimit = errors.New("estest: the counter would pass 1000")

func snapDecider() es.Decider[snapCounter, snapAdd, snapAdded] {
	return es.Decider[snapCounter, snapAdd, snapAdded]{
		Initial: func() snapCounter { return snapCounter{} },
		Decide: func(s snapCounter, c snapAdd) ([]snapAdded, error) {
			if s.Total+c.N > 1000 {
				return nil, errSnapLimit
			}
			return []snapAdded{{N: c.N, Total: s.Total + c.N, Note: fmt.Sprintf("%d after %d", c.N, len(s.Last))}}, nil
		},
		Evolve: func(s snapCounter, e snapAdded) snapCounter {
			last := append(s.Last[max(0, len(s.Last)-2):len(s.Last):len(s.Last)], e.Note)
			return snapCounter{Total: e.Total, Last: last}
		},
		SnapshotName:    snapName,
		SnapshotVersion: 1,
	}
}

func snapRegistry() *es.Registry {
	reg := es.NewRegistry()
	es.MustRegister[snapAdded](reg, "estest.SnapAdded")
	return reg
}

// snapName is the counter decider's snapshot name.
const snapName = "estest-counter"

func testSnapshotSameResults(t *testing.T, s es.Store, ss es.SnapshotStore) {
	ctx := context.Background()
	reg := snapRegistry()
	with := es.NewCommandHandler(s, reg, snapDecider(), es.HandlerConfig{SnapshotEvery: 3})
	without := es.NewCommandHandler(s, reg, snapDecider(), es.HandlerConfig{})
	const stream = "counter-1"
	check := func(step string) {
		t.Helper()
		a, va, err := with.Load(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		b, vb, err := without.Load(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(b, a); diff != "" || va != vb {
			t.Fatalf("%s: with snapshots (-without +with):\n%s\nversions %d and %d", step, diff, vb, va)
		}
	}
	for i := range 20 {
		res, err := with.Handle(ctx, es.NewID(), stream, snapAdd{N: i + 1})
		if err != nil {
			t.Fatal(err)
		}
		if res.Version != int64(i+1) || res.State.Total != (i+1)*(i+2)/2 {
			t.Fatalf("command %d: version %d, total %d", i, res.Version, res.State.Total)
		}
	}
	check("after 20 commands")
	snap, ok := loadSnap(t, ss, stream, snapName)
	if !ok || snap.Version < 15 {
		t.Fatalf("after 20 commands with SnapshotEvery 3 the snapshot is %+v (found %v), want one at version 15 or later", snap, ok)
	}

	// Snapshots that cannot be used are ignored, and the results stay the
	// same: garbage, another state version, a forged checksum, a version
	// past the end of the stream, a state from another stream.
	for _, name := range []string{"garbage", "not an envelope", "forged", "state version 2", "beyond the end"} {
		cur := currentVersion(t, s, stream)
		latest, _ := loadSnap(t, ss, stream, snapName)
		bad := map[string]es.Snapshot{
			"garbage":         {StreamID: stream, Name: snapName, Version: cur, StateVersion: 1, Data: []byte(`{"state":{"total":1}}`)},
			"not an envelope": {StreamID: stream, Name: snapName, Version: cur, StateVersion: 1, Data: []byte(`[1,2,3]`)},
			"forged": {StreamID: stream, Name: snapName, Version: cur, StateVersion: 1,
				Data: []byte(strings.Replace(string(latest.Data), `"total":`, `"total":9`, 1))},
			"state version 2": {StreamID: stream, Name: snapName, Version: cur, StateVersion: 2, Data: latest.Data},
			"beyond the end":  {StreamID: stream, Name: snapName, Version: cur + 1000, StateVersion: 1, Data: latest.Data},
		}[name]
		if err := ss.SaveSnapshot(ctx, bad); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		res, err := with.Handle(ctx, es.NewID(), stream, snapAdd{N: 2})
		if err != nil {
			t.Fatalf("%s snapshot: %v", name, err)
		}
		ref, v, err := without.Load(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(ref, res.State); diff != "" || res.Version != v {
			t.Fatalf("%s snapshot: the handler's result differs from a full fold (-full +handler):\n%s", name, diff)
		}
		check(name + " snapshot")
	}
	// The business rule still sees the true total.
	_, err := with.Handle(ctx, es.NewID(), stream, snapAdd{N: 1000})
	if !errors.Is(err, errSnapLimit) {
		t.Fatalf("a command over the limit: %v, want the limit's error", err)
	}
}

func currentVersion(t testing.TB, s es.Store, stream string) int64 {
	t.Helper()
	evs := readStream(t, s, stream, es.StreamQuery{Backward: true, Limit: 1})
	if len(evs) == 0 {
		return 0
	}
	return evs[0].Version
}

func testRepeatBeforeSnapshot(t *testing.T, s es.Store, ss es.SnapshotStore) {
	ctx := context.Background()
	reg := snapRegistry()
	h := es.NewCommandHandler(s, reg, snapDecider(), es.HandlerConfig{SnapshotEvery: 2})
	const stream = "counter-2"
	first := es.NewID()
	orig, err := h.Handle(ctx, first, stream, snapAdd{N: 7})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := h.Handle(ctx, es.NewID(), stream, snapAdd{N: i}); err != nil {
			t.Fatal(err)
		}
	}
	if snap, ok := loadSnap(t, ss, stream, snapName); !ok || snap.Version < 5 {
		t.Fatalf("no snapshot past the first command: %+v, %v", snap, ok)
	}
	again, err := h.Handle(ctx, first, stream, snapAdd{N: 7})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Repeated || again.Version != orig.Version || again.Position != orig.Position || !cmp.Equal(again.Events, orig.Events) {
		t.Fatalf("a repeat of a command before the snapshot = %+v, want Repeated with %+v", again, orig)
	}
	if v := currentVersion(t, s, stream); v != 11 {
		t.Fatalf("the repeat appended: version %d, want 11", v)
	}
	// A repeat whose decision would now be refused still gets its outcome.
	big := es.NewID()
	if _, err := h.Handle(ctx, big, stream, snapAdd{N: 900}); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if _, err := h.Handle(ctx, es.NewID(), stream, snapAdd{N: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if r, err := h.Handle(ctx, big, stream, snapAdd{N: 900}); err != nil || !r.Repeated {
		t.Fatalf("a repeat whose decision is now refused: %+v, %v; want Repeated", r, err)
	}
}

func testMultiStreamRepeatBeforeSnapshot(t *testing.T, s es.Store, ss es.SnapshotStore) {
	ctx := context.Background()
	reg := snapRegistry()
	h := es.NewMultiStreamHandler(s, reg, es.HandlerConfig{SnapshotEvery: 2})
	both := func(n int) func(context.Context, *es.Decision) error {
		return func(ctx context.Context, d *es.Decision) error {
			for _, stream := range []string{"counter-a", "counter-b"} {
				if _, err := es.DecideOn(ctx, d, snapDecider(), stream, snapAdd{N: n}); err != nil {
					return err
				}
			}
			return nil
		}
	}
	first := es.NewID()
	orig, err := h.Handle(ctx, first, both(3))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		if _, err := h.Handle(ctx, es.NewID(), both(i)); err != nil {
			t.Fatal(err)
		}
	}
	if snap, ok := loadSnap(t, ss, "counter-b", snapName); !ok || snap.Version < 4 {
		t.Fatalf("no snapshot past the first command: %+v, %v", snap, ok)
	}
	again, err := h.Handle(ctx, first, both(3))
	if err != nil {
		t.Fatal(err)
	}
	if !again.Repeated || !cmp.Equal(again.Streams, orig.Streams) {
		t.Fatalf("a repeat before the snapshot = %+v, want Repeated with %+v", again, orig)
	}
	for _, stream := range []string{"counter-a", "counter-b"} {
		if v := currentVersion(t, s, stream); v != 9 {
			t.Fatalf("%s at version %d after the repeat, want 9", stream, v)
		}
	}
}

// Two deciders with one state type fold one stream differently; each
// keeps its own snapshots.
func testTwoDecidersOneStream(t *testing.T, s es.Store, _ es.SnapshotStore) {
	ctx := context.Background()
	reg := snapRegistry()
	sum := snapDecider()
	count := snapDecider()
	count.SnapshotName = "estest-count"
	count.Evolve = func(c snapCounter, _ snapAdded) snapCounter { return snapCounter{Total: c.Total + 1} }
	h := es.NewCommandHandler(s, reg, sum, es.HandlerConfig{SnapshotEvery: 1})
	for range 5 {
		if _, err := h.Handle(ctx, es.NewID(), "counter-two", snapAdd{N: 10}); err != nil {
			t.Fatal(err)
		}
	}
	withSnaps := es.NewCommandHandler(s, reg, count, es.HandlerConfig{SnapshotEvery: 1})
	plain := es.NewCommandHandler(s, reg, count, es.HandlerConfig{})
	for range 2 { // the second load reads the count's own snapshot
		a, _, err := withSnaps.Load(ctx, "counter-two")
		if err != nil {
			t.Fatal(err)
		}
		b, _, err := plain.Load(ctx, "counter-two")
		if err != nil {
			t.Fatal(err)
		}
		if a.Total != 5 || b.Total != 5 {
			t.Fatalf("the count decider folded %d with snapshots and %d without, want 5: it read the sum's snapshot", a.Total, b.Total)
		}
	}
}

// A command first handled by one kind of handler and repeated through the
// other is still a repeat when its events lie before a snapshot.
func testRepeatAcrossHandlerKinds(t *testing.T, s es.Store, _ es.SnapshotStore) {
	ctx := context.Background()
	reg := snapRegistry()
	single := es.NewCommandHandler(s, reg, snapDecider(), es.HandlerConfig{SnapshotEvery: 1})
	multi := es.NewMultiStreamHandler(s, reg, es.HandlerConfig{SnapshotEvery: 1})
	viaMulti := func(stream string, n int) func(context.Context, *es.Decision) error {
		return func(ctx context.Context, d *es.Decision) error {
			_, err := es.DecideOn(ctx, d, snapDecider(), stream, snapAdd{N: n})
			return err
		}
	}
	first, second := es.NewID(), es.NewID()
	if _, err := single.Handle(ctx, first, "counter-kinds", snapAdd{N: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := multi.Handle(ctx, second, viaMulti("counter-kinds", 2)); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if _, err := single.Handle(ctx, es.NewID(), "counter-kinds", snapAdd{N: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if r, err := multi.Handle(ctx, first, viaMulti("counter-kinds", 1)); err != nil || !r.Repeated {
		t.Fatalf("a single-stream command repeated through the multi-stream handler: %+v, %v; want Repeated", r, err)
	}
	if r, err := single.Handle(ctx, second, "counter-kinds", snapAdd{N: 2}); err != nil || !r.Repeated {
		t.Fatalf("a multi-stream command repeated through the single-stream handler: %+v, %v; want Repeated", r, err)
	}
	if v := currentVersion(t, s, "counter-kinds"); v != 6 {
		t.Fatalf("version %d after the repeats, want 6", v)
	}
}
