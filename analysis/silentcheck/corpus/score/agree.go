package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// agreement counts two labellings of the same handlers.
type agreement struct {
	both, firstOnly, secondOnly, neither int
}

func (a *agreement) add(o agreement) {
	a.both += o.both
	a.firstOnly += o.firstOnly
	a.secondOnly += o.secondOnly
	a.neither += o.neither
}

func (a agreement) n() int { return a.both + a.firstOnly + a.secondOnly + a.neither }

// kappa is Cohen's kappa: agreement beyond what two labellers with the same drop rates
// would reach by chance.
func (a agreement) kappa() float64 {
	n := float64(a.n())
	if n == 0 {
		return 0
	}
	po := float64(a.both+a.neither) / n
	p1 := float64(a.both+a.firstOnly) / n
	p2 := float64(a.both+a.secondOnly) / n
	pe := p1*p2 + (1-p1)*(1-p2)
	if pe == 1 {
		return 1
	}
	return (po - pe) / (1 - pe)
}

// agreeCmd compares pairs of label files: the first labelling of a set and a second one
// made apart, by someone who saw neither the first labels nor the analyzer. It scores the
// second against the first as if it were an analyzer: how far a careful reader's
// judgement differs from the labels a rule is measured on. Neither reader is the truth,
// so it also estimates what labels that were right would score against the first, if
// each reader made half the disagreements and no error is shared: of the first's drops
// only one only it saw are half wrong, and of the second's, half are drops it missed.
func agreeCmd(paths []string, stdout io.Writer) error {
	if len(paths) == 0 || len(paths)%2 != 0 {
		return errors.New("agree needs pairs of label files: FIRST SECOND [FIRST SECOND...]\n" + usage)
	}
	var all, clear agreement
	fmt.Fprintln(stdout, "first\tsecond\thandlers\tboth drop\tfirst only\tsecond only\tagree\tkappa")
	for i := 0; i < len(paths); i += 2 {
		first, err := readLabelFile(paths[i])
		if err != nil {
			return err
		}
		second, err := readLabelFile(paths[i+1])
		if err != nil {
			return err
		}
		a, c, err := compare(first, second, paths[i], paths[i+1])
		if err != nil {
			return err
		}
		all.add(a)
		clear.add(c)
		fmt.Fprintf(stdout, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%.2f\n", paths[i], paths[i+1], a.n(), a.both,
			a.firstOnly, a.secondOnly, ratio(a.both+a.neither, a.n()), a.kappa())
	}
	report := func(name string, a agreement) {
		plo, phi := wilson(a.both, a.both+a.secondOnly)
		rlo, rhi := wilson(a.both, a.both+a.firstOnly)
		fmt.Fprintf(stdout, "%s: %d handlers, %d drops (first), %d (second), %d both; kappa %.2f; "+
			"second against first: precision %s (Wilson %.2f–%.2f), recall %s (%.2f–%.2f); "+
			"right labels against first, errors split evenly: precision %s, recall %s\n",
			name, a.n(), a.both+a.firstOnly, a.both+a.secondOnly, a.both, a.kappa(),
			ratio(a.both, a.both+a.secondOnly), plo, phi, ratio(a.both, a.both+a.firstOnly), rlo, rhi,
			ratio(2*a.both+a.firstOnly, 2*a.both+a.firstOnly+a.secondOnly), ratio(2*a.both+a.firstOnly, 2*(a.both+a.firstOnly)))
	}
	report("all", all)
	report("neither says Borderline", clear)
	return nil
}

// compare matches the two labellings row by row on codebase, location and function;
// each must hold exactly the other's handlers. clear counts only the rows neither
// labeller marked as a judgement call (a why starting "Borderline").
func compare(first, second []label, fname, sname string) (all, clear agreement, err error) {
	seen, err := indexLabels(first, fname)
	if err != nil {
		return all, clear, err
	}
	matched := map[labelKey]bool{}
	for _, s := range second {
		k := s.key()
		f, ok := seen[k]
		if !ok {
			return all, clear, fmt.Errorf("%s: %s %s %s is not in %s", sname, s.codebase, s.location, s.function, fname)
		}
		if matched[k] {
			return all, clear, fmt.Errorf("%s: %s %s %s is labelled twice", sname, s.codebase, s.location, s.function)
		}
		matched[k] = true
		var one agreement
		switch fd, sd := f.label == "drop", s.label == "drop"; {
		case fd && sd:
			one.both = 1
		case fd:
			one.firstOnly = 1
		case sd:
			one.secondOnly = 1
		default:
			one.neither = 1
		}
		all.add(one)
		if !borderline(f) && !borderline(s) {
			clear.add(one)
		}
	}
	for _, l := range first {
		if !matched[l.key()] {
			return all, clear, fmt.Errorf("%s: %s %s %s is not in %s", fname, l.codebase, l.location, l.function, sname)
		}
	}
	return all, clear, nil
}

func borderline(l label) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(l.why)), "borderline")
}
