package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestDueQueryPlan checks that Due reads the pending messages of its
// buckets, the deadlines due and the held-back ones of a key through their
// partial indexes, never scanning the whole outbox (which keeps every
// delivered message), nor the deadlines scheduled for later.
func TestDueQueryPlan(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "plan.db"), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rows, err := s.readers.QueryContext(ctx, "EXPLAIN QUERY PLAN "+fmt.Sprintf(dueQuery, "?3, ?4"), 1, 10, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(plan, "\n")
	for _, want := range []string{"USING INDEX es_outbox_now (bucket=?)", "USING INDEX es_outbox_later (bucket=? AND deliver_at>? AND deliver_at<?)",
		"USING INDEX es_outbox_held (key=? AND seq<?)"} {
		if !strings.Contains(got, want) {
			t.Errorf("plan does not use %s:\n%s", want, got)
		}
	}
}
