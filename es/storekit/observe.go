package storekit

import (
	"time"

	"esgo.dev/es"
)

// ObserveAppend reports an append that started at start, wrote events
// events and returned err to o, if o is not nil. Stores defer it at the
// top of Append, so that every return path is observed.
func ObserveAppend(o es.StoreObserver, start time.Time, events int, err error) {
	if o == nil {
		return
	}
	if err != nil {
		events = 0
	}
	o.ObserveAppend(events, time.Since(start), err)
}
