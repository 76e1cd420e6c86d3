//go:build !linux

package testenv

import "syscall"

// dieWithParent has no portable equivalent outside Linux: the test's cleanup stops the process.
func dieWithParent() *syscall.SysProcAttr { return nil }
