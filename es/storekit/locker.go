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
		held, release, released := l.take(ctx, name)
		if release != nil {
			return held, release, nil
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-released:
		}
	}
}

// TryLock implements [es.TryLocker]: it takes the lease called name if
// nobody holds it, and reports false at once if somebody does. It fails
// only when ctx has ended.
func (l *LocalLocker) TryLock(ctx context.Context, name string) (context.Context, func(), bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, false, err
	}
	held, release, _ := l.take(ctx, name)
	return held, release, release != nil, nil
}

// take takes the lease called name if it is free; if it is not, it
// returns a nil release and a channel closed when the holder releases it.
func (l *LocalLocker) take(ctx context.Context, name string) (context.Context, func(), <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if released, busy := l.held[name]; busy {
		return nil, nil, released
	}
	if l.held == nil {
		l.held = make(map[string]chan struct{})
	}
	mine := make(chan struct{})
	l.held[name] = mine
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
