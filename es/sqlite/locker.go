package sqlite

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"sync"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/storekit"
)

// lockPoll is how often Lock retries a lease that another process holds.
const lockPoll = 100 * time.Millisecond

// lockWatch is how often a held lease checks that its lock file is still
// the one at its path.
const lockWatch = time.Second

// Locker is an [es.Locker] for the processes sharing a SQLite file. A
// lease is an OS file lock (flock, exclusive) on a file beside the
// database, named after the lease: the OS releases it when its holder
// dies, however it dies, so a waiting process takes over within
// a poll interval (100ms). Within one process leases exclude each other
// too, and a released lease passes to a waiting Lock at once.
//
// Do not delete the lock files while processes use them: a process that
// found the file gone would lock a new one beside a holder of the old. A
// holder notices within a second that its file was replaced and gives
// the lease up (its held context is cancelled).
type Locker struct {
	path  string // the database file; "" for a store in memory: this process only
	local storekit.LocalLocker
}

// NewLocker returns a Locker for the database file at path. Lockers of
// one file, in any process, exclude each other.
func NewLocker(path string) *Locker {
	return &Locker{path: path}
}

// Locker returns the store's [Locker]: leases across the processes that
// open the store's file, or, for a store in memory, within this process.
func (s *Store) Locker() *Locker { return s.locker }

// errLockBusy is lockFile's answer, when told not to wait, to a lock
// file another holds.
var errLockBusy = errors.New("sqlite: lock busy")

// Lock implements [es.Locker]. It blocks until it holds the lease called
// name or ctx ends.
func (l *Locker) Lock(ctx context.Context, name string) (context.Context, func(), error) {
	held, releaseLocal, err := l.local.Lock(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	return l.lockFile(ctx, name, held, releaseLocal, true)
}

// TryLock implements [es.TryLocker]: it takes the lease called name if
// no holder in any process has it, and reports false at once otherwise.
func (l *Locker) TryLock(ctx context.Context, name string) (context.Context, func(), bool, error) {
	held, releaseLocal, ok, err := l.local.TryLock(ctx, name)
	if err != nil || !ok {
		return nil, nil, false, err
	}
	held, release, err := l.lockFile(ctx, name, held, releaseLocal, false)
	if errors.Is(err, errLockBusy) {
		return nil, nil, false, nil
	}
	return held, release, err == nil, err
}

// lockFile adds the lock file of the lease called name to the lease held
// in this process (held, releaseLocal): it takes it (waiting for it, if
// wait) and watches it.
func (l *Locker) lockFile(ctx context.Context, name string, held context.Context, releaseLocal func(), wait bool) (context.Context, func(), error) {
	held, cancel := context.WithCancel(held)
	unlockFile := func() {}
	if l.path != "" {
		f, err := lockFile(ctx, l.lockPath(name), wait)
		if err != nil {
			cancel()
			releaseLocal()
			return nil, nil, err
		}
		stop := make(chan struct{})
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			watchLockFile(f, stop, cancel)
		}()
		unlockFile = func() {
			close(stop)
			<-watched
			// Closing the descriptor releases the flock.
			_ = f.Close()
		}
	}
	var once sync.Once
	return held, func() {
		once.Do(func() {
			cancel()
			unlockFile()
			releaseLocal()
		})
	}, nil
}

var _ es.TryLocker = (*Locker)(nil)

// lockPath is the lock file of the lease called name: the database's
// path, ".lock-", and the name with characters unsafe in a file name
// replaced (plus a hash of the name when any were, so names stay apart).
func (l *Locker) lockPath(name string) string {
	safe := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, name)
	if safe != name || len(safe) > 100 {
		sum := sha256.Sum256([]byte(name))
		safe = safe[:min(len(safe), 100)] + "-" + hex.EncodeToString(sum[:6])
	}
	return l.path + ".lock-" + safe
}

// watchLockFile cancels the lease when the file at f's path is no longer
// f (deleted or replaced), until stop is closed.
func watchLockFile(f *os.File, stop <-chan struct{}, cancel context.CancelFunc) {
	t := time.NewTicker(lockWatch)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		mine, err1 := f.Stat()
		now, err2 := os.Stat(f.Name())
		if err1 != nil || err2 != nil || !os.SameFile(mine, now) {
			cancel()
			return
		}
	}
}
