package pgtest_test

import (
	"context"
	"fmt"
	"testing"

	"esgo.dev/es"
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
