package es_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/memory"
)

type plainState struct {
	At     time.Time
	Counts map[string][]int
	Nested struct{ Names [2]string }
}

type pointerState struct{ Items map[string]*int }

type interfaceState struct{ Last any }

// A state JSON cannot carry faithfully (shared pointers, interfaces) is
// refused up front rather than snapshotted wrongly.
func TestSnapshotsNeedPlainState(t *testing.T) {
	ctx := context.Background()
	store := memory.New(memory.Config{})
	reg := es.NewRegistry()
	cfg := es.HandlerConfig{SnapshotEvery: 10}
	plain := es.NewCommandHandler(store, reg, es.Decider[plainState, any, any]{
		Initial: func() plainState { return plainState{} }, SnapshotName: "plain"}, cfg)
	if _, _, err := plain.Load(ctx, "s-1"); err != nil {
		t.Fatalf("plain data: %v", err)
	}
	withPointers := es.NewCommandHandler(store, reg, es.Decider[pointerState, any, any]{
		Initial: func() pointerState { return pointerState{} }, SnapshotName: "pointers"}, cfg)
	if _, err := withPointers.Handle(ctx, "", "s-1", nil); !errors.Is(err, es.ErrInvalidConfig) {
		t.Fatalf("a state with pointers: %v, want ErrInvalidConfig", err)
	}
	withInterface := es.NewMultiStreamHandler(store, reg, cfg)
	_, err := withInterface.Handle(ctx, "", func(ctx context.Context, d *es.Decision) error {
		_, err := es.Load(ctx, d, es.Decider[interfaceState, any, any]{
			Initial: func() interfaceState { return interfaceState{} }, SnapshotName: "iface"}, "s-1")
		return err
	})
	if !errors.Is(err, es.ErrInvalidConfig) {
		t.Fatalf("a state with an interface: %v, want ErrInvalidConfig", err)
	}
	// Without a snapshot name the same deciders run, folded in full.
	if _, _, err := es.NewCommandHandler(store, reg, es.Decider[pointerState, any, any]{
		Initial: func() pointerState { return pointerState{} }}, cfg).Load(ctx, "s-1"); err != nil {
		t.Fatalf("no snapshot name: %v", err)
	}
}
