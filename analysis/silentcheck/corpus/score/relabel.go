package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// relabelCmd prints a result file with its labels taken from another label file of the
// same handlers (an adjudicated labelling of the set), verdicts and findings unchanged,
// so a run's verdicts can be scored against better labels without running it again.
// Every labelled handler must be in the results and every result row in the labels,
// except a finding outside the enumeration ("not (not enumerated; ...)"), which is kept.
func relabelCmd(args []string, stdout io.Writer) error {
	if len(args) != 2 {
		return errors.New("relabel needs LABELS.tsv RESULTS.tsv\n" + usage)
	}
	labels, err := readLabelFile(args[0])
	if err != nil {
		return err
	}
	type key struct{ codebase, location, function string }
	byKey := map[key]string{}
	for _, l := range labels {
		k := key{l.codebase, l.location, l.function}
		if _, dup := byKey[k]; dup {
			return fmt.Errorf("%s: %s %s %s is labelled twice", args[0], l.codebase, l.location, l.function)
		}
		byKey[k] = l.label
	}
	f, err := os.Open(args[1])
	if err != nil {
		return err
	}
	defer f.Close()
	raw, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	// Validate the file as results first, so a malformed row is reported as such.
	if _, err := readResults(strings.NewReader(string(raw)), args[1]); err != nil {
		return err
	}
	used := map[key]bool{}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	fmt.Fprintln(stdout, lines[0])
	for n, line := range lines[1:] {
		if strings.TrimSpace(line) == "" {
			continue
		}
		cols := strings.Split(line, "\t")
		k := key{cols[0], cols[1], cols[2]}
		lab, ok := byKey[k]
		switch {
		case ok:
			if used[k] {
				return fmt.Errorf("%s:%d: %s %s %s has two results", args[1], n+2, k.codebase, k.location, k.function)
			}
			used[k] = true
			cols[3] = lab
		case strings.HasPrefix(cols[3], "not (not enumerated"):
		default:
			return fmt.Errorf("%s:%d: %s %s %s is not in %s", args[1], n+2, k.codebase, k.location, k.function, args[0])
		}
		fmt.Fprintln(stdout, strings.Join(cols, "\t"))
	}
	for _, l := range labels {
		if !used[key{l.codebase, l.location, l.function}] {
			return fmt.Errorf("%s: %s %s %s has no result in %s", args[0], l.codebase, l.location, l.function, args[1])
		}
	}
	return nil
}
