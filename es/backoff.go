package es

import (
	"context"
	"fmt"
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

// backoffBounds fills in the zero fields of a MinBackoff and MaxBackoff
// pair. A field left zero adapts to the one set, so that setting one alone
// is never a contradiction: the default floor is lowered to a lower
// ceiling, the default ceiling raised to a higher floor. Both set with the
// floor above the ceiling cannot both hold, and is an error wrapping
// [ErrInvalidConfig]. Negative values are checked by the caller.
func backoffBounds(what string, lo, hi, defaultLo, defaultHi time.Duration) (time.Duration, time.Duration, error) {
	if lo > 0 && hi > 0 && lo > hi {
		return lo, hi, fmt.Errorf("%w: %s: MinBackoff %v is above MaxBackoff %v", ErrInvalidConfig, what, lo, hi)
	}
	if lo == 0 {
		lo = defaultLo
		if hi > 0 {
			lo = min(lo, hi)
		}
	}
	if hi == 0 {
		hi = max(defaultHi, lo)
	}
	return lo, hi, nil
}
