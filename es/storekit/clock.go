package storekit

import (
	"fmt"
	"time"

	"esgo.dev/es"
)

// RecordedAt reads the time to stamp on appended events from c, in UTC,
// and refuses one that some store could not read back: before year 1 or
// after year 9999 (SQLite keeps fixed-width text, JSON and RFC 3339 four
// digits). A clock gone wrong then fails the appends it stamps, with an
// error wrapping [es.ErrInvalidConfig], instead of poisoning the log with
// an event that no read gets past.
func RecordedAt(c es.Clock) (time.Time, error) {
	now := c.Now().UTC()
	if y := now.Year(); y < 1 || y > 9999 {
		return time.Time{}, fmt.Errorf("%w: the clock reads %s, outside the years 1 to 9999 a store can keep", es.ErrInvalidConfig, now.Format(time.RFC3339))
	}
	return now, nil
}
