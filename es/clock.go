package es

import "time"

// Clock tells the time. Everything in es that needs the time reads it
// through a Clock, so that tests can set and move it (see estest.FakeClock).
type Clock interface {
	Now() time.Time
}

// SystemClock is the real clock, in UTC.
type SystemClock struct{}

// Now returns the current time in UTC.
func (SystemClock) Now() time.Time { return time.Now().UTC() }
