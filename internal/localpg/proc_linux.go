package localpg

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

// DieWithParent makes the kernel send sig to the child cmd starts if the thread that
// starts it exits, as it does when the program dies without stopping its children (a
// `go test -timeout` panic, a SIGKILL), so no orphan keeps running. Start the child from
// a goroutine locked to its thread for as long as the child runs (runtime.LockOSThread)
// to make that thread's exit mean the program's.
func DieWithParent(cmd *exec.Cmd, sig syscall.Signal) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = sig
}

// ownProcessGroup starts cmd's child in a process group of its own, so a Ctrl-C in the
// terminal (which signals the whole foreground group) reaches only the program that
// started it, which stops the server when its clients are done with it.
func ownProcessGroup(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
}

// killGroup sends SIGKILL to the process group led by pid (a postmaster and its backends).
func killGroup(pid int) { _ = syscall.Kill(-pid, syscall.SIGKILL) }
