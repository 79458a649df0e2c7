package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes a child process die with the test binary, even
// when the binary is killed (a -timeout panic), rather than linger.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
