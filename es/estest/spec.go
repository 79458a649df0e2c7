package estest

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"runtime"
	"testing"
)

// ending makes a spec that never reaches a Then… fail its test: a spec
// whose checks were forgotten would otherwise pass without checking
// anything. It is registered with t.Cleanup when the spec starts, so it
// reports in the test (or subtest) that started the spec, once, when that
// test ends, and stays quiet when the test already failed or was skipped.
type ending struct {
	kind  string // "decider spec", ...
	thens string // the methods that end the spec, for the message
	where string // file:line of the last step that needs a Then…
	what  string // that step, e.g. "When(...)"
	done  bool
}

// startSpec registers the check on t. skip is the number of frames
// between the test's call and startSpec.
func startSpec(t testing.TB, kind, thens string, skip int) *ending {
	t.Helper()
	e := &ending{kind: kind, thens: thens}
	e.open("started", skip+1)
	t.Cleanup(func() {
		t.Helper() // report at the test's line that started the spec
		if e.done || t.Failed() || t.Skipped() {
			return
		}
		t.Errorf("%s %s at %s never reached a Then…: end it with %s", e.kind, e.what, e.where, e.thens)
	})
	return e
}

// open marks a step (a When…) that a Then… must check. skip is the number
// of frames between the test's call and open.
func (e *ending) open(what string, skip int) {
	e.what, e.done = what, false
	if _, file, line, ok := runtime.Caller(skip + 1); ok {
		e.where = fmt.Sprintf("%s:%d", filepath.Base(file), line)
	}
}

// close marks the spec checked.
func (e *ending) close() { e.done = true }

// errorWant is what a ThenError… expects of an error: a description for
// failure messages and the test.
type errorWant struct {
	desc  string
	match func(error) bool
}

func errorIs(target error) errorWant {
	return errorWant{fmt.Sprint(target), func(err error) bool { return errors.Is(err, target) }}
}

// errorAs checks target as errors.As would, which panics on a bad one,
// and says what is wrong with it instead.
func errorAs(target any) (errorWant, error) {
	v := reflect.ValueOf(target)
	if target == nil || v.Kind() != reflect.Pointer || v.IsNil() {
		return errorWant{}, fmt.Errorf("ThenErrorAs(%T): the target must be a non-nil pointer, as for errors.As", target)
	}
	et := v.Type().Elem()
	if et.Kind() != reflect.Interface && !et.Implements(reflect.TypeFor[error]()) {
		return errorWant{}, fmt.Errorf("ThenErrorAs(%T): the target must point to an interface or to a type that implements error", target)
	}
	return errorWant{"as " + et.String(), func(err error) bool { return errors.As(err, target) }}, nil
}

func errorMatching(match func(error) bool) errorWant {
	return errorWant{"matching the predicate", func(err error) bool { return err != nil && match(err) }}
}
