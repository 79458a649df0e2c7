// Package estest helps test code built on es, as net/http/httptest helps
// test HTTP code.
//
//   - [ForDecider] makes given/when/then specs for an [es.Decider]: given
//     these events, when this command, then these events (or this error,
//     or nothing). It is built once per test file, and each test starts a
//     spec with [DeciderSpecs.Given].
//   - [ForProcess] does the same for an [es.ProcessManager], with a fake
//     clock that fires deadlines without sleeping.
//   - [Projection] runs given/then specs against a read model; it can
//     redeliver every event through the read model's consumer
//     ([ProjectionSpec.Redelivered]) or apply it twice with the
//     projection's own code ([ProjectionSpec.AppliedTwice]). The SQL
//     stores' read models are adapted by esgo.dev/es/sqlite/sqlitetest and
//     esgo.dev/es/postgres/pgtest.
//   - [TestStore], [TestOutbox] and [TestStoreMetrics] are the conformance
//     suites every store must pass.
//   - [GoldenSchema] keeps the JSON of every registered event type and
//     schema version in testdata, so that changing an event's shape without
//     a new version and an upcaster fails the tests.
//   - [FakeClock] is an [es.Clock] that tests set and move.
//
// Misuse is loud: a spec that never reaches a Then… fails the test that
// started it, when that test ends, rather than pass without checking
// anything. Spec failures print the history, what was done and a go-cmp
// diff (-want +got) that names the fields that differ.
package estest
