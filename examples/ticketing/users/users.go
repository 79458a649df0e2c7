// Package users is the ticketing example's user accounts: registration
// with a unique e-mail address, log-in, and roles (customer, organizer,
// admin).
//
// The e-mail address is unique even when two people register it at the
// same moment: registration appends the user's stream and the stream
// "email-<normalised address>" in one atomic append, both expecting
// es.NoStream, so exactly one registration can create the address's
// stream (see package app). Addresses are normalised to lower case.
// Passwords are hashed with bcrypt before they reach a command; the plain
// password is never stored, logged or put in an event, and log-in compares
// through bcrypt, in constant time.
//
// Only an admin may change roles: the command carries the acting user's
// ID and role, which the HTTP layer takes from the session. Whether a
// caller is logged in at all is the HTTP layer's concern too.
package users

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"esgo.dev/es"
)

// Business errors of the users module.
var (
	// ErrEmailTaken: another account uses the e-mail address.
	ErrEmailTaken = errors.New("users: e-mail address already registered")
	// ErrInvalidEmail: not an e-mail address.
	ErrInvalidEmail = errors.New("users: invalid e-mail address")
	// ErrUserExists: the user ID is taken.
	ErrUserExists = errors.New("users: user already exists")
	// ErrNoUser: no such user.
	ErrNoUser = errors.New("users: no such user")
	// ErrUnknownRole: not one of customer, organizer, admin.
	ErrUnknownRole = errors.New("users: unknown role")
	// ErrForbidden: only an admin may change roles.
	ErrForbidden = errors.New("users: only an admin may change roles")
	// ErrWeakPassword: the password is too short.
	ErrWeakPassword = errors.New("users: the password needs at least 8 characters")
	// ErrPasswordTooLong: bcrypt reads at most 72 bytes of a password, and
	// refuses longer ones rather than ignore the rest.
	ErrPasswordTooLong = errors.New("users: the password may have at most 72 bytes")
	// ErrInvalidCredentials: unknown e-mail or wrong password (one error
	// for both, so that log-in does not reveal who has an account).
	ErrInvalidCredentials = errors.New("users: invalid e-mail or password")
	// ErrInvalidUser: a required field is missing.
	ErrInvalidUser = errors.New("users: invalid user")
)

// Role is what a user may do.
type Role string

// Roles.
const (
	Customer  Role = "customer"
	Organizer Role = "organizer"
	Admin     Role = "admin"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == Customer || r == Organizer || r == Admin }

// NormaliseEmail trims and lower-cases an address and checks that it is
// one.
func NormaliseEmail(email string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(email))
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || a.Name != "" {
		return "", fmt.Errorf("%w: %q", ErrInvalidEmail, email)
	}
	return e, nil
}

// HashPassword hashes a password with bcrypt at its default cost, refusing
// short ones.
func HashPassword(password string) (string, error) {
	return HashPasswordCost(password, bcrypt.DefaultCost)
}

// HashPasswordCost is HashPassword at a given bcrypt cost (4 to 31): tests
// use the lowest, as bcrypt's default takes about a second under the race
// detector. A cost out of range is bcrypt's default.
func HashPasswordCost(password string, cost int) (string, error) {
	if len(password) < 8 {
		return "", ErrWeakPassword
	}
	if len(password) > 72 {
		return "", ErrPasswordTooLong
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return "", fmt.Errorf("users: hash password: %w", err)
	}
	return string(h), nil
}

// CheckPassword reports whether password matches hash (bcrypt compares in
// constant time).
func CheckPassword(hash, password string) bool {
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
}

// Stream returns the stream of a user.
func Stream(userID string) string { return "user-" + userID }

// EmailStream returns the stream that reserves a normalised address.
func EmailStream(email string) string { return "email-" + email }

// Command is a command for a user.
type Command interface{ isCommand() }

// RegisterUser creates an account. PasswordHash comes from [HashPassword].
type RegisterUser struct {
	UserID       string
	Email        string
	Name         string
	PasswordHash string
	Role         Role
}

// ChangeRole gives a user another role; ActorID and ActorRole say who asks.
type ChangeRole struct {
	UserID    string
	Role      Role
	ActorID   string
	ActorRole Role
}

func (RegisterUser) isCommand() {}
func (ChangeRole) isCommand()   {}

// Event is an event of a user stream.
type Event interface{ isEvent() }

// UserRegistered: an account was created.
type UserRegistered struct {
	UserID       string `json:"user_id"`
	Email        string `json:"email"`
	Name         string `json:"name"`
	PasswordHash string `json:"password_hash"`
	Role         Role   `json:"role"`
}

// RoleChanged: the user has a new role.
type RoleChanged struct {
	UserID    string `json:"user_id"`
	Role      Role   `json:"role"`
	ChangedBy string `json:"changed_by"`
}

func (UserRegistered) isEvent() {}
func (RoleChanged) isEvent()    {}

// User is the state of a user stream.
type User struct {
	ID           string
	Email        string
	Name         string
	PasswordHash string
	Role         Role
}

// Decider returns the decider of a user.
func Decider() es.Decider[User, Command, Event] {
	return es.Decider[User, Command, Event]{Initial: func() User { return User{} }, Decide: decide, Evolve: evolve}
}

func decide(s User, c Command) ([]Event, error) {
	switch c := c.(type) {
	case RegisterUser:
		if s.ID != "" {
			return nil, ErrUserExists
		}
		email, err := NormaliseEmail(c.Email)
		if err != nil {
			return nil, err
		}
		if c.UserID == "" || strings.TrimSpace(c.Name) == "" || c.PasswordHash == "" {
			return nil, ErrInvalidUser
		}
		if !c.Role.Valid() {
			return nil, fmt.Errorf("%w: %q", ErrUnknownRole, c.Role)
		}
		return []Event{UserRegistered{UserID: c.UserID, Email: email, Name: c.Name, PasswordHash: c.PasswordHash, Role: c.Role}}, nil
	case ChangeRole:
		if c.ActorRole != Admin {
			return nil, ErrForbidden
		}
		if s.ID == "" {
			return nil, ErrNoUser
		}
		if !c.Role.Valid() {
			return nil, fmt.Errorf("%w: %q", ErrUnknownRole, c.Role)
		}
		if c.Role == s.Role {
			return nil, nil
		}
		return []Event{RoleChanged{UserID: s.ID, Role: c.Role, ChangedBy: c.ActorID}}, nil
	}
	return nil, fmt.Errorf("users: unknown command %T", c)
}

func evolve(s User, e Event) User {
	switch e := e.(type) {
	case UserRegistered:
		s = User{ID: e.UserID, Email: e.Email, Name: e.Name, PasswordHash: e.PasswordHash, Role: e.Role}
	case RoleChanged:
		s.Role = e.Role
	}
	return s
}

// EmailClaimed: the address belongs to UserID. It is the only event of an
// e-mail stream, appended with es.NoStream in the registration's append.
type EmailClaimed struct {
	Email  string `json:"email"`
	UserID string `json:"user_id"`
}

// Register registers the module's events in reg ("users.UserRegistered", ...).
func Register(reg *es.Registry) error {
	return errors.Join(
		es.Register[UserRegistered](reg, "users.UserRegistered"),
		es.Register[RoleChanged](reg, "users.RoleChanged"),
		es.Register[EmailClaimed](reg, "users.EmailClaimed"),
	)
}
