package storekit

import (
	"context"
	"sync"
)

// Broadcaster fans a store's "events were appended" signal out to every
// channel its Notify has handed out ([es.Notifier]). Signals are coalesced
// per channel: a reader that has not taken the last one yet gets no
// second, since it will read everything new anyway.
//
// A store whose appends can come from elsewhere (another process) passes a
// watch function to [NewBroadcaster]: it is started when the first channel
// is handed out and stopped when the last one is done, so that an idle
// store polls or listens for nothing. The zero Broadcaster is not usable.
type Broadcaster struct {
	watch func() (stop func())

	mu      sync.Mutex
	waiters map[chan struct{}]struct{}
	stop    func() // of the running watch, nil if none
	closed  bool
}

// NewBroadcaster returns a Broadcaster. watch, when not nil, starts
// whatever notices appends made outside this store value (a LISTEN
// connection, a poller) and returns the function that stops it; it must
// start its work in a goroutine, which calls [Broadcaster.Broadcast].
// watch and stop run with the Broadcaster's lock held: stop must not wait
// for that goroutine, which may be blocked in Broadcast.
func NewBroadcaster(watch func() (stop func())) *Broadcaster {
	return &Broadcaster{watch: watch, waiters: make(map[chan struct{}]struct{})}
}

// Notify returns a channel that receives a value after each
// [Broadcaster.Broadcast], coalesced, until ctx is done or the Broadcaster
// is closed; then the channel is closed.
func (b *Broadcaster) Notify(ctx context.Context) <-chan struct{} {
	out := make(chan struct{})
	signal := make(chan struct{}, 1)
	b.mu.Lock()
	if b.closed || ctx.Err() != nil {
		b.mu.Unlock()
		close(out)
		return out
	}
	if len(b.waiters) == 0 && b.watch != nil {
		b.stop = b.watch()
	}
	b.waiters[signal] = struct{}{}
	b.mu.Unlock()

	go func() {
		defer close(out)
		defer b.remove(signal)
		for {
			select {
			case <-ctx.Done():
				return
			case _, open := <-signal:
				if !open { // closed by Close
					return
				}
				select {
				case out <- struct{}{}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}

// Broadcast signals every channel without blocking.
func (b *Broadcaster) Broadcast() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.waiters {
		select {
		case ch <- struct{}{}:
		default: // a signal is already pending
		}
	}
}

// Close closes every channel, stops the watch and makes later Notify calls
// return closed channels. Stores call it from their Close.
func (b *Broadcaster) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	for ch := range b.waiters {
		close(ch)
	}
	clear(b.waiters)
	b.stopWatch()
}

// remove forgets a channel, stopping the watch when none is left.
func (b *Broadcaster) remove(signal chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.waiters[signal]; !ok {
		return // Close got there first
	}
	delete(b.waiters, signal)
	if len(b.waiters) == 0 {
		b.stopWatch()
	}
}

func (b *Broadcaster) stopWatch() {
	if b.stop != nil {
		b.stop()
		b.stop = nil
	}
}
