package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Notify implements [es.Notifier]. Every append that writes events sends a
// NOTIFY on the store's channel (its schema name) when it commits, so the
// signal reaches readers in every process. The store LISTENs on one
// dedicated connection, opened while at least one Notify channel is live
// and shared by all of them; if that connection drops, it reconnects with
// backoff and signals once it listens again, since appends may have been
// missed in between.
//
// A signal means "read again", not "there is something new for you":
// [Store.ReadAll] may still hold events back while an older transaction is
// in flight (that transaction's own commit will signal again), and signals
// are coalesced.
func (s *Store) Notify(ctx context.Context) <-chan struct{} { return s.notify.Notify(ctx) }

// watchNotifications starts the LISTEN connection when the first Notify
// channel is handed out; the Broadcaster stops it when the last is done,
// so an idle store holds no extra connection.
func (s *Store) watchNotifications() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	s.listeners.Add(1)
	go func() {
		defer s.listeners.Done()
		s.listen(ctx)
	}()
	return cancel
}

// listen holds a LISTEN connection until ctx ends, reconnecting when it
// breaks.
func (s *Store) listen(ctx context.Context) {
	const minBackoff, maxBackoff = 100 * time.Millisecond, 5 * time.Second
	backoff := minBackoff
	for {
		err := s.listenOnce(ctx, func() { backoff = minBackoff })
		if ctx.Err() != nil {
			return
		}
		s.logger.WarnContext(ctx, "postgres: LISTEN connection lost; reconnecting",
			"schema", s.schema, "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// listenOnce connects, listens, and relays notifications until the
// connection fails or ctx ends. listening is called once LISTEN succeeded.
func (s *Store) listenOnce(ctx context.Context, listening func()) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx)) //nolint:errcheck // the connection is being abandoned
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.schema}.Sanitize()); err != nil {
		return err
	}
	listening()
	// Anything appended before LISTEN took effect was not heard: let
	// readers catch up.
	s.notify.Broadcast()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		s.notify.Broadcast()
	}
}
