package app

import (
	"context"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"esgo.dev/es/sqlite"
)

// A log-in for an unknown address compares the password against a hash of
// the same bcrypt cost as the accounts' (PasswordCost), so that the time a
// failed log-in takes does not tell whether the address has an account.
// Checked by the hash's cost, not by timing, which a busy machine blurs.
func TestTheDummyHashHasTheAccountsCost(t *testing.T) {
	store, err := sqlite.OpenMemory(context.Background(), sqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, cost := range []int{0, 4, 5} {
		a, err := New(Config{Events: store, ReadModels: SQLiteReadModels(store), PasswordCost: cost})
		if err != nil {
			t.Fatal(err)
		}
		want := cost
		if want == 0 {
			want = bcrypt.DefaultCost
		}
		if got, err := bcrypt.Cost([]byte(a.noSuchUserHash)); err != nil || got != want {
			t.Errorf("PasswordCost %d: the dummy hash has cost %d (%v), want %d", cost, got, err, want)
		}
	}
}
