package main

import (
	"context"
	"fmt"
)

// The scaffolder's commands (new.go) still speak in exit codes: command.run, and these
// helpers with their old signatures. They adapt them to the error-returning commands
// until they return errors like the others; delete this file then.

// exitStatus is an exit code whose reason was printed already.
type exitStatus int

func (s exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(s)) }

// call runs the command in whichever form it has.
func (cmd command) call(ctx context.Context, c *cli, args []string) error {
	if cmd.runE != nil {
		return cmd.runE(ctx, c, cmd, args)
	}
	if code := cmd.run(ctx, c, cmd, args); code != exitOK {
		return exitStatus(code)
	}
	return nil
}

// dispatch is runGroup for a command that returns exit codes: it reports the error itself.
func (c *cli) dispatch(ctx context.Context, g group, args []string) int {
	return c.exit(c.runGroup(ctx, g, args))
}

// parse is parseArgs for a command that returns exit codes: on -h it prints the usage to
// stdout; on a bad command line the problem and the usage to stderr. ok is false when the
// command must stop, with exit code code.
func (l *leaf) parse(c *cli, args []string, min, max int) (pos []string, code int, ok bool) {
	pos, err := l.parseArgs(args, min, max)
	if err != nil {
		return nil, c.exit(err), false
	}
	return pos, exitOK, true
}

// usageError reports a command line that parsed but makes no sense, and returns exitUsage.
func (l *leaf) usageError(c *cli, format string, args ...any) int {
	return c.exit(l.usagef(format, args...))
}
