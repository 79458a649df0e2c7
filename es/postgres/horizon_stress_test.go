package postgres_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/postgres"
	"esgo.dev/es/postgres/pgtest"
)

// TestDueKeyOrderStress: 8 writers enqueue messages of one key while a
// relay-like reader takes Due's messages and marks them delivered in
// order. Per-key order means the delivered seqs only grow. A stress test
// (it finds a race by chance, it does not depend on timing to pass), so
// it only runs with ES_HORIZON_STRESS=1.
func TestDueKeyOrderStress(t *testing.T) {
	if os.Getenv("ES_HORIZON_STRESS") == "" {
		t.Skip("set ES_HORIZON_STRESS=1")
	}
	s := pgtest.NewStore(t, postgres.Config{})
	const writers, each, key = 8, 150, "order-1"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				m := es.Message{ID: es.NewID(), Key: key, Type: "Tick", SchemaVersion: 1, Data: fmt.Appendf(nil, `{"w":%d,"i":%d}`, w, i)}
				if _, err := s.AppendEnqueue(ctx, es.Enqueue{Messages: []es.Message{m}}); err != nil {
					if ctx.Err() == nil {
						t.Errorf("writer %d: %v", w, err)
					}
					return
				}
			}
		})
	}
	defer wg.Wait()
	// Checkers that deliver nothing: each Due returns every pending
	// message below the horizon, so a seq returned for the first time
	// below one already returned was handed out out of order. Several
	// checkers poll at once to meet the race more often.
	buckets := []int{es.MessageBucket(key)}
	var cwg sync.WaitGroup
	for c := range 4 {
		cwg.Go(func() {
			seen := map[int64]bool{}
			var max int64
			for len(seen) < writers*each && ctx.Err() == nil {
				due, err := s.Due(ctx, time.Now().Add(time.Hour), buckets, 2*writers*each)
				if err != nil {
					if ctx.Err() == nil {
						t.Error(err)
					}
					return
				}
				for _, m := range due {
					if !seen[m.Seq] && m.Seq < max {
						t.Errorf("checker %d: seq %d handed out for the first time after seq %d of the same key: per-key order broken", c, m.Seq, max)
						cancel()
						return
					}
					seen[m.Seq] = true
					max = maxInt(max, m.Seq)
				}
			}
			if len(seen) < writers*each && !t.Failed() {
				t.Errorf("checker %d: deadline, %d seen", c, len(seen))
			}
		})
	}
	cwg.Wait()
}

func maxInt(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}
