package main

import (
	"bytes"
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
	byKey, err := indexLabels(labels, args[0])
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(args[1])
	if err != nil {
		return err
	}
	// Validate the file as results first, so a malformed row is reported as such.
	if _, err := readResults(bytes.NewReader(raw), args[1]); err != nil {
		return err
	}
	header, _, _ := strings.Cut(string(raw), "\n")
	fmt.Fprintln(stdout, header)
	used := map[labelKey]bool{}
	err = eachRow(bytes.NewReader(raw), args[1], 5, "at least 5", func(n int, cols []string) error {
		k := labelKey{cols[0], cols[1], cols[2]}
		l, ok := byKey[k]
		switch {
		case ok:
			if used[k] {
				return fmt.Errorf("%s:%d: %s %s %s has two results", args[1], n, k.codebase, k.location, k.function)
			}
			used[k] = true
			cols[3] = l.label
		case strings.HasPrefix(cols[3], "not (not enumerated"):
		default:
			return fmt.Errorf("%s:%d: %s %s %s is not in %s", args[1], n, k.codebase, k.location, k.function, args[0])
		}
		fmt.Fprintln(stdout, strings.Join(cols, "\t"))
		return nil
	})
	if err != nil {
		return err
	}
	for _, l := range labels {
		if !used[l.key()] {
			return fmt.Errorf("%s: %s %s %s has no result in %s", args[0], l.codebase, l.location, l.function, args[1])
		}
	}
	return nil
}
