// Package es is an event-sourcing library: streams of events with
// optimistic concurrency, a type registry with upcasters for schema
// versioning, deciders and command handling over one or several streams,
// subscriptions that never skip an event, a transactional outbox with a
// relay, and process managers with persisted deadlines.
//
// Package es is what application code imports. It depends on nothing but
// the standard library. Around it:
//
//   - esgo.dev/es/memory, esgo.dev/es/sqlite and esgo.dev/es/postgres are
//     the stores, as database/sql drivers are: memory for tests and
//     examples, SQLite as the embedded default, PostgreSQL for production;
//   - esgo.dev/es/estest holds given/when/then specs for deciders,
//     projections and process managers, the conformance suites every store
//     passes, the golden-schema check and a fake clock;
//   - esgo.dev/es/esprom reports what es does as Prometheus metrics, through
//     the observer interfaces defined here;
//   - esgo.dev/es/natsjs carries the outbox's messages over NATS JetStream,
//     for modules that run as separate services;
//   - esgo.dev/es/storekit is for authors of stores only, as
//     database/sql/driver is for driver authors.
//
// # Events and stores
//
// An [Event] is what a store holds: an envelope with the event's ID, its
// stream and version in that stream, its global position, its type name and
// schema version, JSON data and [Metadata]. A [Store] appends to one or
// several streams atomically, each with an [ExpectedVersion], and reads a
// stream or the global log as iterators. Application code works with plain
// Go values; a [Registry] turns them into [EventData] for appending and back
// into Go values when reading, upcasting old schema versions on the way
// ([UpcastFrom], [RenamedFrom]).
//
// A store may offer more than [Store]. Like database/sql's optional driver
// interfaces, each capability is a small interface that es finds by type
// assertion:
//
//   - [Notifier]: signals appends, so that subscriptions need not poll;
//   - [HeadReader]: tells the position of the last readable event, for lag
//     and for [Subscription.WaitCaughtUp];
//   - [CheckpointStore]: keeps subscriptions' checkpoints ([AtLeastOnce]);
//   - [Outbox]: enqueues integration messages in the transaction of the
//     events that cause them, for a [Relay] to deliver;
//   - [MessageReader]: looks the outbox's messages up by ID, delivered
//     ones too, for tools that show what a message caused;
//   - [SnapshotStore]: keeps snapshots of stream states, for command
//     handlers whose streams grow long ([HandlerConfig].SnapshotEvery).
//
// The memory, SQLite and PostgreSQL stores implement all six, and offer an
// [Inbox] and a [Locker].
//
// # Deciders and commands
//
// A [Decider] is the functional form of an aggregate: an initial state, a
// Decide function from state and command to new events, and an Evolve
// function that folds an event into the state. A [CommandHandler] loads a
// stream, decides, and appends with the loaded version as the expectation,
// retrying on a concurrency conflict; it is idempotent by command ID. A
// [MultiStreamHandler] does the same for a decision over several streams,
// appended atomically.
//
// # Following the log
//
// A [Subscription] feeds a [Consumer] every event of the global log (or of
// some categories and types), in order, from the consumer's checkpoint on,
// and never skips one. Consumers that write a read model commit their
// checkpoint with their changes (the SQL stores provide such consumers);
// [AtLeastOnce] adapts a plain handler.
//
// # Messages between modules
//
// A [Message] is the public contract between modules, as opposed to a
// module's internal events. Messages are written to an [Outbox] with the
// events that cause them and delivered by a [Relay] to a [Publisher] (an
// in-process [Bus], or a broker), at least once and in order per key;
// consumers deduplicate with an [Inbox]. A [ProcessManager], run by a
// [ProcessHandler], reacts to messages with events of its own, messages to
// send and deadlines (scheduled messages) — all committed atomically.
//
// # Configuration, errors and concurrency
//
// Every component takes a configuration struct ([HandlerConfig],
// [SubscriptionConfig], [RelayConfig], [ProcessConfig]; the stores have
// their own Config) whose zero value is a working configuration: each field
// documents its default. A configuration that cannot work is reported with
// [ErrInvalidConfig]. Errors wrap the sentinels in this package; test for
// them with errors.Is and errors.As.
//
// Stores, [Registry], [CommandHandler], [MultiStreamHandler],
// [ProcessHandler], [Relay], [Bus] and [Subscription] are safe for
// concurrent use; run each Relay and Subscription once at a time.
package es
