// Package storekit is for authors of event stores. Application code uses
// package es and a store (memory, sqlite, postgres); it never needs this
// package.
//
// storekit sits beside es as database/sql/driver sits beside database/sql:
// es defines what a store promises (the [es.Store] interface and its
// optional interfaces), storekit holds the pieces every store needs to keep
// those promises the same way, so that the three stores share one copy:
//
//   - [CheckAppend], [CheckAppendEnqueue] and [CheckEnqueue] validate a
//     request before anything is written, with the same answer on every
//     store;
//   - [MatchStored] and [SamePayload] turn an append whose event IDs are
//     already stored into an idempotent repeat, or an
//     [es.ErrDuplicateEventID];
//   - [PruneQuery] drops from a read's filters the values no event can
//     have, so that they match nothing on every store;
//   - [Broadcaster] fans one "events were appended" signal out to every
//     channel handed out by a store's Notify ([es.Notifier]);
//   - [LocalLocker] grants named leases within one process ([es.Locker]);
//   - [ObserveAppend] reports an append to a store's [es.StoreObserver];
//   - [DecodeMetadata] decodes an event's metadata as encoding/json would,
//     without its cost in the common case, for stores' read loops.
//
// A new store proves itself with the conformance suites in
// esgo.dev/es/estest (TestStore, TestOutbox, TestStoreObserver); see
// docs/writing-a-store.md.
package storekit
