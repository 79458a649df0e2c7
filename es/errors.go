package es

import "errors"

// Sentinel errors. Stores and the registry wrap them with detail; test for
// them with errors.Is.
var (
	// ErrConcurrency reports that a stream was not at the expected version.
	// The concrete error is a *VersionConflictError.
	ErrConcurrency = errors.New("es: wrong expected version")
	// ErrStreamNotFound reports that a stream expected to exist has no events.
	ErrStreamNotFound = errors.New("es: stream not found")
	// ErrDuplicateEventID reports an append of an event ID that is already
	// stored with a different stream, type or payload.
	ErrDuplicateEventID = errors.New("es: event ID already stored with a different payload")
	// ErrInvalidAppend reports a malformed append request (empty stream ID,
	// bad event ID, empty type, data that is not a JSON object, ...).
	// Nothing is written.
	ErrInvalidAppend = errors.New("es: invalid append")
	// ErrUnknownEventType reports a type name or Go type the registry does not know.
	ErrUnknownEventType = errors.New("es: unknown event type")
	// ErrTypeRegistered reports a second registration of a name or Go type.
	ErrTypeRegistered = errors.New("es: event type already registered")
	// ErrMissingUpcaster reports a stored schema version that no upcaster
	// chain leads from to the current version.
	ErrMissingUpcaster = errors.New("es: missing upcaster")
	// ErrUpcast reports an upcaster that failed.
	ErrUpcast = errors.New("es: upcast failed")
	// ErrDecode reports stored data that does not decode into its Go type.
	ErrDecode = errors.New("es: decode failed")
	// ErrInvalidConfig reports a configuration that cannot work (a negative
	// batch size, say). Run methods and constructors that return errors
	// wrap it; nothing has started.
	ErrInvalidConfig = errors.New("es: invalid configuration")
	// ErrOutcomeUnknown reports an append whose COMMIT was sent but whose
	// answer never came (a cancelled context, a broken connection): the
	// events may or may not have been written. Retrying the append with
	// the same event IDs is safe and tells which: a repeat returns the
	// stored results marked Repeated.
	ErrOutcomeUnknown = errors.New("es: append outcome unknown: it may have been written")
	// ErrUnreadableEvent reports a stored event that a store cannot turn
	// into an [Event] (metadata or a time that does not decode, say: a row
	// written by another tool or by hand). Reads yield the events before it
	// and then an error that wraps this sentinel and names the event's
	// position and ID; a [Subscription] stops there rather than skip it.
	ErrUnreadableEvent = errors.New("es: unreadable stored event")
	// ErrNewerSchema reports a store whose tables were written by a newer
	// release of es than the one running: an older release would not know
	// what the newer one relies on, so it refuses to touch them.
	ErrNewerSchema = errors.New("es: the store's schema is newer than this release")
)
