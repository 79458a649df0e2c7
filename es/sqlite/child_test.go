package sqlite_test

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"testing"
)

// childCommand returns a command that runs the test named test in a child
// process of this test binary, and the write end of the child's standard
// input, a pipe from this process. A child that calls exitWithParent dies
// when this process does, even by SIGKILL, so a killed test run leaves no
// children behind.
func childCommand(t testing.TB, test string) (*exec.Cmd, io.WriteCloser) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	// The write end stays open, referenced by cmd, until Wait: only the
	// death of this process closes it early.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	return cmd, stdin
}

// exitWithParent makes a child process started by childCommand exit as
// soon as its parent is gone. The channel it returns is closed when the
// parent writes the line "release" to the child's standard input.
func exitWithParent() <-chan struct{} {
	released := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for open := true; sc.Scan(); {
			if sc.Text() == "release" && open {
				close(released)
				open = false
			}
		}
		os.Exit(3)
	}()
	return released
}
