// Package postgres is the PostgreSQL [es.Store]: the production store, for
// many application processes sharing one database. It uses pgx/v5 through
// a pgxpool.Pool that the caller owns.
//
// Create the tables once with [Migrate] (idempotent, safe to run from
// several processes at once); all tables live in one schema ([Config].Schema,
// default "es"). The SQL is in docs/postgres.md. A schema that a newer
// release has migrated is refused with [es.ErrNewerSchema], by Migrate and
// by a store's first use of its tables without Migrate.
//
// # Appends
//
// An append is one READ COMMITTED transaction. It takes its streams'
// advisory locks in one global order (so multi-stream appends cannot
// deadlock), reserves positions for its events, reads the streams'
// versions, looks up the request's event IDs for idempotency
// ([storekit.MatchStored]), checks the expectations, inserts all events
// with one INSERT ... SELECT FROM unnest(...) and upserts the streams'
// versions. It takes two round trips: BEGIN travels in the first pipelined
// batch, COMMIT in the second, followed by a NOTIFY in a transaction of its
// own (a NOTIFY inside the append's transaction would make commits wait for
// one another). [Store.AppendTx] runs the same body inside a transaction of
// the caller's, so that other writes can commit atomically with the events.
//
// # No skipped events
//
// A sequence hands out positions when a transaction writes, not when it
// commits, so a transaction that started first can commit last, with
// lower positions than events already visible. A reader that had moved
// past them would never see them. Each event row therefore records its
// transaction's ID (tx_id, an xid8), and [Store.ReadAll] returns only rows
// with tx_id below the oldest writer still in flight: the oldest
// transaction in the snapshot's in-flight list whose backend pg_locks
// shows holding the store's shared writer lock (every append and enqueue
// takes it before it gets its ID, and keeps it to its end), so that
// transactions that write nothing to the store, in this database or
// another, hold nothing back. The argument, and why the backend must be
// matched by pid and not by virtualtransaction, is at horizonCTE.
//
// That filter alone is not enough: a transaction ID is assigned at a
// transaction's first write, and two appends can take their IDs in one
// order and their positions in the other. An append therefore takes a
// short advisory lock, gets its transaction ID and reserves all its
// positions under it, and releases it at once (by rolling back to a
// savepoint: the ID and the sequence values survive). Among appends, a
// lower transaction ID then always means lower positions, and the filter
// keeps exactly a prefix of the eventual log. The lock is held for
// microseconds and does not serialise the appends themselves. Each append
// first takes its streams' advisory locks, so that within a stream the
// global order is also the version order.
//
// # Projections
//
// A [Projection] is a read model in tables of the store's database,
// applied asynchronously by [Store.Consumer] (changes and checkpoint in
// one transaction), or inline in every append ([Config].Inline), and rebuilt
// into fresh tables and swapped in by [Store.Rebuild]. [Store.Locker]
// grants leases on session advisory locks, each held by a dedicated
// connection outside the pool, for the Locker of an [es.SubscriptionConfig] or an [es.RelayConfig].
//
// The price is latency: an append that stays open holds ReadAll back
// until it ends (as does any transaction while a prepared transaction
// exists in the cluster). Keep transactions short, and follow the log
// with [Store.Notify] plus a polling fallback.
//
// # Outbox and inbox
//
// The store is an [es.Outbox]: [Store.AppendEnqueue] (and
// [Store.AppendEnqueueTx]) write messages to the outbox table in the
// events' transaction, and an [es.Relay] delivers them. An enqueuing
// transaction draws its outbox sequence numbers under the same short
// advisory lock as the positions, together with its transaction ID, and
// [Store.Due] returns only rows of transactions older than every enqueuer
// still in flight (each holds the shared writer lock that Due looks for
// in pg_locks): as for ReadAll, it sees a prefix of the outbox, so a
// message is never handed out while an earlier one of its key may still
// commit, yet transactions that enqueue nothing do not delay it.
// Consumers make their effects exactly once by recording the message with
// [Store.InboxTx] in the transaction that applies them (or through
// [Store.Inbox]); delivery itself is at least once.
//
// # Reads
//
// Reads are iterators that fetch 500 events per query with keyset
// pagination and hold no connection while the caller's loop body runs.
package postgres
