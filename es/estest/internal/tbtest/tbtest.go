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
// Fatalf then stops the goroutine, as testing does.
type Recorder struct {
	testing.TB
	mu     sync.Mutex
	failed bool
	msgs   []string
}

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

// Run runs spec against a new Recorder on its own goroutine, so that
// Fatalf can stop it, and returns the Recorder when spec is done.
func Run(t testing.TB, spec func(tb testing.TB)) *Recorder {
	r := &Recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		spec(r)
	}()
	<-done
	return r
}
