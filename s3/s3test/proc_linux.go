package s3test

import (
	"os/exec"
	"syscall"
)

// setDeathSignal makes the kernel kill cmd when the test process dies, so
// that a crashed or killed test leaves no gateway behind.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
