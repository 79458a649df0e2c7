package estest

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/memory"
)

// testDueAgreesWithTheMemoryStore: Due must answer as the memory store
// does (the reference: one pass in Seq order) whatever the mix of
// immediate messages and deadlines of one key, retries, parked messages,
// cancellations, bucket subsets and limits (1, and the size of either
// part of a store's query, as SQL stores read the messages to deliver at
// once and the deadlines apart).
func testDueAgreesWithTheMemoryStore(seed uint64) func(*testing.T, es.Outbox) {
	return func(t *testing.T, o es.Outbox) { dueAgrees(t, seed, memory.New(memory.Config{}), o) }
}

// dueAgrees runs one random history on ref and got and compares every
// Due and Backlog along it.
func dueAgrees(t *testing.T, seed uint64, ref, got es.Outbox) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(seed, 7))
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	keys := []string{"k0", "k1", "k2", "k3", "k4", "k5"}
	var all []string // message IDs enqueued
	seqOf := func(o es.Outbox, id string) int64 {
		// Seqs may differ between stores (an identity skipped by a
		// duplicate insert): find it by ID.
		msgs, err := o.(es.MessageReader).Messages(ctx, []string{id})
		if err != nil || len(msgs) != 1 {
			t.Fatalf("message %s: %v, %v", id, msgs, err)
		}
		return msgs[0].Seq
	}
	idsOf := func(ms []es.OutboxMessage) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.ID)
		}
		return out
	}
	for step := range 400 {
		switch op := r.IntN(10); {
		case op < 4: // enqueue
			var enq es.Enqueue
			before := len(all)
			for range 1 + r.IntN(3) {
				m := es.Message{ID: es.NewID(), Key: keys[r.IntN(len(keys))], Type: "Note", SchemaVersion: 1, Data: []byte(`{}`)}
				if r.IntN(2) == 0 {
					m.DeliverAt = now.Add(time.Duration(r.IntN(11)-3) * time.Minute)
				}
				enq.Messages = append(enq.Messages, m)
				all = append(all, m.ID)
			}
			if len(all) > 0 && r.IntN(4) == 0 {
				enq.Cancel = []string{all[r.IntN(len(all))]}
			}
			if r.IntN(8) == 0 && before > 0 { // a repeated message ID is skipped
				enq.Messages = append(enq.Messages, es.Message{ID: all[r.IntN(before)], Key: "k0", Type: "Note", SchemaVersion: 1, Data: []byte(`{}`)})
			}
			for _, o := range []es.Outbox{ref, got} {
				if _, err := o.AppendEnqueue(ctx, enq); err != nil {
					t.Fatal(err)
				}
			}
		case op < 5:
			now = now.Add(time.Duration(r.IntN(3)) * time.Minute)
		default: // Due, then deliver or fail one of them
			buckets := make([]int, 0, es.OutboxBuckets)
			if r.IntN(2) == 0 {
				for b := range es.OutboxBuckets {
					buckets = append(buckets, b)
				}
			} else {
				for _, k := range keys[:1+r.IntN(len(keys))] {
					buckets = append(buckets, es.MessageBucket(k))
				}
			}
			limit := 1 + r.IntN(6)
			want, err := ref.Due(ctx, now, buckets, limit)
			if err != nil {
				t.Fatal(err)
			}
			// PostgreSQL's Due stops at the horizon, which a transaction
			// of another test starting at that moment may hold back for
			// an instant: a difference must last to count.
			var have []es.OutboxMessage
			for try := 0; try < 50; try++ {
				if have, err = got.Due(ctx, now, buckets, limit); err != nil {
					t.Fatal(err)
				}
				if slices.Equal(idsOf(want), idsOf(have)) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if !slices.Equal(idsOf(want), idsOf(have)) {
				t.Fatalf("step %d: Due(now, %d buckets, limit %d) = %v, memory store says %v", step, len(buckets), limit, idsOf(have), idsOf(want))
			}
			for i := range want {
				if want[i].Attempts != have[i].Attempts || want[i].Key != have[i].Key || !want[i].DeliverAt.Equal(have[i].DeliverAt) {
					t.Fatalf("step %d: message %s: %+v, memory store says %+v", step, want[i].ID, have[i], want[i])
				}
			}
			if len(want) == 0 {
				continue
			}
			id := want[r.IntN(len(want))].ID
			fail, park := r.IntN(3) == 0, r.IntN(6) == 0
			retry := now.Add(time.Duration(r.IntN(4)) * time.Minute)
			for _, o := range []es.Outbox{ref, got} {
				seq := seqOf(o, id)
				if fail || park {
					err = o.MarkFailed(ctx, seq, retry, park, "test")
				} else {
					err = o.MarkDelivered(ctx, seq)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
		}
		nr, err := ref.Backlog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ng, err := got.Backlog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if nr != ng {
			t.Fatalf("step %d: backlog %d, memory store says %d", step, ng, nr)
		}
	}
}

// dueCases checks, on an empty outbox o, the cases where the two parts of
// Due's query meet: a deadline that fell due before an immediate message of
// its key comes first; limit 1 and a limit equal to either part's size
// keep the first messages by Seq across both parts; a due deadline that
// failed holds back the immediate messages of its key enqueued after it,
// and one scheduled for later holds back nothing.
func testDueWhereItsTwoPartsMeet(t *testing.T, o es.Outbox) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	msg := func(key string, at time.Time) es.Message {
		return es.Message{ID: es.NewID(), Key: key, Type: "Note", SchemaVersion: 1, Data: []byte(`{}`), DeliverAt: at}
	}
	all := make([]int, es.OutboxBuckets)
	for i := range all {
		all[i] = i
	}
	dueAt := func(at time.Time, limit int) []string {
		t.Helper()
		var ids []string
		for try := 0; try < 50; try++ { // PostgreSQL's horizon, see dueAgrees
			got, err := o.Due(ctx, at, all, limit)
			if err != nil {
				t.Fatal(err)
			}
			if ids = ids[:0]; len(got) == limit || try == 49 {
				for _, m := range got {
					ids = append(ids, m.ID)
				}
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		return ids
	}
	// Seq order: d1 (k, due -2m), n1 (k), d2 (j, due -1m), n2 (j), d3 (k,
	// due +1h), n3 (k), d4 (k, due -1m).
	d1, n1, d2, n2, d3, n3, d4 := msg("k", now.Add(-2*time.Minute)), msg("k", time.Time{}), msg("j", now.Add(-time.Minute)),
		msg("j", time.Time{}), msg("k", now.Add(time.Hour)), msg("k", time.Time{}), msg("k", now.Add(-time.Minute))
	if _, err := o.AppendEnqueue(ctx, es.Enqueue{Messages: []es.Message{d1, n1, d2, n2, d3, n3, d4}}); err != nil {
		t.Fatal(err)
	}
	ids := func(ms ...es.Message) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.ID)
		}
		return out
	}
	for limit, want := range map[int][]string{
		1: ids(d1), 2: ids(d1, n1), 3: ids(d1, n1, d2), 4: ids(d1, n1, d2, n2),
		5: ids(d1, n1, d2, n2, n3), 6: ids(d1, n1, d2, n2, n3, d4), 10: ids(d1, n1, d2, n2, n3, d4),
	} {
		if got := dueAt(now, limit); !slices.Equal(got, want) {
			t.Errorf("limit %d: %v, want %v", limit, got, want)
		}
	}
	// d1 fails: every later message of k that is due waits for it; j goes on.
	seq := func(m es.Message) int64 {
		got, err := o.(es.MessageReader).Messages(ctx, []string{m.ID})
		if err != nil || len(got) != 1 {
			t.Fatalf("%v, %v", got, err)
		}
		return got[0].Seq
	}
	if err := o.MarkFailed(ctx, seq(d1), now.Add(time.Minute), false, "down"); err != nil {
		t.Fatal(err)
	}
	if got, want := dueAt(now, 10), ids(d2, n2); !slices.Equal(got, want) {
		t.Errorf("behind a failed deadline: %v, want %v", got, want)
	}
	if got, want := dueAt(now.Add(2*time.Hour), 10), ids(d1, n1, d2, n2, d3, n3, d4); !slices.Equal(got, want) {
		t.Errorf("at its retry: %v, want %v", got, want)
	}
	// d2 parked, d1 delivered: j waits for good, k goes on, d3 not yet due.
	if err := o.MarkDelivered(ctx, seq(d1)); err != nil {
		t.Fatal(err)
	}
	if err := o.MarkFailed(ctx, seq(d2), now, true, "poison"); err != nil {
		t.Fatal(err)
	}
	if got, want := dueAt(now.Add(time.Minute), 10), ids(n1, n3, d4); !slices.Equal(got, want) {
		t.Errorf("with j parked: %v, want %v", got, want)
	}
	if n, err := o.Backlog(ctx); err != nil || n != 6 {
		t.Errorf("backlog = %d, %v; want 6", n, err)
	}
}
