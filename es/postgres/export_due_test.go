package postgres

import "fmt"

// DueSQL is the SQL of Due ($1 now, $2 buckets, $3 limit), for the test
// of its plan.
func DueSQL(s *Store) string { return s.horizon() + fmt.Sprintf(dueQuery, s.outbox) }
