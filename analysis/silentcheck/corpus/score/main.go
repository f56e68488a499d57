// Command score turns silentcheck's findings on one codebase of the corpus into verdicts
// on its labelled handlers, and pools result files into precision and recall. It is how
// the figures in ../../README.md are computed:
//
//	score verdicts -labels heldout11.tsv -codebase owner/name -root /path/to/checkout < findings.txt
//	score summary results-heldout11.tsv ...
//	score agree heldout11.tsv relabel-heldout11.tsv ...
//	score relabel adjudicated-heldout11.tsv results-heldout11.tsv
//
// verdicts reads the analyzer's plain output (file:line:col: message, as printed by
// `silentcheck ./...` run in the checkout) on stdin and prints one result row per
// labelled handler of the codebase: the label's four columns, the verdict (flagged when
// at least one finding lies inside the handler, quiet otherwise) and the findings inside
// it. A finding inside several labelled handlers (a literal inside a labelled function)
// belongs to the innermost. Findings inside no labelled handler are printed to stderr,
// prefixed OUTSIDE, for the reader to judge (the corpus counts them as false alarms
// where they were reported).
//
// summary reads result files and prints, per codebase and in all, handlers, drops, true
// and false alarms, misses, precision and recall with Wilson 95% intervals.
//
// agree compares pairs of label files, a set's first labelling and a second one made
// apart, and prints how far the two readers agree: the counts, Cohen's kappa, the second
// labelling scored against the first as if it were an analyzer, and what labels that were
// right would score against the first if each reader made half the disagreements.
//
// relabel prints a result file with its labels replaced by another labelling of the same
// handlers, so verdicts as run can be scored against adjudicated labels.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
)

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "score:", err)
		os.Exit(2)
	}
}

const usage = `usage:
  score verdicts -labels FILE -codebase OWNER/NAME -root DIR < findings
  score summary RESULTS.tsv...
  score agree FIRST.tsv SECOND.tsv [FIRST.tsv SECOND.tsv...]
  score relabel LABELS.tsv RESULTS.tsv`

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	out := bufio.NewWriter(stdout)
	var err error
	switch args[0] {
	case "verdicts":
		err = verdictsCmd(args[1:], stdin, out, stderr)
	case "summary":
		err = summaryCmd(args[1:], out)
	case "agree":
		err = agreeCmd(args[1:], out)
	case "relabel":
		err = relabelCmd(args[1:], out)
	default:
		err = fmt.Errorf("unknown command %q\n%s", args[0], usage)
	}
	if ferr := out.Flush(); err == nil {
		err = ferr
	}
	return err
}
