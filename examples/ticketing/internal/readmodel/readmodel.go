// Package readmodel holds what the ticketing modules' SQL read models share.
package readmodel

import (
	"errors"

	"esgo.dev/es"
)

// Decode decodes e with reg. Events of types reg does not know (another
// module's, or the process handler's bookkeeping events) are reported as
// not ok rather than as an error: a read model follows the whole log and
// ignores what is not for it.
func Decode(reg *es.Registry, e es.Event) (any, bool, error) {
	v, err := reg.Decode(e)
	if errors.Is(err, es.ErrUnknownEventType) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return v, true, nil
}
