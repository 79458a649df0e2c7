package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/es/sqlite"
)

func TestOutboxConformance(t *testing.T) {
	estest.TestOutbox(t, func(t *testing.T) es.Outbox {
		s, _ := openFile(t, sqlite.Config{})
		return s
	})
}

func TestRelayLease(t *testing.T) {
	s, path := openFile(t, sqlite.Config{})
	// A Locker per relay on one file, as two processes would have.
	estest.TestRelayLease(t, s, func() es.Locker { return sqlite.NewLocker(path) })
}

func TestRelaySharing(t *testing.T) {
	s, path := openFile(t, sqlite.Config{})
	// A Locker per relay on one file, as separate processes would have.
	estest.TestRelaySharing(t, s, func() es.Locker { return sqlite.NewLocker(path) })
}

func TestOutboxConformanceMemory(t *testing.T) {
	estest.TestOutbox(t, func(t *testing.T) es.Outbox {
		s, err := sqlite.OpenMemory(context.Background(), sqlite.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// TestOutboxSchemaUpgrade opens a file made before the outbox existed:
// Open adds the outbox and inbox tables, keeping the events.
func TestOutboxSchemaUpgrade(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	s, err := sqlite.Open(ctx, path, sqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := es.Append(ctx, s, "order-1", es.NoStream, es.EventData{ID: es.NewID(), Type: "Placed", SchemaVersion: 1, Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	// Take the file back to the schema before the outbox.
	s = reopenAfter(t, s, path, `DROP TABLE es_outbox; DROP TABLE es_inbox`)
	m := es.Message{ID: es.NewID(), Key: "order-1", Type: "OrderPlaced", SchemaVersion: 1, Data: []byte(`{}`)}
	if _, err := s.AppendEnqueue(ctx, es.Enqueue{Messages: []es.Message{m}},
		es.StreamAppend{StreamID: "order-1", Expected: es.Exact(1), Events: []es.EventData{{ID: es.NewID(), Type: "Paid", SchemaVersion: 1, Data: []byte(`{}`)}}}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Backlog(ctx); err != nil || n != 1 {
		t.Fatalf("backlog = %d, %v", n, err)
	}
}

func TestInboxTx(t *testing.T) {
	ctx := context.Background()
	s, _ := openFile(t, sqlite.Config{})
	if err := s.WriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE effects (message_id TEXT NOT NULL)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	id := es.NewID()
	handle := func(fail bool) (bool, error) {
		var first bool
		err := s.WriteTx(ctx, func(tx *sql.Tx) error {
			var err error
			if first, err = s.InboxTx(ctx, tx, "billing", id); err != nil || !first {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO effects VALUES (?)`, id); err != nil {
				return err
			}
			if fail {
				return errors.New("boom")
			}
			return nil
		})
		return first, err
	}
	// A failed handling records nothing, so the message is handled again.
	if _, err := handle(true); err == nil {
		t.Fatal("no error")
	}
	if first, err := handle(false); err != nil || !first {
		t.Fatalf("first handling: %v, %v", first, err)
	}
	if first, err := handle(false); err != nil || first {
		t.Fatalf("second handling: %v, %v", first, err)
	}
	// Another consumer has its own record.
	if err := s.WriteTx(ctx, func(tx *sql.Tx) error {
		first, err := s.InboxTx(ctx, tx, "shipping", id)
		if err == nil && !first {
			err = errors.New("the shipping consumer saw billing's record")
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.DB().QueryRowContext(ctx, `SELECT count(*) FROM effects`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("effects = %d, %v", n, err)
	}
}

func TestInbox(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.OpenMemory(ctx, sqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.WriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE effects (message_id TEXT NOT NULL)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	in := s.Inbox()
	id := es.NewID()
	var calls atomic.Int32
	effect := func(ctx context.Context) error {
		calls.Add(1)
		tx := sqlite.TxFrom(ctx)
		if tx == nil {
			return errors.New("no transaction in the context")
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO effects VALUES (?)`, id)
		return err
	}
	if ran, err := in.Handle(ctx, "c", id, func(context.Context) error { return errors.New("boom") }); ran || err == nil {
		t.Fatalf("failing fn: ran %v, err %v", ran, err)
	}
	var wg sync.WaitGroup
	var ran atomic.Int32
	for range 8 {
		wg.Go(func() {
			ok, err := in.Handle(ctx, "c", id, effect)
			if err != nil {
				t.Error(err)
			}
			if ok {
				ran.Add(1)
			}
		})
	}
	wg.Wait()
	if ran.Load() != 1 || calls.Load() != 1 {
		t.Fatalf("fn ran %d times (reported %d), want once", calls.Load(), ran.Load())
	}
	var n int
	if err := s.DB().QueryRowContext(ctx, `SELECT count(*) FROM effects`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("effects = %d, %v", n, err)
	}
}

// TestOutboxIndexUpgrade opens a file of schema version 2, whose one
// index of pending messages made Due read every deadline scheduled for
// later: Open replaces it, and the messages waiting are delivered as due.
func TestOutboxIndexUpgrade(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v2.db")
	s, err := sqlite.Open(ctx, path, sqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	later := es.Message{ID: es.NewID(), Key: "k", Type: "Deadline", SchemaVersion: 1, Data: []byte(`{}`), DeliverAt: now.Add(time.Hour)}
	at := es.Message{ID: es.NewID(), Key: "k", Type: "Now", SchemaVersion: 1, Data: []byte(`{}`)}
	if _, err := s.AppendEnqueue(ctx, es.Enqueue{Messages: []es.Message{later, at}}); err != nil {
		t.Fatal(err)
	}
	s = reopenAfter(t, s, path, `DROP INDEX es_outbox_now; DROP INDEX es_outbox_later;
		CREATE INDEX es_outbox_pending ON es_outbox (bucket, seq) WHERE delivered_at IS NULL AND cancelled_at IS NULL;
		PRAGMA user_version = 2`)
	var indexes []string
	if err := s.WriteTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'es_outbox' AND sql IS NOT NULL ORDER BY name`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				return err
			}
			indexes = append(indexes, name)
		}
		return rows.Err()
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"es_outbox_held", "es_outbox_later", "es_outbox_now"}; !slices.Equal(indexes, want) {
		t.Errorf("indexes %v, want %v", indexes, want)
	}
	buckets := []int{es.MessageBucket("k")}
	for _, c := range []struct {
		at   time.Time
		want []string
	}{{now, []string{at.ID}}, {now.Add(2 * time.Hour), []string{later.ID, at.ID}}} {
		due, err := s.Due(ctx, c.at, buckets, 10)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range due {
			got = append(got, m.ID)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("due at %v: %v, want %v", c.at, got, c.want)
		}
	}
	if n, err := s.Backlog(ctx); err != nil || n != 2 {
		t.Errorf("backlog = %d, %v; want 2", n, err)
	}
}

// reopenAfter runs stmts on s's file (to take it back to an older
// schema), closes s and opens the file again; the test closes it.
func reopenAfter(t *testing.T, s *sqlite.Store, path, stmts string) *sqlite.Store {
	t.Helper()
	ctx := context.Background()
	if err := s.WriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, stmts)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := sqlite.Open(ctx, path, sqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
