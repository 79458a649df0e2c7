package app

import (
	"context"
	"sync"
)

// queue is a lock per key, made on demand and dropped when nobody holds
// or waits for it. The app queues the commands that change one concert's
// inventory in this process, as es.HandlerConfig.SerializePerStream does
// for a single stream (which a multi-stream handler cannot offer): a flash
// sale's buyers wait their turn instead of conflicting and retrying.
// Other processes are still kept apart by the expected versions.
type queue struct {
	mu   sync.Mutex
	held map[string]*queueLock
}

type queueLock struct {
	token chan struct{} // holds one value while the lock is held
	refs  int           // holders and waiters
}

// lock waits for key's turn, or for ctx to end.
func (q *queue) lock(ctx context.Context, key string) (unlock func(), err error) {
	q.mu.Lock()
	if q.held == nil {
		q.held = map[string]*queueLock{}
	}
	l := q.held[key]
	if l == nil {
		l = &queueLock{token: make(chan struct{}, 1)}
		q.held[key] = l
	}
	l.refs++
	q.mu.Unlock()
	release := func() {
		q.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(q.held, key)
		}
		q.mu.Unlock()
	}
	select {
	case l.token <- struct{}{}:
		return func() { <-l.token; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}
