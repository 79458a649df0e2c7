package postgres_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"esgo.dev/es"
	"esgo.dev/es/postgres"
	"esgo.dev/es/postgres/pgtest"
)

// A schema at migration 3 with messages waiting (an
// immediate one behind a deadline of its key, a deadline for later, one
// failed and waiting for its retry) is migrated to 4 by Migrate: the old
// index goes, the two new ones come, and Due answers as before.
func TestMigration4KeepsTheOutbox(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t)
	s := pgtest.NewStoreWithPool(t, pool, postgres.Config{})
	q := pgx.Identifier{s.Schema()}.Sanitize()
	// Back to migration 3.
	if _, err := pool.Exec(ctx, `DROP INDEX `+q+`.outbox_now_idx; DROP INDEX `+q+`.outbox_later_idx;
		CREATE INDEX outbox_pending_idx ON `+q+`.outbox (bucket, seq) WHERE delivered_at IS NULL AND cancelled_at IS NULL;
		DELETE FROM `+q+`.schema_migrations WHERE version = 4`, pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	msg := func(key string, at time.Time) es.Message {
		return es.Message{ID: es.NewID(), Key: key, Type: "Note", SchemaVersion: 1, Data: []byte(`{}`), DeliverAt: at}
	}
	deadline, after, later, failed, behind := msg("k", now.Add(-time.Minute)), msg("k", time.Time{}), msg("k", now.Add(time.Hour)),
		msg("f", time.Time{}), msg("f", now.Add(-time.Second))
	if _, err := s.AppendEnqueue(ctx, es.Enqueue{Messages: []es.Message{deadline, after, later, failed, behind}}); err != nil {
		t.Fatal(err)
	}
	all := make([]int, es.OutboxBuckets)
	for i := range all {
		all[i] = i
	}
	// Fail the message failed (waiting for the horizon if another test's
	// transaction holds it back for an instant).
	marked := false
	for try := 0; try < 100 && !marked; try++ {
		got, err := s.Due(ctx, now, all, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range got {
			if m.ID == failed.ID {
				if err := s.MarkFailed(ctx, m.Seq, now.Add(time.Minute), false, "down"); err != nil {
					t.Fatal(err)
				}
				marked = true
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !marked {
		t.Fatal("the message to fail never came due")
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	var indexes []string
	rows, err := pool.Query(ctx, `SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = 'outbox' ORDER BY indexname`, s.Schema())
	if err != nil {
		t.Fatal(err)
	}
	if indexes, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	if want := []string{"outbox_held_idx", "outbox_later_idx", "outbox_message_id_key", "outbox_now_idx", "outbox_pkey"}; !slices.Equal(indexes, want) {
		t.Errorf("indexes %v, want %v", indexes, want)
	}
	for _, c := range []struct {
		at   time.Time
		want []string
	}{
		{now, []string{deadline.ID, after.ID}},
		{now.Add(time.Minute), []string{deadline.ID, after.ID, failed.ID, behind.ID}},
		{now.Add(2 * time.Hour), []string{deadline.ID, after.ID, later.ID, failed.ID, behind.ID}},
	} {
		var ids []string
		for try := 0; try < 50 && (try == 0 || !slices.Equal(ids, c.want)); try++ { // see dueAgrees on the horizon
			got, err := s.Due(ctx, c.at, all, 10)
			if err != nil {
				t.Fatal(err)
			}
			ids = ids[:0]
			for _, m := range got {
				ids = append(ids, m.ID)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if !slices.Equal(ids, c.want) {
			t.Errorf("due at %v: %v, want %v", c.at, ids, c.want)
		}
	}
	if n, err := s.Backlog(ctx); err != nil || n != 5 {
		t.Errorf("backlog = %d, %v; want 5", n, err)
	}
}

// Due reads the outbox through the two partial indexes of
// migration 4, never the whole table (it keeps every delivered message)
// nor the deadlines scheduled for later.
func TestDueQueryPlan(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t)
	s := pgtest.NewStoreWithPool(t, pool, postgres.Config{})
	q := pgx.Identifier{s.Schema()}.Sanitize()
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	// 50,000 delivered, 20,000 deadlines for later, 100 to deliver now, 100
	// deadlines due.
	if _, err := pool.Exec(ctx, `INSERT INTO `+q+`.outbox (message_id, key, bucket, type, schema_version, data, deliver_at, created_at, delivered_at)
		SELECT gen_random_uuid(), 'k' || i, i % 64, 'Note', 1, '{}',
			CASE WHEN i <= 50000 THEN NULL WHEN i <= 70000 THEN $1::timestamptz + interval '1 hour' WHEN i <= 70100 THEN NULL ELSE $1::timestamptz - interval '1 minute' END,
			$1, CASE WHEN i <= 50000 THEN $1 END
		FROM generate_series(1, 70200) AS i`, now); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE `+q+`.outbox`); err != nil {
		t.Fatal(err)
	}
	rows, err := pool.Query(ctx, "EXPLAIN "+postgres.DueSQL(s), now, []int32{0, 1, 2, 3}, 100)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	plan := strings.Join(lines, "\n")
	for _, want := range []string{"outbox_now_idx", "outbox_later_idx"} {
		if !strings.Contains(plan, want) {
			t.Errorf("the plan does not use %s:\n%s", want, plan)
		}
	}
	if strings.Contains(plan, "Seq Scan on outbox") {
		t.Errorf("the plan scans the outbox:\n%s", plan)
	}

}
