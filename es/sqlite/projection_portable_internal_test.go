package sqlite

import "testing"

func TestNumberedPlaceholders(t *testing.T) {
	for in, want := range map[string]string{
		`SELECT 1`:                                        `SELECT 1`,
		`VALUES ($2, $1, $10)`:                            `VALUES (?2, ?1, ?10)`,
		`WHERE a = $1 AND b = $1`:                         `WHERE a = ?1 AND b = ?1`,
		`SELECT '$1', "$2", $3`:                           `SELECT '$1', "$2", ?3`,
		`SELECT 'it''s $1', $2`:                           `SELECT 'it''s $1', ?2`,
		`SELECT "a""$1" FROM t WHERE x=$1`:                `SELECT "a""$1" FROM t WHERE x=?1`,
		"SELECT `$1`, [$2], $3":                           "SELECT `$1`, [$2], ?3",
		"SELECT $1 -- $2\n, $3":                           "SELECT ?1 -- $2\n, ?3",
		`SELECT /* $1 */ $2`:                              `SELECT /* $1 */ ?2`,
		`SELECT a$1 FROM t WHERE b = $1`:                  `SELECT a$1 FROM t WHERE b = ?1`,
		`SELECT $name, $`:                                 `SELECT $name, $`,
		`SELECT 'unterminated $1`:                         `SELECT 'unterminated $1`,
		`SELECT /* unterminated $1`:                       `SELECT /* unterminated $1`,
		`INSERT INTO t VALUES ($1)ON CONFLICT DO NOTHING`: `INSERT INTO t VALUES (?1)ON CONFLICT DO NOTHING`,
	} {
		if got := numberedPlaceholders(in); got != want {
			t.Errorf("numberedPlaceholders(%q) = %q, want %q", in, got, want)
		}
	}
}
