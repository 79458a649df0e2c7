package sqlite_test

import (
	"io"
	"os"
	"os/exec"
	"testing"
)

// childCommand returns a command that runs the test named test in a child
// process of this test binary. The child's standard input is a pipe from
// this process; a child that calls exitWithParent dies when this process
// does, even by SIGKILL, so a killed test run leaves no children behind.
func childCommand(t testing.TB, test string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	// The write end stays open, referenced by cmd, until Wait: only the
	// death of this process closes it early.
	if _, err := cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// exitWithParent makes a child process started by childCommand exit as
// soon as its parent is gone.
func exitWithParent() {
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(3)
	}()
}
