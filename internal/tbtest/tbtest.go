// Package tbtest provides a testing.TB that records failures instead of
// failing, for tests of test helpers: they check what a failing spec prints.
package tbtest

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// Recorder is a testing.TB whose Errorf and Fatalf record the message;
// Fatalf then stops the goroutine, as testing does. Cleanup functions run
// when the spec given to [Run] returns, as testing runs them when a test
// ends.
type Recorder struct {
	testing.TB
	mu       sync.Mutex
	failed   bool
	msgs     []string
	cleanups []func()
}

// Cleanup registers f to run, last registered first, when [Run]'s spec
// is done.
func (r *Recorder) Cleanup(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups = append(r.cleanups, f)
}

// Skipped reports false: a recorded spec is never skipped.
func (r *Recorder) Skipped() bool { return false }

// Helper does nothing.
func (r *Recorder) Helper() {}

// Logf discards the message.
func (r *Recorder) Logf(string, ...any) {}

// Errorf records a failure.
func (r *Recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = true
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}

// Fatalf records a failure and stops the calling goroutine.
func (r *Recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

// Failed reports whether a failure was recorded.
func (r *Recorder) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

// Messages returns the recorded messages, one per line.
func (r *Recorder) Messages() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.msgs, "\n")
}

// Lines returns the recorded messages, one per failure.
func (r *Recorder) Lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.msgs...)
}

// Run runs spec against a new Recorder, then the cleanup functions spec
// registered, each on its own goroutine so that Fatalf can stop it, and
// returns the Recorder.
func Run(t testing.TB, spec func(tb testing.TB)) *Recorder {
	r := &Recorder{TB: t}
	r.run(func() { spec(r) })
	r.mu.Lock()
	cleanups := r.cleanups
	r.mu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		r.run(cleanups[i])
	}
	return r
}

func (r *Recorder) run(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
}
