package es

import (
	"context"
	"math/rand/v2"
	"time"
)

// jitter returns a random duration between 0 and d ("full jitter"), so
// that many clients that failed together do not retry in step.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(d) + 1))
}

// sleep waits for d or until ctx ends. It reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
