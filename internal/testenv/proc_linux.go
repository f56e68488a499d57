package testenv

import (
	"os/exec"
	"syscall"
)

func runAs(cmd *exec.Cmd, own *owner) error {
	if own == nil {
		return nil
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// An empty Groups drops root's supplementary groups, so the child has exactly the
	// unprivileged account's rights.
	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(own.uid), Gid: uint32(own.gid), Groups: []uint32{}}
	return nil
}

// withParentDeathSignal makes the kernel send SIGQUIT (PostgreSQL's immediate shutdown)
// to the child if the test binary dies without running Main's cleanup, as it does on a
// `go test -timeout` panic, so no orphaned postmaster keeps running.
func withParentDeathSignal(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGQUIT
}
