package sqlitetest_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/es/sqlite"
	"esgo.dev/es/sqlite/sqlitetest"
	"esgo.dev/internal/tbtest"
)

// naiveBalances adds each deposit to the balance: applied twice, a deposit
// counts twice. Its consumer, which commits the checkpoint with the
// balance, never applies an event twice, but the projection's own code is
// not idempotent.
func naiveBalances(reg *es.Registry) sqlite.Projection {
	return sqlite.Projection{
		Name:   "naive-balances",
		Tables: []string{"balances"},
		Setup: func(ctx context.Context, tx *sql.Tx, t sqlite.Tables) error {
			_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+t.Name("balances")+` (account TEXT PRIMARY KEY, balance INTEGER NOT NULL) STRICT`)
			return err
		},
		Apply: func(ctx context.Context, tx *sql.Tx, t sqlite.Tables, e es.Event) error {
			v, ok, err := reg.DecodeKnown(e)
			if !ok || err != nil {
				return err
			}
			d := v.(Deposited)
			_, err = tx.ExecContext(ctx, `INSERT INTO `+t.Name("balances")+` VALUES (?, ?)
				ON CONFLICT (account) DO UPDATE SET balance = balance + ?`, e.StreamID, d.Amount, d.Amount)
			return err
		},
	}
}

func readModel(t testing.TB, p sqlite.Projection) estest.ReadModel[map[string]int] {
	return sqlitetest.ReadModel(t, p, balancesView)
}

func deposits() estest.Given {
	return estest.InStream("acct-1", Deposited{Amount: 10}, Deposited{Amount: 5})
}

func TestTheConsumerSkipsARedeliveredEvent(t *testing.T) {
	reg := registry()
	estest.Projection(t, reg, readModel(t, naiveBalances(reg))).
		Given(deposits()).
		Redelivered().
		Then(map[string]int{"acct-1": 15})
}

func TestApplyingTwiceExposesANonIdempotentProjection(t *testing.T) {
	reg := registry()
	r := tbtest.Run(t, func(tb testing.TB) {
		estest.Projection(tb, reg, readModel(tb, naiveBalances(reg))).
			Given(deposits()).
			AppliedTwice().
			Then(map[string]int{"acct-1": 15})
	})
	out := r.Messages()
	if !r.Failed() || !strings.Contains(out, "each applied twice") || !strings.Contains(out, "30") {
		t.Fatalf("balance = balance + ? passed AppliedTwice: failed=%v\n%s", r.Failed(), out)
	}
	t.Logf("AppliedTwice on balance = balance + ? prints:\n%s", out)
}

func TestAnIdempotentProjectionPassesBoth(t *testing.T) {
	reg := registry()
	estest.Projection(t, reg, readModel(t, balances(reg))).
		Given(deposits(), estest.InStream("acct-2", Deposited{Amount: 1})).
		Redelivered().
		AppliedTwice().
		Then(map[string]int{"acct-1": 15, "acct-2": 1})
}

func TestAReadModelNeedsAView(t *testing.T) {
	r := tbtest.Run(t, func(tb testing.TB) {
		sqlitetest.ReadModel[int](tb, balances(registry()), nil)
	})
	if !r.Failed() || !strings.Contains(r.Messages(), "nil view") {
		t.Fatalf("failed=%v\n%s", r.Failed(), r.Messages())
	}
}

func TestAnInvalidProjectionFails(t *testing.T) {
	r := tbtest.Run(t, func(tb testing.TB) {
		sqlitetest.ReadModel(tb, sqlite.Projection{Name: "nothing"}, balancesView)
	})
	if !r.Failed() || !strings.Contains(r.Messages(), "sqlitetest:") {
		t.Fatalf("failed=%v\n%s", r.Failed(), r.Messages())
	}
}
