package memory

import (
	"context"

	"esgo.dev/es"
	"esgo.dev/es/storekit"
)

// Locker is an in-process [es.Locker]: it grants each name to one holder at
// a time within this process. A lease is lost only when released.
type Locker struct {
	local storekit.LocalLocker
}

// NewLocker returns a Locker with no leases held.
func NewLocker() *Locker { return &Locker{} }

// Lock implements [es.Locker].
func (l *Locker) Lock(ctx context.Context, name string) (context.Context, func(), error) {
	return l.local.Lock(ctx, name)
}

// TryLock implements [es.TryLocker].
func (l *Locker) TryLock(ctx context.Context, name string) (context.Context, func(), bool, error) {
	return l.local.TryLock(ctx, name)
}

var _ es.TryLocker = (*Locker)(nil)
