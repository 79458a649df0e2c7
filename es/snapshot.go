package es

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"time"
)

// Snapshot is a stream's state as a command handler folded it up to a
// version, saved so that later loads fold only the events after it.
// Snapshots are an optimisation only: a handler ignores a snapshot it
// cannot use (missing, of another state version, unreadable, altered) and
// folds the stream from its start, with the same result.
type Snapshot struct {
	// StreamID is the stream whose state this is.
	StreamID string
	// Name is the decider's [Decider].SnapshotName: several deciders may
	// fold one stream.
	Name string
	// Version is the stream version the state includes.
	Version int64
	// StateVersion is the decider's [Decider].SnapshotVersion when the
	// snapshot was taken.
	StateVersion int
	// Data is the state, encoded by the handler.
	Data json.RawMessage
}

// SnapshotStore is implemented by stores that keep snapshots for command
// handlers configured with [HandlerConfig].SnapshotEvery. The memory,
// SQLite and PostgreSQL stores implement it.
type SnapshotStore interface {
	// SaveSnapshot stores s as the snapshot of its stream and name,
	// replacing the one stored. (Any snapshot a handler saves is a true
	// state of the stream, so an older one replacing a newer costs only
	// speed; one that claims more than the stream holds must be
	// replaceable.) Invalid input (an invalid stream ID or name, a version
	// below 1, data that is not JSON) fails with [ErrInvalidAppend].
	SaveSnapshot(ctx context.Context, s Snapshot) error
	// LoadSnapshot returns the snapshot of the stream and name; ok is
	// false when there is none.
	LoadSnapshot(ctx context.Context, streamID, name string) (s Snapshot, ok bool, err error)
	// FindEvent returns the stream and version of the stored event with
	// the given ID; ok is false when there is none. A handler that loads
	// from a snapshot uses it to recognise a repeated command whose events
	// lie before the snapshot, without reading the stream from its start.
	FindEvent(ctx context.Context, eventID string) (streamID string, version int64, ok bool, err error)
}

// snapshotter takes and reads a handler's snapshots; nil when the handler
// keeps none.
type snapshotter struct {
	events Store
	store  SnapshotStore
	every  int
}

func newSnapshotter(store Store, every int) (*snapshotter, error) {
	switch {
	case every < 0:
		return nil, fmt.Errorf("%w: SnapshotEvery %d is negative", ErrInvalidConfig, every)
	case every == 0:
		return nil, nil
	}
	ss, ok := store.(SnapshotStore)
	if !ok {
		return nil, fmt.Errorf("%w: SnapshotEvery is set, but the store %T keeps no snapshots", ErrInvalidConfig, store)
	}
	return &snapshotter{events: store, store: ss, every: every}, nil
}

// snapshotEnvelope is what Snapshot.Data holds: the state and a checksum
// binding it to its stream, name and version, so that a snapshot edited
// or copied by hand is recognised and ignored.
type snapshotEnvelope struct {
	Sum   string          `json:"sum"`
	State json.RawMessage `json:"state"`
}

func snapshotSum(s Snapshot, state []byte) string {
	h := sha256.New()
	for _, part := range []string{s.StreamID, s.Name, strconv.FormatInt(s.Version, 10), strconv.Itoa(s.StateVersion)} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	h.Write(state)
	return hex.EncodeToString(h.Sum(nil))
}

// checkSnapshotState refuses a decider whose state JSON cannot carry
// faithfully: pointers and interfaces (their sharing is lost), channels
// and functions. time.Time, although it holds a pointer, encodes exactly.
func checkSnapshotState[S, C, E any](d Decider[S, C, E]) error {
	if d.SnapshotName == "" {
		return nil
	}
	if err := plainData(reflect.TypeFor[S](), map[reflect.Type]bool{}); err != nil {
		return fmt.Errorf("%w: decider %q: its state %v cannot be snapshotted: %v", ErrInvalidConfig, d.SnapshotName, reflect.TypeFor[S](), err)
	}
	return nil
}

func plainData(t reflect.Type, seen map[reflect.Type]bool) error {
	if seen[t] || t == reflect.TypeFor[time.Time]() {
		return nil
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64, reflect.String:
		return nil
	case reflect.Array, reflect.Slice:
		return plainData(t.Elem(), seen)
	case reflect.Map:
		if err := plainData(t.Key(), seen); err != nil {
			return err
		}
		return plainData(t.Elem(), seen)
	case reflect.Struct:
		for f := range t.Fields() {
			if err := plainData(f.Type, seen); err != nil {
				return fmt.Errorf("field %s: %w", f.Name, err)
			}
		}
		return nil
	}
	return fmt.Errorf("%v is a %v", t, t.Kind())
}

// loadSnapshot returns the state of the stream's usable snapshot and its
// version, or ok false.
func loadSnapshot[S, C, E any](ctx context.Context, sn *snapshotter, d Decider[S, C, E], streamID string) (state S, version int64, ok bool, err error) {
	if sn == nil || d.SnapshotName == "" {
		return state, 0, false, nil
	}
	if err := checkSnapshotState(d); err != nil {
		return state, 0, false, err
	}
	s, found, err := sn.store.LoadSnapshot(ctx, streamID, d.SnapshotName)
	if err != nil || !found {
		return state, 0, false, err
	}
	if s.StreamID != streamID || s.Name != d.SnapshotName || s.StateVersion != d.SnapshotVersion || s.Version < 1 {
		return state, 0, false, nil
	}
	var env snapshotEnvelope
	if json.Unmarshal(s.Data, &env) != nil || env.Sum != snapshotSum(s, env.State) {
		return state, 0, false, nil
	}
	if json.Unmarshal(env.State, &state) != nil {
		var zero S
		return zero, 0, false, nil
	}
	return state, s.Version, true, nil
}

