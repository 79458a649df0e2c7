package memory

import (
	"context"
	"sync"
)

// Locker is an in-process [es.Locker]: it grants each name to one holder at
// a time within this process. A lease is lost only when released.
type Locker struct {
	mu   sync.Mutex
	held map[string]chan struct{} // closed when the lease is released
}

// NewLocker returns a Locker with no leases held.
func NewLocker() *Locker { return &Locker{held: make(map[string]chan struct{})} }

// Lock implements [es.Locker].
func (l *Locker) Lock(ctx context.Context, name string) (context.Context, func(), error) {
	for {
		l.mu.Lock()
		released, busy := l.held[name]
		if !busy {
			mine := make(chan struct{})
			l.held[name] = mine
			l.mu.Unlock()
			held, cancel := context.WithCancel(ctx)
			var once sync.Once
			return held, func() {
				once.Do(func() {
					cancel()
					l.mu.Lock()
					delete(l.held, name)
					l.mu.Unlock()
					close(mine)
				})
			}, nil
		}
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-released:
		}
	}
}
