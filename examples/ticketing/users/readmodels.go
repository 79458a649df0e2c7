package users

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"esgo.dev/es"
	"esgo.dev/es/sqlprojection"
)

// ErrNotFound reports an address the read model does not (yet) know.
var ErrNotFound = errors.New("users: no user with that e-mail in the read model")

// Account is an entry of the users by e-mail read model. It has no
// password hash: log-in reads the user's stream, not a read model.
type Account struct {
	Email  string
	UserID string
	Name   string
	Role   Role
}

// ByEmailProjection keeps users by e-mail address in the table
// users_by_email. Its SQL is portable: the same projection runs on SQLite
// and PostgreSQL.
func ByEmailProjection(reg *es.Registry) sqlprojection.Projection {
	return sqlprojection.Projection{
		Name:   "users-by-email",
		Tables: []string{"users_by_email"},
		Setup: func(ctx context.Context, tx sqlprojection.Tx, t sqlprojection.Tables) error {
			_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+t.Name("users_by_email")+` (email TEXT PRIMARY KEY,
				user_id TEXT NOT NULL UNIQUE, name TEXT NOT NULL, role TEXT NOT NULL)`)
			return err
		},
		Apply: func(ctx context.Context, tx sqlprojection.Tx, t sqlprojection.Tables, e es.Event) error {
			v, ok, err := reg.DecodeKnown(e)
			if !ok || err != nil {
				return err
			}
			switch ev := v.(type) {
			case UserRegistered:
				_, err = tx.Exec(ctx, `INSERT INTO `+t.Name("users_by_email")+` (email, user_id, name, role) VALUES ($1, $2, $3, $4)
					ON CONFLICT (email) DO UPDATE SET user_id = excluded.user_id, name = excluded.name, role = excluded.role`,
					ev.Email, ev.UserID, ev.Name, ev.Role)
			case RoleChanged:
				_, err = tx.Exec(ctx, `UPDATE `+t.Name("users_by_email")+` SET role = $1 WHERE user_id = $2`, ev.Role, ev.UserID)
			}
			return err
		},
	}
}

// ByEmail looks an account up by address (normalised first).
func ByEmail(ctx context.Context, db *sql.DB, email string) (Account, error) {
	e, err := NormaliseEmail(email)
	if err != nil {
		return Account{}, err
	}
	a := Account{Email: e}
	err = db.QueryRowContext(ctx, `SELECT user_id, name, role FROM users_by_email WHERE email = $1`, e).Scan(&a.UserID, &a.Name, &a.Role)
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("%w: %s", ErrNotFound, e)
	}
	return a, err
}

// Accounts lists every account, by e-mail address: what an admin sees to
// manage roles.
func Accounts(ctx context.Context, db *sql.DB) ([]Account, error) {
	rows, err := db.QueryContext(ctx, `SELECT email, user_id, name, role FROM users_by_email ORDER BY email`)
	if err != nil {
		return nil, fmt.Errorf("users: accounts: %w", err)
	}
	defer rows.Close()
	var out []Account
	for rows.Next() {
		var a Account
		if err := rows.Scan(&a.Email, &a.UserID, &a.Name, &a.Role); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}