// saveSnapshot saves state as the stream's snapshot at version, if it
// survives encoding: a state whose JSON form loses something (unexported
// fields, say) is never saved, since loading it would change results. A
// failure to save is not the command's failure: its events are stored,
// and a later command tries again.
func saveSnapshot[S, C, E any](ctx context.Context, sn *snapshotter, d Decider[S, C, E], streamID string, state S, version int64) {
	if sn == nil || d.SnapshotName == "" || version < 1 {
		return
	}
	data, err := json.Marshal(state)
	if err != nil {
		return
	}
	var back S
	if json.Unmarshal(data, &back) != nil || !reflect.DeepEqual(back, state) {
		return
	}
	s := Snapshot{StreamID: streamID, Name: d.SnapshotName, Version: version, StateVersion: d.SnapshotVersion}
	env, err := json.Marshal(snapshotEnvelope{Sum: snapshotSum(s, data), State: data})
	if err != nil {
		return
	}
	s.Data = env
	_ = sn.store.SaveSnapshot(ctx, s)
}

// earlierOutcome finds the events a command appended to streamID at or
// before the snapshot's version, through the ID of its first event: a
// CommandHandler derives it from the command ID, a MultiStreamHandler from
// the command and stream IDs, and a command may have moved between them.
func earlierOutcome[E any](ctx context.Context, sn *snapshotter, reg *Registry, streamID, commandID string, upTo int64) (events []E, version, position int64, err error) {
	var from int64
	for _, id := range []string{DeriveID(commandID, 0), DeriveID(commandID+"@"+streamID, 0)} {
		stream, v, ok, err := sn.store.FindEvent(ctx, id)
		if err != nil {
			return nil, 0, 0, err
		}
		if ok && stream == streamID && v <= upTo {
			from = v
			break
		}
	}
	if from == 0 {
		return nil, 0, 0, nil
	}
	for e, err := range sn.events.ReadStream(ctx, streamID, StreamQuery{From: from}) {
		if err != nil {
			return nil, 0, 0, fmt.Errorf("es: load stream %q: %w", streamID, err)
		}
		if e.Version > upTo || e.Metadata.CausationID != commandID {
			break // the events after the snapshot are folded by the caller
		}
		ev, err := Decode[E](reg, e)
		if err != nil {
			return nil, 0, 0, fmt.Errorf("es: load stream %q at version %d: %w", streamID, e.Version, err)
		}
		events = append(events, ev)
		version, position = e.Version, e.Position
	}
	return events, version, position, nil
}

// folded is a stream as a decider folded it, with the events a command
// appended to it earlier, if any.
type folded[S, E any] struct {
	state                     S
	version                   int64
	previous                  []E // the events the command appended before
	prevVersion, prevPosition int64
}

// foldStream folds streamID with d, from its snapshot when sn allows one,
// and collects the events that commandID appended to it before.
func foldStream[S, C, E any](ctx context.Context, store Store, reg *Registry, sn *snapshotter, d Decider[S, C, E],
	streamID, commandID string) (folded[S, E], error) {
	state, from, ok, err := loadSnapshot(ctx, sn, d, streamID)
	if err != nil {
		return folded[S, E]{}, fmt.Errorf("es: load stream %q: %w", streamID, err)
	}
	if ok {
		f := folded[S, E]{state: state, version: from}
		if commandID != "" {
			if f.previous, f.prevVersion, f.prevPosition, err = earlierOutcome[E](ctx, sn, reg, streamID, commandID, from); err != nil {
				return f, err
			}
		}
		f, valid, err := foldFrom(ctx, store, reg, d, streamID, commandID, f, from)
		if err != nil || valid {
			if err == nil && f.version-from >= int64(sn.every) {
				saveSnapshot(ctx, sn, d, streamID, f.state, f.version)
			}
			return f, err
		}
		// The stream does not reach the snapshot's version: the snapshot
		// is not this stream's, whatever it says. Fold from the start.
	}
	f, _, err := foldFrom(ctx, store, reg, d, streamID, commandID, folded[S, E]{state: d.Initial()}, 0)
	if err == nil && sn != nil && f.version >= int64(sn.every) {
		saveSnapshot(ctx, sn, d, streamID, f.state, f.version)
	}
	return f, err
}

// foldFrom folds the stream's events after version from into f. From a
// snapshot (from > 0) it reads the snapshot's own last event too, to check
// that the stream reaches it; valid is false when it does not.
func foldFrom[S, C, E any](ctx context.Context, store Store, reg *Registry, d Decider[S, C, E],
	streamID, commandID string, f folded[S, E], from int64) (_ folded[S, E], valid bool, err error) {
	valid = from == 0
	for e, err := range store.ReadStream(ctx, streamID, StreamQuery{From: max(from, 1)}) {
		if err != nil {
			return f, false, fmt.Errorf("es: load stream %q: %w", streamID, err)
		}
		if !valid {
			if e.Version != from {
				return f, false, nil
			}
			valid = true
			continue
		}
		ev, err := Decode[E](reg, e)
		if err != nil {
			return f, false, fmt.Errorf("es: load stream %q at version %d: %w", streamID, e.Version, err)
		}
		f.state = d.Evolve(f.state, ev)
		f.version = e.Version
		if commandID != "" && e.Metadata.CausationID == commandID {
			f.previous = append(f.previous, ev)
			f.prevVersion, f.prevPosition = e.Version, e.Position
		}
	}
	return f, valid, nil
}
