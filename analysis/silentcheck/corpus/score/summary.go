package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
)

// tally counts one codebase's (or all) verdicts.
type tally struct {
	handlers, drops, tp, fp int
}

func (t *tally) add(o tally) {
	t.handlers += o.handlers
	t.drops += o.drops
	t.tp += o.tp
	t.fp += o.fp
}

func summaryCmd(paths []string, stdout io.Writer) error {
	if len(paths) == 0 {
		return errors.New("summary needs one or more result files\n" + usage)
	}
	var order []string
	per := map[string]*tally{}
	var all tally
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		rows, err := readResults(f, p)
		f.Close()
		if err != nil {
			return err
		}
		for _, r := range rows {
			t := per[r.codebase]
			if t == nil {
				t = &tally{}
				per[r.codebase] = t
				order = append(order, r.codebase)
			}
			t.add(r.tally)
			all.add(r.tally)
		}
	}
	fmt.Fprintln(stdout, "codebase\thandlers\tdrops\tTP\tFP\tmisses\tprecision\trecall")
	for _, cb := range order {
		t := per[cb]
		if t.drops == 0 && t.tp+t.fp == 0 {
			continue
		}
		fmt.Fprintf(stdout, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", cb, t.handlers, t.drops, t.tp, t.fp, t.drops-t.tp,
			ratio(t.tp, t.tp+t.fp), ratio(t.tp, t.drops))
	}
	fmt.Fprintf(stdout, "all\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", all.handlers, all.drops, all.tp, all.fp, all.drops-all.tp,
		ratio(all.tp, all.tp+all.fp), ratio(all.tp, all.drops))
	plo, phi := wilson(all.tp, all.tp+all.fp)
	rlo, rhi := wilson(all.tp, all.drops)
	fmt.Fprintf(stdout, "precision %s (Wilson %.2f–%.2f), recall %s (%.2f–%.2f)\n",
		ratio(all.tp, all.tp+all.fp), plo, phi, ratio(all.tp, all.drops), rlo, rhi)
	return nil
}

type resultRow struct {
	codebase string
	tally
}

// readResults reads a result file: the label file's first four columns, then the
// verdict and the findings. A verdict starts with flagged or quiet (older files annotate
// it: "flagged (false alarm)", "quiet (missed)"); a row "not run" is left out, and a
// label starting with "not" (a false alarm outside the enumeration is "not (not
// enumerated; ...)") is not a drop.
func readResults(r io.Reader, name string) ([]resultRow, error) {
	var rows []resultRow
	err := eachRow(r, name, 5, "at least 5", func(n int, cols []string) error {
		lab, verdict := cols[3], cols[4]
		var drop, flagged bool
		switch {
		case lab == "drop":
			drop = true
		case strings.HasPrefix(lab, "not"):
		default:
			return fmt.Errorf("%s:%d: label %q is neither drop nor not", name, n, lab)
		}
		switch {
		case verdict == "not run":
			return nil
		case strings.HasPrefix(verdict, "flagged"):
			flagged = true
		case strings.HasPrefix(verdict, "quiet"):
		default:
			return fmt.Errorf("%s:%d: verdict %q is neither flagged nor quiet", name, n, verdict)
		}
		t := tally{handlers: 1}
		if drop {
			t.drops = 1
		}
		if flagged && drop {
			t.tp = 1
		} else if flagged {
			t.fp = 1
		}
		rows = append(rows, resultRow{codebase: cols[0], tally: t})
		return nil
	})
	return rows, err
}

func ratio(k, n int) string {
	if n == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", float64(k)/float64(n))
}

// wilson is the Wilson score interval at 95% for k successes in n trials.
func wilson(k, n int) (lo, hi float64) {
	if n == 0 {
		return 0, 1
	}
	const z = 1.959964
	p := float64(k) / float64(n)
	nn := float64(n)
	den := 1 + z*z/nn
	centre := (p + z*z/(2*nn)) / den
	half := z * math.Sqrt(p*(1-p)/nn+z*z/(4*nn*nn)) / den
	return math.Max(0, centre-half), math.Min(1, centre+half)
}
