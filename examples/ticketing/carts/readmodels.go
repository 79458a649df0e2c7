package carts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"esgo.dev/es"
	"esgo.dev/es/sqlprojection"
	"esgo.dev/examples/ticketing/money"
)

// applyLines keeps cart lines in table: the open cart's lines, each set to
// what its event says, all deleted when the cart is confirmed or
// cancelled. Both read models use it; each owns its own table.
func applyLines(ctx context.Context, tx sqlprojection.Tx, table string, v any) (userID string, err error) {
	exec := func(q string, args ...any) error {
		_, err := tx.Exec(ctx, q, args...)
		return err
	}
	switch e := v.(type) {
	case CartOpened:
		return e.UserID, exec(`DELETE FROM `+table+` WHERE user_id = $1`, e.UserID)
	case ItemAdded:
		return e.UserID, exec(`INSERT INTO `+table+` (user_id, concert_id, ticket_type, concert_name, quantity, price, currency)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (user_id, concert_id, ticket_type) DO UPDATE SET concert_name = excluded.concert_name,
				quantity = excluded.quantity, price = excluded.price, currency = excluded.currency`,
			e.UserID, e.ConcertID, e.TicketType, e.ConcertName, e.Quantity, e.UnitPrice.Amount, e.UnitPrice.Currency)
	case QuantityChanged:
		return e.UserID, exec(`UPDATE `+table+` SET quantity = $1 WHERE user_id = $2 AND concert_id = $3 AND ticket_type = $4`,
			e.Quantity, e.UserID, e.ConcertID, e.TicketType)
	case ItemRemoved:
		return e.UserID, exec(`DELETE FROM `+table+` WHERE user_id = $1 AND concert_id = $2 AND ticket_type = $3`, e.UserID, e.ConcertID, e.TicketType)
	case ItemsRestored:
		for _, l := range e.Lines {
			if err := exec(`INSERT INTO `+table+` (user_id, concert_id, ticket_type, concert_name, quantity, price, currency)
				VALUES ($1, $2, $3, $4, $5, $6, $7)
				ON CONFLICT (user_id, concert_id, ticket_type) DO UPDATE SET concert_name = excluded.concert_name,
					quantity = excluded.quantity, price = excluded.price, currency = excluded.currency`,
				e.UserID, l.ConcertID, l.TicketType, l.ConcertName, l.Quantity, l.UnitPrice.Amount, l.UnitPrice.Currency); err != nil {
				return "", err
			}
		}
		return e.UserID, nil
	case CartConfirmed:
		return e.UserID, exec(`DELETE FROM `+table+` WHERE user_id = $1`, e.UserID)
	case CartCancelled:
		return e.UserID, exec(`DELETE FROM `+table+` WHERE user_id = $1`, e.UserID)
	}
	return "", nil
}

func createLines(ctx context.Context, tx sqlprojection.Tx, table string) error {
	_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+table+` (user_id TEXT NOT NULL, concert_id TEXT NOT NULL,
		ticket_type TEXT NOT NULL, concert_name TEXT NOT NULL, quantity INTEGER NOT NULL,
		price BIGINT NOT NULL, currency TEXT NOT NULL, PRIMARY KEY (user_id, concert_id, ticket_type))`)
	return err
}

// ContentsProjection keeps the lines of each user's open cart in the table
// cart_lines. Its SQL is portable: the same projection runs on SQLite and
// PostgreSQL.
func ContentsProjection(reg *es.Registry) sqlprojection.Projection {
	return sqlprojection.Projection{
		Name:   "cart-contents",
		Tables: []string{"cart_lines"},
		Setup: func(ctx context.Context, tx sqlprojection.Tx, t sqlprojection.Tables) error {
			return createLines(ctx, tx, t.Name("cart_lines"))
		},
		Apply: func(ctx context.Context, tx sqlprojection.Tx, t sqlprojection.Tables, e es.Event) error {
			v, ok, err := reg.DecodeKnown(e)
			if !ok || err != nil {
				return err
			}
			_, err = applyLines(ctx, tx, t.Name("cart_lines"), v)
			return err
		},
	}
}

// Contents returns the lines of a user's open cart, in concert and ticket
// type order.
func Contents(ctx context.Context, db *sql.DB, userID string) ([]Line, error) {
	rows, err := db.QueryContext(ctx, `SELECT concert_id, concert_name, ticket_type, quantity, price, currency
		FROM cart_lines WHERE user_id = $1 ORDER BY concert_id, ticket_type`, userID)
	if err != nil {
		return nil, fmt.Errorf("cart contents: %w", err)
	}
	defer rows.Close()
	var out []Line
	for rows.Next() {
		var l Line
		if err := rows.Scan(&l.ConcertID, &l.ConcertName, &l.TicketType, &l.Quantity, &l.UnitPrice.Amount, &l.UnitPrice.Currency); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// Summary is the cart summary read model of a user: how many tickets the
// open cart holds and what they cost.
type Summary struct {
	UserID string
	Items  int
	Total  money.Money
}

// SummaryProjection keeps each user's cart summary in the table
// cart_summaries, recomputed in the same transaction from the projection's
// own copy of the lines (cart_summary_lines) after every event, so it is
// never out of step with them and a redelivered event changes nothing.
// Its SQL is portable: the same projection runs on SQLite and PostgreSQL.
func SummaryProjection(reg *es.Registry) sqlprojection.Projection {
	return sqlprojection.Projection{
		Name:   "cart-summary",
		Tables: []string{"cart_summary_lines", "cart_summaries"},
		Setup: func(ctx context.Context, tx sqlprojection.Tx, t sqlprojection.Tables) error {
			if err := createLines(ctx, tx, t.Name("cart_summary_lines")); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+t.Name("cart_summaries")+` (user_id TEXT PRIMARY KEY,
				items INTEGER NOT NULL, total BIGINT NOT NULL, currency TEXT NOT NULL)`)
			return err
		},
		Apply: func(ctx context.Context, tx sqlprojection.Tx, t sqlprojection.Tables, e es.Event) error {
			v, ok, err := reg.DecodeKnown(e)
			if !ok || err != nil {
				return err
			}
			user, err := applyLines(ctx, tx, t.Name("cart_summary_lines"), v)
			if err != nil || user == "" {
				return err
			}
			// A cart holds one currency (the decider sees to it), so the
			// sum in minor units is meaningful. The sums are cast because
			// PostgreSQL's SUM of a BIGINT is a NUMERIC.
			_, err = tx.Exec(ctx, `INSERT INTO `+t.Name("cart_summaries")+` (user_id, items, total, currency)
				SELECT $1, CAST(COALESCE(SUM(quantity), 0) AS INTEGER), CAST(COALESCE(SUM(quantity * price), 0) AS BIGINT),
					COALESCE(MIN(currency), '')
				FROM `+t.Name("cart_summary_lines")+` WHERE user_id = $1
				ON CONFLICT (user_id) DO UPDATE SET items = excluded.items, total = excluded.total, currency = excluded.currency`,
				user)
			return err
		},
	}
}

// SummaryOf returns a user's cart summary; a user without a cart has an
// empty one.
func SummaryOf(ctx context.Context, db *sql.DB, userID string) (Summary, error) {
	s := Summary{UserID: userID}
	err := db.QueryRowContext(ctx, `SELECT items, total, currency FROM cart_summaries WHERE user_id = $1`, userID).
		Scan(&s.Items, &s.Total.Amount, &s.Total.Currency)
	if errors.Is(err, sql.ErrNoRows) {
		return s, nil
	}
	return s, err
}
