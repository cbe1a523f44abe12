package storeenv

import (
	"os/exec"
	"syscall"
)

// setDeathSignal makes the kernel kill dynalite if the test binary dies
// without running Main's cleanup (a test timeout, a crash).
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
