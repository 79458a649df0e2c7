#!/bin/bash
# Deterministic look at what pg_locks shows for a committing backend.
PSQL="psql -h 127.0.0.1 -U postgres -d test -X -At"
coproc A { $PSQL 2>&1; }
echo "SELECT pg_backend_pid();" >&${A[1]}; read -r PID <&${A[0]}
echo "BEGIN; SELECT pg_advisory_xact_lock_shared(424242); SELECT pg_current_xact_id();" >&${A[1]}
read -r l1 <&${A[0]}; read -r l2 <&${A[0]}; read -r XID <&${A[0]}
echo "backend $PID, xid $XID"
Q="SELECT locktype, coalesce(objid::text, transactionid::text) AS what, virtualtransaction, mode, granted FROM pg_locks WHERE pid = $PID AND locktype IN ('advisory','transactionid') ORDER BY 1"
V="SELECT 'status of $XID:', pg_xact_status('$XID'), 'in snapshot xip:', '$XID'::xid8 IN (SELECT pg_snapshot_xip(pg_current_snapshot()))"
cat > gdbcmds <<G
set pagination off
break ProcArrayEndTransaction
break LockReleaseAll
continue
echo \n=== stopped at ProcArrayEndTransaction (before visibility) ===\n
shell $PSQL -c "$Q"
shell $PSQL -c "$V"
continue
echo \n=== stopped at LockReleaseAll #1 (DEFAULT lock method: xid lock) ===\n
bt 3
shell $PSQL -c "$Q"
shell $PSQL -c "$V"
continue
echo \n=== stopped at LockReleaseAll #2 (USER lock method: advisory) ===\n
shell $PSQL -c "$Q"
delete
detach
quit
G
gdb -q -p $PID -batch -x gdbcmds > gdb.out 2>&1 &
GDB=$!
sleep 2   # let gdb attach before COMMIT is sent (only for this manual demo)
echo "COMMIT;" >&${A[1]}
wait $GDB
grep -v '^\[\|^Reading\|^Download\|warning\|^$' gdb.out
echo "SELECT 1;" >&${A[1]}; read -r x <&${A[0]}; echo "A after: $x"
