package es

import (
	"errors"
	"testing"
	"time"
)

// TestBackoffBounds: a field left zero adapts to the one set; both set
// with the floor above the ceiling are refused.
func TestBackoffBounds(t *testing.T) {
	const ms = time.Millisecond
	for _, c := range []struct {
		lo, hi, wantLo, wantHi time.Duration
		err                    bool
	}{
		{0, 0, 50 * ms, 5000 * ms, false},
		{10 * ms, 20 * ms, 10 * ms, 20 * ms, false},
		{20 * ms, 20 * ms, 20 * ms, 20 * ms, false},
		{10 * time.Second, 0, 10 * time.Second, 10 * time.Second, false}, // the default ceiling rises
		{0, 10 * ms, 10 * ms, 10 * ms, false},                            // the default floor gives way
		{0, time.Minute, 50 * ms, time.Minute, false},
		{21 * ms, 20 * ms, 0, 0, true},
	} {
		lo, hi, err := backoffBounds("test", c.lo, c.hi, 50*ms, 5*time.Second)
		if c.err {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("backoffBounds(%v, %v) = %v, want ErrInvalidConfig", c.lo, c.hi, err)
			}
			continue
		}
		if err != nil || lo != c.wantLo || hi != c.wantHi {
			t.Errorf("backoffBounds(%v, %v) = %v, %v, %v; want %v, %v", c.lo, c.hi, lo, hi, err, c.wantLo, c.wantHi)
		}
	}
}
