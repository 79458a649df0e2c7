package sqlite

import (
	"context"
	"database/sql"
	"strings"

	"esgo.dev/es"
	"esgo.dev/es/sqlprojection"
)

// FromPortable returns the store-neutral projection p as a [Projection]
// of this store, for [Store.Consumer], [Config].Inline and [Store.Rebuild]:
// the same p runs on PostgreSQL through postgres.FromPortable. Its SQL
// gets SQLite's numbered placeholders for p's $1-style ones, which
// SQLite would otherwise bind in order of appearance rather than by
// number. p is checked ([sqlprojection.Projection.Validate]) before every
// Setup, which runs before any event is applied.
func FromPortable(p sqlprojection.Projection) Projection {
	sp := Projection{
		Name:   p.Name,
		Tables: p.Tables,
		Setup: func(ctx context.Context, tx *sql.Tx, t Tables) error {
			if err := p.Validate(); err != nil {
				return err
			}
			return p.Setup(ctx, portableTx{tx}, t)
		},
	}
	if p.ApplyBatch != nil {
		sp.ApplyBatch = func(ctx context.Context, tx *sql.Tx, t Tables, events []es.Event) error {
			return p.ApplyBatch(ctx, portableTx{tx}, t, events)
		}
	} else if p.Apply != nil {
		sp.Apply = func(ctx context.Context, tx *sql.Tx, t Tables, e es.Event) error {
			return p.Apply(ctx, portableTx{tx}, t, e)
		}
	}
	return sp
}

// portableTx is a *sql.Tx as a [sqlprojection.Tx].
type portableTx struct{ tx *sql.Tx }

func (t portableTx) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := t.tx.ExecContext(ctx, numberedPlaceholders(query), args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (t portableTx) Query(ctx context.Context, query string, args ...any) (sqlprojection.Rows, error) {
	rows, err := t.tx.QueryContext(ctx, numberedPlaceholders(query), args...)
	if err != nil {
		return nil, err // not a nil *sql.Rows in a non-nil interface
	}
	return rows, nil
}

func (t portableTx) QueryRow(ctx context.Context, query string, args ...any) sqlprojection.Row {
	return t.tx.QueryRowContext(ctx, numberedPlaceholders(query), args...)
}

// numberedPlaceholders rewrites PostgreSQL-style placeholders ($1) to
// SQLite's numbered ones (?1). SQLite reads $1 as a parameter named "1"
// and numbers named parameters in order of first appearance, so "VALUES
// ($2, $1)" would bind the arguments the wrong way round; ?1 is bound by
// its number. String literals, quoted identifiers and comments are left
// alone, and so is a $ inside an identifier (which SQLite allows).
func numberedPlaceholders(q string) string {
	if !strings.Contains(q, "$") {
		return q
	}
	b := []byte(q)
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case '\'', '"', '`':
			i = skipQuoted(b, i, c)
		case '[':
			i = skipQuoted(b, i, ']')
		case '-':
			if i+1 < len(b) && b[i+1] == '-' {
				for i < len(b) && b[i] != '\n' {
					i++
				}
			}
		case '/':
			if i+1 < len(b) && b[i+1] == '*' {
				i += 2
				for i+1 < len(b) && (b[i] != '*' || b[i+1] != '/') {
					i++
				}
				i++
			}
		case '$':
			if i+1 < len(b) && isDigit(b[i+1]) && (i == 0 || !isIdentByte(b[i-1])) {
				b[i] = '?'
			}
		}
	}
	return string(b)
}

// skipQuoted returns the index of the byte that closes the quoted text
// starting at b[i] (a doubled closing byte is part of the text), or the
// last index when it is not closed.
func skipQuoted(b []byte, i int, closing byte) int {
	for i++; i < len(b); i++ {
		if b[i] == closing {
			if closing != ']' && i+1 < len(b) && b[i+1] == closing {
				i++
				continue
			}
			return i
		}
	}
	return len(b) - 1
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isIdentByte(c byte) bool {
	return isDigit(c) || c == '_' || c == '$' || c >= 0x80 || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}
