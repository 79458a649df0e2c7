package es

import (
	"fmt"
	"strconv"
)

// ExpectedVersion is what a writer expects a stream's current version to be
// when it appends. Versions are 1-based, so a stream at version 0 does not
// exist yet. Use [AnyVersion], [NoStream], [StreamExists] or [Exact].
type ExpectedVersion int64

const (
	// AnyVersion appends whatever the stream's version is.
	AnyVersion ExpectedVersion = -1
	// StreamExists appends only to a stream that has at least one event.
	StreamExists ExpectedVersion = -2
	// NoStream appends only if the stream has no events yet. It equals Exact(0).
	NoStream ExpectedVersion = 0
)

// Exact expects the stream to be at exactly version v. Exact(0) is [NoStream].
func Exact(v int64) ExpectedVersion {
	if v < 0 {
		// A negative version is never a stream's version: keep the
		// expectation failing rather than turning it into a sentinel.
		return ExpectedVersion(minExact)
	}
	return ExpectedVersion(v)
}

// minExact is the value Exact returns for a negative version: it never matches.
const minExact = -1 << 62

// String describes the expectation: "any version", "no stream",
// "stream exists" or "version N".
func (e ExpectedVersion) String() string {
	switch {
	case e == AnyVersion:
		return "any version"
	case e == StreamExists:
		return "stream exists"
	case e == NoStream:
		return "no stream"
	case e < 0:
		return "invalid version " + strconv.FormatInt(int64(e), 10)
	default:
		return "version " + strconv.FormatInt(int64(e), 10)
	}
}

// Check returns nil if a stream at version actual meets the expectation, and
// a *[VersionConflictError] otherwise. Stores call it inside their write
// transaction.
func (e ExpectedVersion) Check(streamID string, actual int64) error {
	ok := false
	switch {
	case e == AnyVersion:
		ok = true
	case e == StreamExists:
		ok = actual > 0
	case e >= 0:
		ok = int64(e) == actual
	}
	if ok {
		return nil
	}
	return &VersionConflictError{StreamID: streamID, Expected: e, Actual: actual}
}

// VersionConflictError reports an append whose expectation did not hold.
// errors.Is matches it with [ErrConcurrency], and with [ErrStreamNotFound]
// when [StreamExists] was expected of a stream that has no events.
type VersionConflictError struct {
	StreamID string
	Expected ExpectedVersion
	Actual   int64
}

func (e *VersionConflictError) Error() string {
	return fmt.Sprintf("es: wrong expected version for stream %q: expected %s, stream is at version %d",
		e.StreamID, e.Expected, e.Actual)
}

// Is makes errors.Is(err, ErrConcurrency) true for every conflict.
func (e *VersionConflictError) Is(target error) bool {
	switch target {
	case ErrConcurrency:
		return true
	case ErrStreamNotFound:
		return e.Expected == StreamExists && e.Actual == 0
	}
	return false
}
