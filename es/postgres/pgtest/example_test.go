package pgtest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/es/postgres"
	"esgo.dev/es/postgres/pgtest"
)

// checkout is the body of a test that needs PostgreSQL: in a _test.go
// file it would be func TestCheckout(t *testing.T). The store lives in a
// schema of its own, dropped when the test ends; without a server the
// test is skipped (or fails, with ES_REQUIRE_POSTGRES=1).
func checkout(t *testing.T) {
	store := pgtest.NewStore(t, postgres.Config{})
	ctx := context.Background()
	if _, err := es.Append(ctx, store, "cart-1", es.NoStream, es.EventData{
		ID: es.NewID(), Type: "CartConfirmed", SchemaVersion: 1, Data: []byte(`{}`),
	}); err != nil {
		t.Fatal(err)
	}
}

// pgtest is called from tests, as checkout above shows. The server it
// connects to comes from the environment.
func Example() {
	_ = checkout // the body of func TestCheckout(t *testing.T)
	fmt.Println("tests connect to", pgtest.DSN())
}

// balancesAddDeposits is the body of a projection spec of a PostgreSQL read
// model: in a _test.go file it would be func TestBalancesAddDeposits(t
// *testing.T). balances is a postgres.Projection (readmodel_test.go), and
// the view queries its table without a schema.
func balancesAddDeposits(t *testing.T) {
	reg := registry()
	rm := pgtest.ReadModel(t, balances(reg, false), func(ctx context.Context, tx pgx.Tx) (map[string]int, error) {
		var balance int
		err := tx.QueryRow(ctx, `SELECT balance FROM balances WHERE account = 'acct-1'`).Scan(&balance)
		return map[string]int{"acct-1": balance}, err
	})
	estest.Projection(t, reg, rm).
		Given(estest.InStream("acct-1", Deposited{Amount: 10}, Deposited{Amount: 5})).
		Redelivered().  // the consumer skips an event it has applied
		AppliedTwice(). // and the projection's own code is idempotent
		Then(map[string]int{"acct-1": 15})
}

// ReadModel is called from tests, as balancesAddDeposits above shows.
func ExampleReadModel() {
	_ = balancesAddDeposits // the body of func TestBalancesAddDeposits(t *testing.T)
}
