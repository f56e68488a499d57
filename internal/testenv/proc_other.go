//go:build !linux

package testenv

import (
	"errors"
	"os/exec"
)

func runAs(cmd *exec.Cmd, own *owner) error {
	if own != nil {
		return errors.New("starting PostgreSQL as another user (needed when tests run as root) is only supported on Linux")
	}
	return nil
}

// withParentDeathSignal has no portable equivalent; off Linux an interrupted test binary
// can leave its PostgreSQL running until the machine's temp directory is cleaned.
func withParentDeathSignal(*exec.Cmd) {}
