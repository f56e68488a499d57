//go:build !linux

package localpg

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
)

func runAs(cmd *exec.Cmd, own *owner) error {
	if own != nil {
		return errors.New("starting PostgreSQL as another user (needed when running as root) is only supported on Linux")
	}
	return nil
}

// DieWithParent has no portable equivalent; off Linux a program that dies without
// stopping its children can leave them running.
func DieWithParent(*exec.Cmd, syscall.Signal) {}

// ownProcessGroup is left to Linux: elsewhere a Ctrl-C in the terminal reaches the
// server too, which then stops at once ("fast" shutdown).
func ownProcessGroup(*exec.Cmd) {}

// killGroup kills the process pid; process groups are a Linux matter here.
func killGroup(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
}
