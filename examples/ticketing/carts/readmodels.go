package carts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"esgo.dev/es"
	"esgo.dev/es/sqlite"
	"esgo.dev/examples/ticketing/internal/readmodel"
	"esgo.dev/examples/ticketing/money"
)

// applyLines keeps cart lines in table: the open cart's lines, each set to
// what its event says, all deleted when the cart is confirmed or
// cancelled. Both read models use it; each owns its own table.
func applyLines(ctx context.Context, tx *sql.Tx, table string, v any) (userID string, err error) {
	exec := func(q string, args ...any) error {
		_, err := tx.ExecContext(ctx, q, args...)
		return err
	}
	switch e := v.(type) {
	case CartOpened:
		return e.UserID, exec(`DELETE FROM `+table+` WHERE user_id = ?`, e.UserID)
	case ItemAdded:
		return e.UserID, exec(`INSERT OR REPLACE INTO `+table+` VALUES (?, ?, ?, ?, ?, ?, ?)`,
			e.UserID, e.ConcertID, e.TicketType, e.ConcertName, e.Quantity, e.UnitPrice.Amount, e.UnitPrice.Currency)
	case QuantityChanged:
		return e.UserID, exec(`UPDATE `+table+` SET quantity = ? WHERE user_id = ? AND concert_id = ? AND ticket_type = ?`,
			e.Quantity, e.UserID, e.ConcertID, e.TicketType)
	case ItemRemoved:
		return e.UserID, exec(`DELETE FROM `+table+` WHERE user_id = ? AND concert_id = ? AND ticket_type = ?`, e.UserID, e.ConcertID, e.TicketType)
	case CartConfirmed:
		return e.UserID, exec(`DELETE FROM `+table+` WHERE user_id = ?`, e.UserID)
	case CartCancelled:
		return e.UserID, exec(`DELETE FROM `+table+` WHERE user_id = ?`, e.UserID)
	}
	return "", nil
}

func createLines(ctx context.Context, tx *sql.Tx, table string) error {
	_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+table+` (user_id TEXT NOT NULL, concert_id TEXT NOT NULL,
		ticket_type TEXT NOT NULL, concert_name TEXT NOT NULL, quantity INTEGER NOT NULL,
		price INTEGER NOT NULL, currency TEXT NOT NULL, PRIMARY KEY (user_id, concert_id, ticket_type)) STRICT`)
	return err
}

// ContentsProjection keeps the lines of each user's open cart in the table
// cart_lines.
func ContentsProjection(reg *es.Registry) sqlite.Projection {
	return sqlite.Projection{
		Name:   "cart-contents",
		Tables: []string{"cart_lines"},
		Setup: func(ctx context.Context, tx *sql.Tx, t sqlite.Tables) error {
			return createLines(ctx, tx, t.Name("cart_lines"))
		},
		Apply: func(ctx context.Context, tx *sql.Tx, t sqlite.Tables, e es.Event) error {
			v, ok, err := readmodel.Decode(reg, e)
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
		FROM cart_lines WHERE user_id = ? ORDER BY concert_id, ticket_type`, userID)
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
func SummaryProjection(reg *es.Registry) sqlite.Projection {
	return sqlite.Projection{
		Name:   "cart-summary",
		Tables: []string{"cart_summary_lines", "cart_summaries"},
		Setup: func(ctx context.Context, tx *sql.Tx, t sqlite.Tables) error {
			if err := createLines(ctx, tx, t.Name("cart_summary_lines")); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+t.Name("cart_summaries")+` (user_id TEXT PRIMARY KEY,
				items INTEGER NOT NULL, total INTEGER NOT NULL, currency TEXT NOT NULL) STRICT`)
			return err
		},
		Apply: func(ctx context.Context, tx *sql.Tx, t sqlite.Tables, e es.Event) error {
			v, ok, err := readmodel.Decode(reg, e)
			if !ok || err != nil {
				return err
			}
			user, err := applyLines(ctx, tx, t.Name("cart_summary_lines"), v)
			if err != nil || user == "" {
				return err
			}
			// A cart holds one currency (the decider sees to it), so the
			// sum in minor units is meaningful.
			_, err = tx.ExecContext(ctx, `INSERT OR REPLACE INTO `+t.Name("cart_summaries")+`
				SELECT ?, COALESCE(SUM(quantity), 0), COALESCE(SUM(quantity * price), 0), COALESCE(MIN(currency), '')
				FROM `+t.Name("cart_summary_lines")+` WHERE user_id = ?`, user, user)
			return err
		},
	}
}

// SummaryOf returns a user's cart summary; a user without a cart has an
// empty one.
func SummaryOf(ctx context.Context, db *sql.DB, userID string) (Summary, error) {
	s := Summary{UserID: userID}
	err := db.QueryRowContext(ctx, `SELECT items, total, currency FROM cart_summaries WHERE user_id = ?`, userID).
		Scan(&s.Items, &s.Total.Amount, &s.Total.Currency)
	if errors.Is(err, sql.ErrNoRows) {
		return s, nil
	}
	return s, err
}
