package postgres

import (
	"strconv"
	"strings"
)

// horizonCTE is a WITH clause that defines horizon(h), the bar below
// which ReadAll, Head and Due return rows (tx_id < h): the ID of the
// oldest transaction in flight that may be writing to the store (an append
// or an enqueue), or, if there is none, the snapshot's xmax. Every row of
// a transaction below h is visible in the statement's snapshot S or rolled
// back for good, and since writers get their IDs in the order of their
// positions and seqs (the reservation lock, see appendTx), the rows below
// h are a prefix of the log and of the outbox.
//
// S is the statement's snapshot: pg_current_snapshot() returns the active
// snapshot, which in a plain or extended-protocol query is the portal's,
// the one the scans use. pg_locks is read after S was taken (the
// materialized CTEs run during execution).
//
// Which in-flight transactions of S are left out ("idle"): those that
// pg_locks shows holding their own transaction ID's lock in a backend
// (pid) that holds no writer lock (the shared advisory lock every append
// and enqueue takes before it gets an ID and keeps to its end). Why that
// is safe:
//
//   - pg_locks copies the main lock table under all its partition locks,
//     so it is one moment of it: the locks a backend holds are the locks
//     it held at that moment.
//   - A writer takes the writer lock before its ID (so before the ID's
//     lock), and at its end PostgreSQL releases the standard locks, the
//     ID's among them, before the advisory ones (ProcReleaseLocks). So at
//     no moment does a writer's backend hold its ID's lock without the
//     writer lock.
//   - A writer that ended between S and the read of pg_locks holds no ID
//     lock any more, and is kept (S may not see its rows). So is one whose
//     ID is already in S but whose ID lock is not yet in the lock table.
//
// The backend must be matched by pid, never by virtualtransaction: that
// column is not a property of the lock but of the backend at the moment
// each row is copied (proc->lxid), and a committing backend resets it to
// 0 in ProcArrayEndTransaction, before it releases its locks and while
// pg_locks may be halfway through its copy. A committing writer then
// showed its ID lock under "B/n" and its writer lock under "B/0", looked
// idle, and was left out while S did not see its rows: the skipped events
// of docs/horizon-notes.md. pid does not change.
//
// Prepared transactions have no pid (NULL in pg_locks), and PREPARE and
// COMMIT PREPARED move or release their locks partition by partition and
// in no fixed order, so while any lock is held by a prepared transaction
// (pid IS NULL), no transaction counts as idle: the horizon is then
// pg_snapshot_xmin(S), the old rule.
//
// pg_locks shows transaction IDs as 32-bit xids; the xid8 values of the
// snapshot are reduced modulo 2^32 to compare, which could only mistake two
// transactions 4 billion IDs apart, both running.
//
// %[1]s is the lock source (pg_locks, or a test's stand-in); $XHI and $XLO
// are the writer lock's key as pg_locks shows it (two oids).
const horizonCTE = `WITH snap AS MATERIALIZED (SELECT pg_current_snapshot() AS s),
	locks AS MATERIALIZED (SELECT locktype, database, classid, objid, objsubid, pid, transactionid, mode, granted FROM %[1]s AS pl),
	idle AS MATERIALIZED (
		SELECT t.transactionid FROM locks AS t
		WHERE t.locktype = 'transactionid' AND t.mode = 'ExclusiveLock' AND t.granted AND t.pid IS NOT NULL
			AND NOT EXISTS (SELECT 1 FROM locks AS p WHERE p.pid IS NULL)
			AND NOT EXISTS (
				SELECT 1 FROM locks AS a
				WHERE a.locktype = 'advisory' AND a.pid = t.pid
					AND a.database = (SELECT oid FROM pg_database WHERE datname = current_database())
					AND a.classid = $XHI::bigint::oid AND a.objid = $XLO::bigint::oid AND a.objsubid = 1)),
	horizon AS (
		SELECT coalesce(min(x), pg_snapshot_xmax((SELECT s FROM snap))) AS h
		FROM pg_snapshot_xip((SELECT s FROM snap)) AS x
		WHERE (x::text::bigint %% 4294967296)::text::xid NOT IN (SELECT transactionid FROM idle))
`

// horizonWith returns horizonCTE over the lock source locks, with the
// store's writer lock key, ready to be followed by a SELECT (no fmt
// verbs left in it).
func (s *Store) horizonWith(locks string) string {
	hi, lo := int64(uint64(s.enqueuerKey)>>32), int64(uint64(s.enqueuerKey)&0xffffffff)
	cte := strings.ReplaceAll(horizonCTE, "%%", "%")
	cte = strings.Replace(cte, "%[1]s", locks, 1)
	return strings.NewReplacer("$XHI", strconv.FormatInt(hi, 10), "$XLO", strconv.FormatInt(lo, 10)).Replace(cte)
}

// horizon is horizonWith(pg_locks).
func (s *Store) horizon() string { return s.horizonWith("pg_locks") }
