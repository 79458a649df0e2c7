package postgres_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/postgres"
	"esgo.dev/es/postgres/pgtest"
)

type debugRead struct {
	after, maxPos  int64
	snap, h, locks string
}

// TestHorizonDebug is ConcurrentTail with a reader that records, for every
// read, the statement's snapshot, the horizon and pg_locks as the horizon
// saw them, and dumps them when it detects a skip.
func TestHorizonDebug(t *testing.T) {
	if os.Getenv("ES_HORIZON_DEBUG") == "" {
		t.Skip("set ES_HORIZON_DEBUG=1")
	}
	pool := pgtest.Pool(t)
	s := pgtest.NewStoreWithPool(t, pool, postgres.Config{})
	const writers, each = 8, 150
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := 0; i < each; {
				n := min(1+i%3, each-i)
				if _, err := es.Append(ctx, s, fmt.Sprintf("tail-%d", w%3), es.AnyVersion, newEvents("Tick", n)...); err != nil {
					if ctx.Err() == nil {
						t.Errorf("writer %d: %v", w, err)
					}
					return
				}
				i += n
			}
		})
	}
	defer wg.Wait()
	hz := strings.Replace(postgres.HorizonSQL(s), "pid, transactionid, mode, granted FROM pg_locks",
		"pid, transactionid, mode, granted, virtualtransaction FROM pg_locks", 1)
	q := hz + `SELECT position, stream_id, version, tx_id::text,
		(SELECT s FROM snap)::text, (SELECT h FROM horizon)::text,
		(SELECT json_agg(json_build_object('t', l.locktype, 'pid', l.pid, 'vt', l.virtualtransaction, 'xid', l.transactionid,
			'obj', l.objid, 'cls', l.classid, 'm', l.mode, 'g', l.granted)) FROM locks AS l WHERE l.locktype IN ('transactionid', 'advisory'))::text
		FROM ` + postgres.EventsTable(s) + ` WHERE position > $1 AND tx_id < (SELECT h FROM horizon) ORDER BY position LIMIT 500`
	versions := map[string]int64{}
	var last int64
	var history []debugRead
	total := 0
	for total < writers*each {
		if ctx.Err() != nil {
			t.Fatalf("deadline, saw %d", total)
		}
		rows, err := pool.Query(ctx, q, last)
		if err != nil {
			t.Fatal(err)
		}
		r := debugRead{after: last, maxPos: last}
		type ev struct {
			pos     int64
			stream  string
			version int64
			txid    string
		}
		var evs []ev
		for rows.Next() {
			var e ev
			if err := rows.Scan(&e.pos, &e.stream, &e.version, &e.txid, &r.snap, &r.h, &r.locks); err != nil {
				t.Fatal(err)
			}
			evs = append(evs, e)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.version != versions[e.stream]+1 {
				// Find the missing events and the read that passed them.
				cancel()
				wg.Wait()
				miss, err := pool.Query(context.Background(), `SELECT position, version, tx_id::text FROM `+postgres.EventsTable(s)+
					` WHERE stream_id = $1 AND version > $2 AND version < $3 ORDER BY version`, e.stream, versions[e.stream], e.version)
				if err != nil {
					t.Fatal(err)
				}
				var missing []int64
				for miss.Next() {
					var p, v int64
					var x string
					_ = miss.Scan(&p, &v, &x)
					t.Logf("MISSED %s v%d at position %d, tx_id %s", e.stream, v, p, x)
					missing = append(missing, p)
				}
				t.Logf("read now returned %s v%d pos %d tx_id %s (after=%d)", e.stream, e.version, e.pos, e.txid, last)
				history = append(history, r)
				for _, p := range missing {
					for _, h := range history {
						if h.after < p && p <= h.maxPos || h.after == last {
							t.Logf("READ after=%d maxReturned=%d\n  snapshot %s\n  horizon %s\n  locks %s", h.after, h.maxPos, h.snap, h.h, h.locks)
						}
					}
				}
				t.Fatalf("%s version %d read after version %d", e.stream, e.version, versions[e.stream])
			}
			versions[e.stream], last = e.version, e.pos
			r.maxPos = e.pos
			total++
		}
		if len(evs) > 0 {
			history = append(history, r)
		} else {
			time.Sleep(time.Millisecond)
		}
	}
}
