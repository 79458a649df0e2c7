// Package estest helps test code built on es, as net/http/httptest helps
// test HTTP code.
//
//   - [Decider] runs given/when/then specs against an [es.Decider]:
//     given these events, when this command, then these events (or this
//     error, or nothing).
//   - [Projection] runs given/then specs against a read model, optionally
//     delivering every event twice to prove it idempotent.
//   - [TestStore] is the conformance suite every [es.Store] must pass.
//   - [GoldenSchema] keeps the JSON of every registered event type and
//     schema version in testdata, so that changing an event's shape without
//     a new version and an upcaster fails the tests.
//   - [FakeClock] is an [es.Clock] that tests set and move.
//
// Spec failures print a go-cmp diff (-want +got) that names the fields
// that differ.
package estest
