package memory

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/storekit"
)

type outboxEntry struct {
	msg       es.OutboxMessage
	delivered bool
	cancelled bool
	parked    bool
	retryAt   time.Time
	reason    string
}

// pending reports whether e still waits for delivery.
func (e *outboxEntry) pending() bool { return !e.delivered && !e.cancelled }

// heldBack reports whether e, due at now, blocks the later messages of its key.
func (e *outboxEntry) heldBack(now time.Time) bool {
	return e.pending() && !e.msg.DeliverAt.After(now) && (e.parked || e.retryAt.After(now))
}

// enqueue adds enq to the outbox; s.mu is held.
func (s *Store) enqueue(enq es.Enqueue) {
	for _, m := range enq.Messages {
		if s.outboxIDs[m.ID] != nil {
			continue // enqueuing is idempotent by message ID
		}
		m.Data = slices.Clone(m.Data)
		m.Metadata = cloneMetadata(m.Metadata)
		e := &outboxEntry{msg: es.OutboxMessage{Message: m, Seq: int64(len(s.outbox) + 1)}}
		s.outbox = append(s.outbox, e)
		s.outboxIDs[m.ID] = e
	}
	for _, id := range enq.Cancel {
		if e := s.outboxIDs[id]; e != nil && !e.delivered {
			e.cancelled = true
		}
	}
}

// Due implements [es.Outbox].
func (s *Store) Due(ctx context.Context, now time.Time, buckets []int, limit int) ([]es.OutboxMessage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []es.OutboxMessage
	held := make(map[string]bool)
	for _, e := range s.outbox {
		if len(out) == limit {
			break
		}
		if !e.pending() || !slices.Contains(buckets, es.MessageBucket(e.msg.Key)) {
			continue
		}
		if e.heldBack(now) {
			held[e.msg.Key] = true
			continue
		}
		if held[e.msg.Key] || e.msg.DeliverAt.After(now) {
			continue
		}
		m := e.msg
		m.Data = slices.Clone(m.Data)
		m.Metadata = cloneMetadata(m.Metadata)
		out = append(out, m)
	}
	return out, nil
}

// MarkDelivered implements [es.Outbox].
func (s *Store) MarkDelivered(_ context.Context, seq int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.entry(seq)
	if err != nil {
		return err
	}
	e.delivered = true
	return nil
}

// MarkFailed implements [es.Outbox].
func (s *Store) MarkFailed(_ context.Context, seq int64, retryAt time.Time, park bool, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.entry(seq)
	if err != nil {
		return err
	}
	e.msg.Attempts++
	e.retryAt, e.parked, e.reason = retryAt, park, reason
	return nil
}

func (s *Store) entry(seq int64) (*outboxEntry, error) {
	if seq < 1 || seq > int64(len(s.outbox)) {
		return nil, fmt.Errorf("memory: no outbox message %d", seq)
	}
	return s.outbox[seq-1], nil
}

// Backlog implements [es.Outbox].
func (s *Store) Backlog(context.Context) (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var n int64
	for _, e := range s.outbox {
		if e.pending() {
			n++
		}
	}
	return n, nil
}

// Messages implements [es.MessageReader].
func (s *Store) Messages(_ context.Context, ids []string) ([]es.OutboxMessage, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []es.OutboxMessage
	for _, id := range ids {
		if e := s.outboxIDs[id]; e != nil && !slices.ContainsFunc(out, func(m es.OutboxMessage) bool { return m.ID == id }) {
			out = append(out, e.msg)
		}
	}
	slices.SortFunc(out, func(a, b es.OutboxMessage) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}

// Inbox returns the store's [es.Inbox]: it remembers handled messages in
// memory, for as long as the store lives.
func (s *Store) Inbox() es.Inbox { return &s.inbox }

// inbox is an in-memory [es.Inbox]. The zero value is ready to use.
type inbox struct {
	mu      sync.Mutex
	handled map[[2]string]bool
	busy    map[[2]string]chan struct{}
}

// Handle implements [es.Inbox]. Concurrent calls for the same message
// wait for each other, so fn runs at most once per successful handling.
func (i *inbox) Handle(ctx context.Context, consumer, messageID string, fn func(context.Context) error) (bool, error) {
	if err := errors.Join(storekit.CheckName("inbox consumer", consumer), storekit.CheckName("message ID", messageID)); err != nil {
		return false, fmt.Errorf("memory: inbox: %w", err)
	}
	k := [2]string{consumer, messageID}
	for {
		i.mu.Lock()
		if i.handled == nil {
			i.handled, i.busy = make(map[[2]string]bool), make(map[[2]string]chan struct{})
		}
		if i.handled[k] {
			i.mu.Unlock()
			return false, nil
		}
		wait, busy := i.busy[k]
		if !busy {
			done := make(chan struct{})
			i.busy[k] = done
			i.mu.Unlock()
			err := fn(ctx)
			i.mu.Lock()
			delete(i.busy, k)
			if err == nil {
				i.handled[k] = true
			}
			i.mu.Unlock()
			close(done)
			return err == nil, err
		}
		i.mu.Unlock()
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-wait:
		}
	}
}
