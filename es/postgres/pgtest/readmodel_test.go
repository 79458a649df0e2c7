package pgtest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/es/postgres"
	"esgo.dev/es/postgres/pgtest"
	"esgo.dev/internal/tbtest"
)

// Deposited is the tests' event, in streams named after accounts.
type Deposited struct {
	Amount int `json:"amount"`
}

func registry() *es.Registry {
	reg := es.NewRegistry()
	es.MustRegister[Deposited](reg, "Deposited")
	return reg
}

// balances keeps each account's balance. Unless naive, it remembers the
// last version of the account's stream it applied and skips events at or
// below it, so that applying an event twice changes nothing; naive, it
// adds every deposit it is given (balance = balance + $2).
func balances(reg *es.Registry, naive bool) postgres.Projection {
	guard := ` WHERE b.version < excluded.version`
	if naive {
		guard = ``
	}
	return postgres.Projection{
		Name:   "balances",
		Tables: []string{"balances"},
		Setup: func(ctx context.Context, tx pgx.Tx, t postgres.Tables) error {
			_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+t.Name("balances")+` (account text PRIMARY KEY,
				balance bigint NOT NULL, version bigint NOT NULL)`)
			return err
		},
		Apply: func(ctx context.Context, tx pgx.Tx, t postgres.Tables, e es.Event) error {
			v, ok, err := reg.DecodeKnown(e)
			if !ok || err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `INSERT INTO `+t.Name("balances")+` AS b VALUES ($1, $2, $3)
				ON CONFLICT (account) DO UPDATE SET balance = b.balance + excluded.balance, version = excluded.version`+guard,
				e.StreamID, v.(Deposited).Amount, e.Version)
			return err
		},
	}
}

// balancesView names the table without a schema: the view runs with the
// store's schema as its search_path.
func balancesView(ctx context.Context, tx pgx.Tx) (map[string]int, error) {
	rows, err := tx.Query(ctx, `SELECT account, balance FROM balances`)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	var account string
	var balance int
	_, err = pgx.ForEachRow(rows, []any{&account, &balance}, func() error {
		out[account] = balance
		return nil
	})
	return out, err
}

func deposits() estest.Given {
	return estest.InStream("acct-1", Deposited{Amount: 10}, Deposited{Amount: 5})
}

func TestAnIdempotentProjectionPassesBothRedeliveries(t *testing.T) {
	reg := registry()
	estest.Projection(t, reg, pgtest.ReadModel(t, balances(reg, false), balancesView)).
		Given(deposits(), estest.InStream("acct-2", Deposited{Amount: 1})).
		Redelivered().
		AppliedTwice().
		Then(map[string]int{"acct-1": 15, "acct-2": 1})
}

func TestTheConsumerSkipsARedeliveredEvent(t *testing.T) {
	reg := registry()
	estest.Projection(t, reg, pgtest.ReadModel(t, balances(reg, true), balancesView)).
		Given(deposits()).
		Redelivered().
		Then(map[string]int{"acct-1": 15})
}

func TestApplyingTwiceExposesANonIdempotentProjection(t *testing.T) {
	reg := registry()
	r := tbtest.Run(t, func(tb testing.TB) {
		estest.Projection(tb, reg, pgtest.ReadModel(tb, balances(reg, true), balancesView)).
			Given(deposits()).
			AppliedTwice().
			Then(map[string]int{"acct-1": 15})
	})
	if out := r.Messages(); !r.Failed() || !strings.Contains(out, "each applied twice") || !strings.Contains(out, "30") {
		t.Fatalf("balance = balance + $2 passed AppliedTwice: failed=%v\n%s", r.Failed(), out)
	}
}

func TestTheViewCannotWrite(t *testing.T) {
	reg := registry()
	rm := pgtest.ReadModel(t, balances(reg, false), func(ctx context.Context, tx pgx.Tx) (int, error) {
		_, err := tx.Exec(ctx, `DELETE FROM balances`)
		return 0, err
	})
	if err := rm.HandleEvent(context.Background(), es.Event{ID: es.NewID(), StreamID: "acct-1", Version: 1, Position: 1,
		Type: "Deposited", SchemaVersion: 1, Data: []byte(`{"amount":1}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := rm.View(context.Background()); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("a view that deletes: %v", err)
	}
}
