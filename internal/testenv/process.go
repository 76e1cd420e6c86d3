package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Process is a program the tests and the benchmark run next to the control plane:
// kube-controller-manager, the manager binary, an image's entrypoint. Its output is kept in a
// LockedBuffer, and it is stopped as the kubelet stops a container: SIGTERM, then SIGKILL after a
// grace period.
type Process struct {
	name string
	cmd  *exec.Cmd
	log  *LockedBuffer
	done chan struct{}
	// exitErr is cmd.Wait's result, set before done is closed.
	exitErr error
	stop    sync.Once
	stopErr error
}

// StartProcess starts cmd, which must not have been started, with its stdout and stderr kept.
func StartProcess(cmd *exec.Cmd) (*Process, error) {
	p := &Process{name: filepath.Base(cmd.Path), cmd: cmd, log: &LockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if cmd.WaitDelay == 0 {
		// A child of the process that keeps its output open must not hold Wait (and so
		// Stop) forever once the process itself has ended.
		cmd.WaitDelay = 10 * time.Second
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("running %s: %w", cmd.Path, err)
	}
	go func() {
		p.exitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// RunProcess starts cmd for the test: it is stopped (SIGTERM, then SIGKILL after grace) when t
// ends, and the last 60 lines of its output are shown when t failed. A process that had exited
// before the end is an error only where reportExit says so (kube-controller-manager must keep
// running; a manager may have been stopped by the test already).
func RunProcess(t testing.TB, what string, cmd *exec.Cmd, grace time.Duration, reportExit bool) *Process {
	t.Helper()
	p, err := StartProcess(cmd)
	if err != nil {
		t.Fatalf("starting %s: %v", what, err)
	}
	t.Cleanup(func() { StopProcess(t, what, p, grace, reportExit) })
	return p
}

// StopProcess stops a process RunProcess started (again: a no-op), showing its log when t failed.
func StopProcess(t testing.TB, what string, p *Process, grace time.Duration, reportExit bool) {
	t.Helper()
	if err := p.Stop(grace); err != nil && reportExit {
		t.Errorf("stopping %s: %v", what, err)
	}
	if t.Failed() {
		t.Logf("%s log (last 60 lines):\n%s", what, p.Tail(60))
	}
}

// Stop ends the process: SIGTERM, then SIGKILL after grace. It reports a process that had
// exited before, or that had to be killed; it may be called more than once.
func (p *Process) Stop(grace time.Duration) error {
	p.stop.Do(func() {
		select {
		case <-p.done:
			p.stopErr = fmt.Errorf("%s had exited already: %v", p.name, p.exitErr)
			return
		default:
		}
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			p.stopErr = fmt.Errorf("signalling %s: %w", p.name, err)
		}
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = p.cmd.Process.Kill()
			<-p.done
			p.stopErr = errors.Join(p.stopErr, fmt.Errorf("%s ignored SIGTERM for %s and was killed", p.name, grace))
		}
	})
	return p.stopErr
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ExitError is how the process ended (nil while it runs or after a clean exit).
func (p *Process) ExitError() error {
	if !p.Exited() {
		return nil
	}
	return p.exitErr
}

// Pid is the process ID.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Log is everything the process wrote so far.
func (p *Process) Log() string { return p.log.String() }

// Tail is the last n lines of Log.
func (p *Process) Tail(n int) string { return p.log.Tail(n) }

// FreePort is a loopback TCP port free at the time of the call, for a process's metrics or
// probe endpoint.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// ManagerEnv is the environment for a manager binary the tests or the benchmark start: this
// process's, without GOMEMLIMIT or DLCSYNC_MEMORY_LIMIT (a value in the caller's shell would
// change the memory limit the manager is given, which is what these runs measure), plus extra.
func ManagerEnv(extra ...string) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "GOMEMLIMIT=") || strings.HasPrefix(kv, "DLCSYNC_MEMORY_LIMIT=")
	})
	return append(env, extra...)
}
