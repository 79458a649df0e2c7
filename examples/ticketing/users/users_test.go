package users_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/es/sqlite"
	"esgo.dev/es/sqlite/sqlitetest"
	"esgo.dev/examples/ticketing/users"
)

// spec makes the specs of the user decider, one per test.
var spec = estest.ForDecider(users.Decider())

func register() users.RegisterUser {
	return users.RegisterUser{UserID: "u1", Email: "  Ala@Example.COM ", Name: "Ala", PasswordHash: "$2a$hash", Role: users.Customer}
}

var registered = users.UserRegistered{UserID: "u1", Email: "ala@example.com", Name: "Ala", PasswordHash: "$2a$hash", Role: users.Customer}

func TestAUserRegistersWithALowerCaseEmail(t *testing.T) {
	spec.Given(t).When(register()).Then(registered)
}

func TestAUserRegistersOnce(t *testing.T) {
	spec.Given(t, registered).When(register()).ThenError(users.ErrUserExists)
}

func TestRegistrationNeedsAValidEmail(t *testing.T) {
	c := register()
	c.Email = "Ala <ala@example.com>"
	spec.Given(t).When(c).ThenError(users.ErrInvalidEmail)
}

func TestRegistrationNeedsAKnownRole(t *testing.T) {
	c := register()
	c.Role = "root"
	spec.Given(t).When(c).ThenError(users.ErrUnknownRole)
}

func TestAnAdminCanChangeARole(t *testing.T) {
	spec.Given(t, registered).
		When(users.ChangeRole{UserID: "u1", Role: users.Organizer, ActorID: "admin-1", ActorRole: users.Admin}).
		Then(users.RoleChanged{UserID: "u1", Role: users.Organizer, ChangedBy: "admin-1"})
}

func TestOnlyAnAdminCanChangeRoles(t *testing.T) {
	spec.Given(t, registered).
		When(users.ChangeRole{UserID: "u1", Role: users.Admin, ActorID: "u1", ActorRole: users.Organizer}).
		ThenError(users.ErrForbidden)
}

func TestARoleMustBeKnown(t *testing.T) {
	spec.Given(t, registered).
		When(users.ChangeRole{UserID: "u1", Role: "root", ActorID: "a", ActorRole: users.Admin}).
		ThenError(users.ErrUnknownRole)
}

func TestAnUnknownUsersRoleCannotChange(t *testing.T) {
	spec.Given(t).
		When(users.ChangeRole{UserID: "u1", Role: users.Organizer, ActorID: "a", ActorRole: users.Admin}).
		ThenError(users.ErrNoUser)
}

func TestGivingTheSameRoleChangesNothing(t *testing.T) {
	spec.Given(t, registered).
		When(users.ChangeRole{UserID: "u1", Role: users.Customer, ActorID: "a", ActorRole: users.Admin}).
		ThenNothing()
}

func TestPasswordsAreHashedAndCheckedWithBcrypt(t *testing.T) {
	if _, err := users.HashPassword("short"); !errors.Is(err, users.ErrWeakPassword) {
		t.Fatalf("short password: %v", err)
	}
	if _, err := users.HashPassword(strings.Repeat("long", 19)); !errors.Is(err, users.ErrPasswordTooLong) {
		t.Fatalf("a password over bcrypt's 72 bytes: %v", err)
	}
	h, err := users.HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if h == "correct horse" || !users.CheckPassword(h, "correct horse") || users.CheckPassword(h, "wrong horse") {
		t.Fatal("bcrypt round trip failed")
	}
}

func registry(t *testing.T) *es.Registry {
	reg := es.NewRegistry()
	if err := users.Register(reg); err != nil {
		t.Fatal(err)
	}
	return reg
}

func TestEventSchemas(t *testing.T) {
	estest.GoldenSchema(t, registry(t), "testdata/events")
}

func TestUsersByEmailFollowRegistrationsAndRoles(t *testing.T) {
	reg := registry(t)
	rm := sqlitetest.ReadModel(t, sqlite.FromPortable(users.ByEmailProjection(reg)), func(ctx context.Context, db *sql.DB) (users.Account, error) {
		return users.ByEmail(ctx, db, "ALA@example.com")
	})
	estest.Projection(t, reg, rm).
		Given(estest.InStream("user-u1", registered, users.RoleChanged{UserID: "u1", Role: users.Organizer, ChangedBy: "a"}),
			estest.InStream("user-u2", users.UserRegistered{UserID: "u2", Email: "ola@example.com", Name: "Ola", PasswordHash: "h", Role: users.Customer})).
		Redelivered().AppliedTwice().
		Then(users.Account{Email: "ala@example.com", UserID: "u1", Name: "Ala", Role: users.Organizer})
}

func TestAccountsListsEveryAccountByEmail(t *testing.T) {
	reg := registry(t)
	rm := sqlitetest.ReadModel(t, sqlite.FromPortable(users.ByEmailProjection(reg)), users.Accounts)
	estest.Projection(t, reg, rm).
		Given(estest.InStream("user-u2", users.UserRegistered{UserID: "u2", Email: "ola@example.com", Name: "Ola", PasswordHash: "h", Role: users.Customer}),
			estest.InStream("user-u1", registered, users.RoleChanged{UserID: "u1", Role: users.Organizer, ChangedBy: "a"})).
		Redelivered().AppliedTwice().
		Then([]users.Account{
			{Email: "ala@example.com", UserID: "u1", Name: "Ala", Role: users.Organizer},
			{Email: "ola@example.com", UserID: "u2", Name: "Ola", Role: users.Customer},
		})
}
