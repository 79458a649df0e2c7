// Package memory is an in-memory [es.Store], for tests, examples and
// programs that need no durability. It passes the same conformance suite
// as the durable stores.
package memory

import (
	"context"
	"fmt"
	"iter"
	"maps"
	"slices"
	"sync"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/storekit"
)

// Store is an in-memory event store, safe for concurrent use.
//
// Appends take a lock; reads take it only to note how far the log reaches
// and then iterate without it, so a slow reader never blocks writers.
// Stored events are never modified, which is what makes that safe.
type Store struct {
	cfg    Config
	cfgErr error // a Config that cannot work, reported by every append
	notify *storekit.Broadcaster
	inbox  inbox

	mu      sync.RWMutex
	log     []es.Event       // position p is log[p-1]
	streams map[string][]int // stream ID -> indexes into log, in version order
	ids     map[string]int   // event ID -> index into log

	checkpoints map[string]int64
	snapshots   map[[2]string]es.Snapshot // by stream ID and name
	outbox      []*outboxEntry
	outboxIDs   map[string]*outboxEntry
}

// Config configures a [Store]. The zero value is a working configuration.
type Config struct {
	// Clock stamps RecordedAt (default [es.SystemClock]).
	Clock es.Clock
	// Inline are projections called, in order, inside every append.
	Inline []InlineProjection
	// Observer, when set, learns of every append (esgo.dev/es/esprom has
	// one for Prometheus).
	Observer es.StoreObserver
}

// InlineProjection is called inside Append, under the store's lock, with
// the events about to be stored (versions and positions assigned). If it
// returns an error the append fails and nothing is stored, so a read model
// it keeps is always exactly as current as the store. It must not call the
// store.
type InlineProjection func(ctx context.Context, events []es.Event) error

// New returns an empty store. A configuration that cannot work (a nil
// inline projection) makes every append fail with an error wrapping
// [es.ErrInvalidConfig], as New returns no error.
func New(cfg Config) *Store {
	if cfg.Clock == nil {
		cfg.Clock = es.SystemClock{}
	}
	var cfgErr error
	if i := slices.IndexFunc(cfg.Inline, func(p InlineProjection) bool { return p == nil }); i >= 0 {
		cfgErr = fmt.Errorf("%w: memory: inline projection %d is nil", es.ErrInvalidConfig, i)
	}
	return &Store{
		cfg:     cfg,
		cfgErr:  cfgErr,
		notify:  storekit.NewBroadcaster(nil),
		streams: make(map[string][]int),
		ids:     make(map[string]int),

		checkpoints: make(map[string]int64),
		outboxIDs:   make(map[string]*outboxEntry),
	}
}

// Append implements [es.Store].
func (s *Store) Append(ctx context.Context, appends ...es.StreamAppend) ([]es.AppendResult, error) {
	return s.AppendEnqueue(ctx, es.Enqueue{}, appends...)
}

// AppendEnqueue implements [es.Outbox].
func (s *Store) AppendEnqueue(ctx context.Context, enq es.Enqueue, appends ...es.StreamAppend) (res []es.AppendResult, err error) {
	start := time.Now()
	n := 0
	defer func() { storekit.ObserveAppend(s.cfg.Observer, start, n, err) }()
	if s.cfgErr != nil {
		return nil, s.cfgErr
	}
	if err := storekit.CheckAppendEnqueue(enq, appends); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	s.mu.Lock()
	defer s.mu.Unlock()

	stored := make(map[string]es.Event)
	for _, a := range appends {
		for _, e := range a.Events {
			if i, ok := s.ids[e.ID]; ok {
				stored[e.ID] = s.log[i]
			}
		}
	}
	res, replay, err := storekit.MatchStored(appends, stored, func(id string) int64 { return int64(len(s.streams[id])) })
	if err != nil || replay {
		return res, err
	}
	for _, a := range appends {
		if err := a.Expected.Check(a.StreamID, int64(len(s.streams[a.StreamID]))); err != nil {
			return nil, err
		}
	}

	// Record the events first without touching the store, so that an
	// inline projection can refuse them and leave nothing behind.
	now, err := storekit.RecordedAt(s.cfg.Clock)
	if err != nil {
		return nil, err
	}
	res = make([]es.AppendResult, len(appends))
	var recorded []es.Event
	next := int64(len(s.log))
	for i, a := range appends {
		version := int64(len(s.streams[a.StreamID]))
		res[i] = es.AppendResult{StreamID: a.StreamID, Version: version}
		for _, e := range a.Events {
			version++
			next++
			recorded = append(recorded, es.Event{
				ID: e.ID, StreamID: a.StreamID, Version: version, Position: next,
				Type: e.Type, SchemaVersion: e.SchemaVersion,
				Data: slices.Clone(e.Data), Metadata: cloneMetadata(e.Metadata), RecordedAt: now,
			})
			res[i].Version, res[i].Position = version, next
		}
	}
	for _, apply := range s.cfg.Inline {
		if err := apply(ctx, slices.Clone(recorded)); err != nil {
			return nil, fmt.Errorf("memory: inline projection: %w", err)
		}
	}
	for _, e := range recorded {
		s.log = append(s.log, e)
		s.streams[e.StreamID] = append(s.streams[e.StreamID], len(s.log)-1)
		s.ids[e.ID] = len(s.log) - 1
	}
	n = len(recorded)
	s.enqueue(enq)
	s.notify.Broadcast()
	return res, nil
}

