package testenv

import "syscall"

// dieWithParent makes the kernel kill kube-controller-manager when the test binary dies without
// running its cleanups (a -timeout panic), so no orphan keeps polling a dead apiserver.
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
