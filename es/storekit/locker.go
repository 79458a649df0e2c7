package storekit

import (
	"context"
	"sync"
)

// LocalLocker grants named leases within one process: an [es.Locker] for
// stores whose consumers all live in one process (memory, an in-memory
// SQLite database), and the in-process half of a cross-process locker
// (so that two holders in one process exclude each other before either
// touches the shared lock). A lease is lost only when released. The zero
// LocalLocker is ready to use.
type LocalLocker struct {
	mu   sync.Mutex
	held map[string]chan struct{} // closed when the lease is released
}

// Lock implements [es.Locker]: it blocks until it holds the lease called
// name or ctx ends. The held context is ctx, cancelled on release.
func (l *LocalLocker) Lock(ctx context.Context, name string) (context.Context, func(), error) {
	for {
		l.mu.Lock()
		released, busy := l.held[name]
		if !busy {
			if l.held == nil {
				l.held = make(map[string]chan struct{})
			}
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
