package web

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"esgo.dev/es/sqlite"
	"esgo.dev/examples/ticketing/app"
	"esgo.dev/examples/ticketing/finance"
	"esgo.dev/examples/ticketing/tickets/mailer"
)

// NewTestApp is an app for the tests, in this package and in web_test: on
// a SQLite file of its own, with a fake gateway, mails to a folder, the
// lowest bcrypt cost and no logs. run picks its background work
// ((*app.App).Run, or RunReadModels when no process may write meanwhile);
// it is stopped, and its error checked, when the test ends.
func NewTestApp(tb testing.TB, run func(*app.App, context.Context) error) (*app.App, *sqlite.Store, *finance.FakeGateway) {
	tb.Helper()
	ctx := context.Background()
	dir := tb.TempDir()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "ticketing.db"), sqlite.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	folder, err := mailer.NewFolder(filepath.Join(dir, "mail"), "tickets@ticketing.example")
	if err != nil {
		tb.Fatal(err)
	}
	gw := finance.NewFakeGateway()
	a, err := app.New(app.Config{Logger: slog.New(slog.DiscardHandler), Events: store, ReadModels: app.SQLiteReadModels(store),
		Payments: gw, Mailer: folder, RelayPollInterval: 10 * time.Millisecond, PasswordCost: 4})
	if err != nil {
		tb.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- run(a, runCtx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("app: %v", err)
		}
	})
	return a, store, gw
}