// Notify implements [es.Notifier].
func (s *Store) Notify(ctx context.Context) <-chan struct{} { return s.notify.Notify(ctx) }

// copyEvent returns e with its own copies of Data and Extra, so callers
// cannot change stored events through what they read.
func copyEvent(e es.Event) es.Event {
	e.Data = slices.Clone(e.Data)
	e.Metadata = cloneMetadata(e.Metadata)
	return e
}

func cloneMetadata(md es.Metadata) es.Metadata {
	if md.Extra != nil {
		md.Extra = maps.Clone(md.Extra)
	}
	return md
}

// ReadStream implements [es.Store].
func (s *Store) ReadStream(ctx context.Context, streamID string, q es.StreamQuery) iter.Seq2[es.Event, error] {
	return func(yield func(es.Event, error) bool) {
		s.mu.RLock()
		log, idx := s.log, s.streams[streamID]
		s.mu.RUnlock()

		n := int64(len(idx))
		from, step := max(q.From, 1), int64(1)
		if q.Backward {
			from, step = n, -1
			if q.From > 0 {
				from = min(q.From, n)
			}
		}
		count := 0
		for v := from; v >= 1 && v <= n; v += step {
			if q.Limit > 0 && count == q.Limit {
				return
			}
			if err := ctx.Err(); err != nil {
				yield(es.Event{}, err)
				return
			}
			if !yield(copyEvent(log[idx[v-1]]), nil) {
				return
			}
			count++
		}
	}
}

// ReadAll implements [es.Store].
func (s *Store) ReadAll(ctx context.Context, q es.AllQuery) iter.Seq2[es.Event, error] {
	return func(yield func(es.Event, error) bool) {
		s.mu.RLock()
		log := s.log
		s.mu.RUnlock()

		count := 0
		for i := max(q.After, 0); i < int64(len(log)); i++ {
			if q.Limit > 0 && count == q.Limit {
				return
			}
			if err := ctx.Err(); err != nil {
				yield(es.Event{}, err)
				return
			}
			if !storekit.MatchesQuery(q, log[i]) {
				continue
			}
			if !yield(copyEvent(log[i]), nil) {
				return
			}
			count++
		}
	}
}

// Head implements [es.HeadReader].
func (s *Store) Head(context.Context) (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return int64(len(s.log)), nil
}

// LoadCheckpoint implements [es.CheckpointStore].
func (s *Store) LoadCheckpoint(_ context.Context, name string) (int64, error) {
	if err := storekit.CheckName("checkpoint name", name); err != nil {
		return 0, fmt.Errorf("memory: load checkpoint: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.checkpoints[name], nil
}

// SaveCheckpoint implements [es.CheckpointStore].
func (s *Store) SaveCheckpoint(_ context.Context, name string, position int64) error {
	if err := storekit.CheckName("checkpoint name", name); err != nil {
		return fmt.Errorf("memory: save checkpoint: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checkpoints[name] = position
	return nil
}

// SaveSnapshot implements [es.SnapshotStore].
func (s *Store) SaveSnapshot(ctx context.Context, snap es.Snapshot) error {
	if err := storekit.CheckSnapshot(snap); err != nil {
		return fmt.Errorf("memory: save snapshot: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := [2]string{snap.StreamID, snap.Name}
	if s.snapshots == nil {
		s.snapshots = make(map[[2]string]es.Snapshot)
	}
	snap.Data = slices.Clone(snap.Data)
	s.snapshots[key] = snap
	return nil
}

// LoadSnapshot implements [es.SnapshotStore].
func (s *Store) LoadSnapshot(ctx context.Context, streamID, name string) (es.Snapshot, bool, error) {
	if err := ctx.Err(); err != nil {
		return es.Snapshot{}, false, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	snap, ok := s.snapshots[[2]string{streamID, name}]
	snap.Data = slices.Clone(snap.Data)
	return snap, ok, nil
}

// FindEvent implements [es.SnapshotStore].
func (s *Store) FindEvent(ctx context.Context, eventID string) (string, int64, bool, error) {
	if err := ctx.Err(); err != nil {
		return "", 0, false, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	i, ok := s.ids[eventID]
	if !ok {
		return "", 0, false, nil
	}
	return s.log[i].StreamID, s.log[i].Version, true, nil
}
