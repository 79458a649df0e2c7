package sqlitetest_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/es/sqlite"
	"esgo.dev/es/sqlite/sqlitetest"
)

// Deposited is the examples' event, in streams named after accounts.
type Deposited struct {
	Amount int `json:"amount"`
}

func registry() *es.Registry {
	reg := es.NewRegistry()
	es.MustRegister[Deposited](reg, "Deposited")
	return reg
}

// balances keeps each account's balance. It adds deposits, but remembers
// the last version of the account's stream it applied and skips events at
// or below it, so that applying an event twice changes nothing.
func balances(reg *es.Registry) sqlite.Projection {
	return sqlite.Projection{
		Name:   "balances",
		Tables: []string{"balances"},
		Setup: func(ctx context.Context, tx *sql.Tx, t sqlite.Tables) error {
			_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+t.Name("balances")+` (account TEXT PRIMARY KEY,
				balance INTEGER NOT NULL, version INTEGER NOT NULL) STRICT`)
			return err
		},
		Apply: func(ctx context.Context, tx *sql.Tx, t sqlite.Tables, e es.Event) error {
			v, ok, err := reg.DecodeKnown(e)
			if !ok || err != nil {
				return err
			}
			d := v.(Deposited)
			_, err = tx.ExecContext(ctx, `INSERT INTO `+t.Name("balances")+` VALUES (?, ?, ?)
				ON CONFLICT (account) DO UPDATE SET balance = balance + excluded.balance, version = excluded.version
				WHERE version < excluded.version`, e.StreamID, d.Amount, e.Version)
			return err
		},
	}
}

// balancesView is what the read model shows: every account's balance.
func balancesView(ctx context.Context, db *sql.DB) (map[string]int, error) {
	rows, err := db.QueryContext(ctx, `SELECT account, balance FROM balances`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var account string
		var balance int
		if err := rows.Scan(&account, &balance); err != nil {
			return nil, err
		}
		out[account] = balance
	}
	return out, rows.Err()
}

// A projection spec of a SQLite read model. In a test, t is the test's
// *testing.T; here it is a stand-in that prints whether the spec failed.
func Example() {
	t := &standIn{}
	reg := registry()
	rm := sqlitetest.ReadModel(t, balances(reg), balancesView)
	estest.Projection(t, reg, rm).
		Given(estest.InStream("acct-1", Deposited{Amount: 10}, Deposited{Amount: 5})).
		Redelivered().  // the consumer skips an event it has applied
		AppliedTwice(). // and the projection's own code is idempotent
		Then(map[string]int{"acct-1": 15})
	t.end()
	// Output:
	// failed: false
}

// standIn stands in for a test's *testing.T in the example: it prints
// failures, and end runs the cleanups as the end of a test does.
type standIn struct {
	testing.TB
	failed   bool
	cleanups []func()
}

func (s *standIn) Helper()                           {}
func (s *standIn) Failed() bool                      { return s.failed }
func (s *standIn) Skipped() bool                     { return false }
func (s *standIn) Cleanup(f func())                  { s.cleanups = append(s.cleanups, f) }
func (s *standIn) Fatalf(format string, args ...any) { s.Errorf(format, args...) }
func (s *standIn) Errorf(format string, args ...any) {
	s.failed = true
	fmt.Printf(format+"\n", args...)
}

func (s *standIn) end() {
	for i := len(s.cleanups) - 1; i >= 0; i-- {
		s.cleanups[i]()
	}
	fmt.Println("failed:", s.failed)
}
