package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"esgo.dev/es"
	"esgo.dev/es/storekit"
)

// WriteTx runs fn in an IMMEDIATE transaction on the store's writer
// connection and commits it if fn returns nil. It is how an application
// writes its own tables in the store's file — a consumer's effect and its
// inbox record ([Store.InboxTx]), say — serialised with the appends of
// every process. When SQLite reports the file busy the whole transaction
// is retried, so fn may run more than once and must keep nothing from a
// failed try.
//
// The store has one writer connection, which fn's transaction holds: fn
// must not call the store's writing methods (Append, AppendEnqueue,
// MarkDelivered, …), which would wait for it forever, and should be short,
// since every append waits for it.
func (s *Store) WriteTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if err := s.withWriteTx(ctx, fn); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("sqlite: write transaction: %w", ctx.Err())
		}
		return fmt.Errorf("sqlite: write transaction: %w", err)
	}
	return nil
}

// InboxTx records in tx that consumer handled the message messageID, and
// reports whether this is the first time. Call it in the transaction that
// applies the message's effect, and apply the effect only when first is
// true: the record and the effect then commit together or not at all, so
// a message redelivered by the relay (at least once) takes effect exactly
// once — for effects in tables of this SQLite file. An effect outside the
// file (an e-mail, a call to another service) cannot join the transaction
// and stays at least once.
//
// tx must be a write transaction on the store's file, such as the one
// [Store.WriteTx] gives. Rows of es_inbox are kept for good: a message can
// be redelivered at any time, after a parked message is released, say.
func (s *Store) InboxTx(ctx context.Context, tx *sql.Tx, consumer, messageID string) (first bool, err error) {
	if err := errors.Join(storekit.CheckName("inbox consumer", consumer), storekit.CheckName("message ID", messageID)); err != nil {
		return false, fmt.Errorf("sqlite: inbox: %w", err)
	}
	if consumer == "" || messageID == "" {
		return false, errors.New("sqlite: inbox: empty consumer or message ID")
	}
	r, err := tx.ExecContext(ctx, `INSERT INTO es_inbox (consumer, message_id, handled_at) VALUES (?, ?, ?)
		ON CONFLICT (consumer, message_id) DO NOTHING`, consumer, messageID, unixNano(s.cfg.Clock.Now()))
	if err != nil {
		return false, fmt.Errorf("sqlite: inbox %s: record %s: %w", consumer, messageID, err)
	}
	n, err := r.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlite: inbox %s: record %s: %w", consumer, messageID, err)
	}
	return n == 1, nil
}

// txKey is the context key under which Inbox.Handle passes its transaction.
type txKey struct{}

// TxFrom returns the write transaction that [Store.Inbox]'s Handle runs
// fn in, so that fn can write its effect in it, or nil if ctx has none.
func TxFrom(ctx context.Context) *sql.Tx {
	tx, _ := ctx.Value(txKey{}).(*sql.Tx)
	return tx
}

// Inbox returns an [es.Inbox] on the store's es_inbox table. Its Handle
// runs fn inside a write transaction ([Store.WriteTx]) that also records
// the message ([Store.InboxTx]); fn finds the transaction with [TxFrom].
// An effect that fn writes through that transaction commits with the
// record: exactly once. Whatever else fn does is at least once: a crash
// after fn and before the commit, or a retry of a busy transaction, runs
// it again. The rules of WriteTx apply to fn: it holds the writer
// connection, so it must not call the store's writing methods.
//
// Handlings of the same message wait for each other (SQLite has one
// writer at a time), so fn runs once per successful handling.
func (s *Store) Inbox() es.Inbox { return inbox{s} }

type inbox struct{ s *Store }

// Handle implements [es.Inbox].
func (i inbox) Handle(ctx context.Context, consumer, messageID string, fn func(ctx context.Context) error) (bool, error) {
	if err := errors.Join(storekit.CheckName("inbox consumer", consumer), storekit.CheckName("message ID", messageID)); err != nil {
		return false, fmt.Errorf("sqlite: inbox: %w", err)
	}
	ran := false
	err := i.s.WriteTx(ctx, func(tx *sql.Tx) error {
		ran = false
		first, err := i.s.InboxTx(ctx, tx, consumer, messageID)
		if err != nil || !first {
			return err
		}
		ran = true
		return fn(context.WithValue(ctx, txKey{}, tx))
	})
	if err != nil {
		return false, err
	}
	return ran, nil
}
