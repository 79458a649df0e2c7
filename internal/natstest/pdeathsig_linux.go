package natstest

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the server die with the test binary, even when the
// binary is killed (a -timeout panic), rather than linger on its port.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
