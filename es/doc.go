// Package es is an event-sourcing library: streams of events with optimistic
// concurrency, a type registry with upcasters for schema versioning, deciders
// and command handling.
//
// The package defines the concepts and the [Store] interface; stores live in
// their own packages, as database/sql drivers do:
//
//   - esgo.dev/es/memory: in memory, for tests and examples;
//   - esgo.dev/es/sqlite: one SQLite file, the embedded default;
//   - esgo.dev/es/postgres: PostgreSQL, the production store.
//
// Test helpers (given/when/then specs, the store conformance suite, the
// golden-schema check and a fake clock) live in esgo.dev/es/estest.
//
// # Events
//
// An [Event] is what a store holds: an envelope with the event's ID, its
// stream and version in that stream, its global position, its type name and
// schema version, JSON data and [Metadata]. Application code works with plain
// Go values; a [Registry] turns them into [EventData] for appending and back
// into Go values when reading, upcasting old schema versions on the way.
//
// # Deciders and commands
//
// A [Decider] is the functional form of an aggregate: an initial state, a
// Decide function from state and command to new events, and an Evolve
// function that folds an event into the state. A [CommandHandler] loads a
// stream, decides, and appends with the loaded version as the expectation,
// retrying on a concurrency conflict; it is idempotent by command ID.
package es
