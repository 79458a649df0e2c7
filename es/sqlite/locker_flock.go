//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// lockFile opens (creating) the lock file at path and takes an exclusive
// flock on it, polling every lockPoll until it gets it or ctx ends (or,
// unless wait, returning errLockBusy at once when another holds it). Each
// call opens its own descriptor: flock locks belong to the open file
// description, so two calls in one process exclude each other as two
// processes do.
func lockFile(ctx context.Context, path string, wait bool) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("sqlite: lock: %w", err)
	}
	t := time.NewTicker(lockPoll)
	defer t.Stop()
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			_ = f.Close()
			return nil, fmt.Errorf("sqlite: lock %s: %w", path, err)
		}
		if !wait && errors.Is(err, syscall.EWOULDBLOCK) {
			_ = f.Close()
			return nil, errLockBusy
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}
