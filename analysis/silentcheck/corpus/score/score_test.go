package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const source = `package p

func handle(m Msg) error { // line 3
	if m.bad {
		return nil
	}
	go func() { // line 7
		if m.skip {
			return
		}
	}()
	return nil
}

func loop(ch chan Msg) {
	for m := range ch { // line 16
		if m.bad {
			continue
		}
	}
	_ = 1
}

type Msg struct{ bad, skip bool }
`

const labels = "codebase\tlocation\tfunction\tlabel\twhy\n" +
	"a/b\tp/p.go:3\thandle\tdrop\treturns nil on bad\n" +
	"a/b\tp/p.go:7\tliteral in handle\tnot\tgoroutine\n" +
	"a/b\tp/p.go:16\tloop (range ch)\tdrop\tskips bad\n" +
	"c/d\tx.go:1\tother\tnot\tanother codebase\n"

func checkout(t *testing.T) (root, labelFile string) {
	t.Helper()
	root = t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "p"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "p", "p.go"), []byte(source), 0o644); err != nil {
		t.Fatal(err)
	}
	labelFile = filepath.Join(t.TempDir(), "labels.tsv")
	if err := os.WriteFile(labelFile, []byte(labels), 0o644); err != nil {
		t.Fatal(err)
	}
	return root, labelFile
}

func TestVerdicts(t *testing.T) {
	root, labelFile := checkout(t)
	abs := filepath.Join(root, "p", "p.go")
	findings := "# a/b/p\n" +
		abs + ":8:3: silent path: skip\n" + // inside the literal, which is inside handle: the literal's
		abs + ":4:2: silent path: bad\n" +
		abs + ":4:2: silent path: bad\n" + // the test variant's duplicate
		abs + ":21:2: silent path: outside every handler\n" +
		abs + ":18:4: silent failure: thrown away\n" + // rule 8's findings start otherwise
		"p/p.go:5:3: silent path: relative path\n" +
		abs + ":5:9: undefined: entity.Missing\n" + // a type error: not a finding
		abs + ":21:2: kept by //silentcheck:ok \"why\": silent path: kept\n"
	var out, errOut bytes.Buffer
	err := run([]string{"verdicts", "-labels", labelFile, "-codebase", "a/b", "-root", root},
		strings.NewReader(findings), &out, &errOut)
	if err != nil {
		t.Fatal(err)
	}
	want := "a/b\tp/p.go:3\thandle\tdrop\tflagged\t4: silent path: bad; 5: silent path: relative path\n" +
		"a/b\tp/p.go:7\tliteral in handle\tnot\tflagged\t8: silent path: skip\n" +
		"a/b\tp/p.go:16\tloop (range ch)\tdrop\tflagged\t18: silent failure: thrown away\n"
	if out.String() != want {
		t.Errorf("rows:\n%s\nwant:\n%s", out.String(), want)
	}
	if !strings.Contains(errOut.String(), "OUTSIDE a/b\tp/p.go:21:2\tsilent path: outside every handler") {
		t.Errorf("stderr does not report the finding outside every handler: %q", errOut.String())
	}
}

func TestVerdictsRefusesAMisplacedLabel(t *testing.T) {
	root, _ := checkout(t)
	bad := filepath.Join(t.TempDir(), "labels.tsv")
	os.WriteFile(bad, []byte("codebase\tlocation\tfunction\tlabel\twhy\na/b\tp/p.go:4\thandle\tdrop\twrong line\n"), 0o644)
	err := run([]string{"verdicts", "-labels", bad, "-codebase", "a/b", "-root", root}, strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "p/p.go:4 (handle): no function, literal or loop starts on that line") {
		t.Fatalf("err = %v, want the misplaced row named", err)
	}
}

func TestBadInputIsAnError(t *testing.T) {
	root, labelFile := checkout(t)
	for name, tc := range map[string]struct {
		args  []string
		label string
		want  string
	}{
		"no command":      {nil, "", "usage"},
		"unknown command": {[]string{"score"}, "", `unknown command "score"`},
		"missing flags":   {[]string{"verdicts", "-labels", labelFile}, "", "needs -labels, -codebase and -root"},
		"unknown codebase": {[]string{"verdicts", "-labels", labelFile, "-codebase", "x/y", "-root", root}, "",
			`no row for codebase "x/y"`},
		"short row":    {[]string{"verdicts", "-codebase", "a/b", "-root", root}, "h\na/b\tp.go:3\tf\n", "3 columns, want 5"},
		"bad location": {[]string{"verdicts", "-codebase", "a/b", "-root", root}, "h\na/b\tp.go\tf\tdrop\twhy\n", `location "p.go" is not path:line`},
		"bad label":    {[]string{"verdicts", "-codebase", "a/b", "-root", root}, "h\na/b\tp.go:3\tf\tmaybe\twhy\n", `label "maybe"`},
		"no results":   {[]string{"summary"}, "", "summary needs one or more result files"},
		"odd agree":    {[]string{"agree", labelFile}, "", "agree needs pairs of label files"},
		"relabel args": {[]string{"relabel", labelFile}, "", "relabel needs LABELS.tsv RESULTS.tsv"},
	} {
		t.Run(name, func(t *testing.T) {
			args := tc.args
			if tc.label != "" {
				f := filepath.Join(t.TempDir(), "l.tsv")
				os.WriteFile(f, []byte(tc.label), 0o644)
				args = append(args, "-labels", f)
			}
			err := run(args, strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to say %q", err, tc.want)
			}
		})
	}
}

func TestSummary(t *testing.T) {
	results := "codebase\tlocation\tfunction\tlabel\tverdict\tfindings\n" +
		"a/b\tp.go:1\tf\tdrop\tflagged\t1: x\n" +
		"a/b\tp.go:2\tg\tdrop\tquiet (missed)\t\n" +
		"a/b\tp.go:3\th\tnot\tflagged (false alarm)\t3: y\n" +
		"a/b\tp.go:4\ti\tnot (not enumerated; counted as a false alarm)\tflagged\t4: z\n" +
		"a/b\tp.go:5\tj\tnot\tnot run\t\n" +
		"c/d\tq.go:1\tk\tnot\tquiet\t\n"
	f := filepath.Join(t.TempDir(), "results.tsv")
	os.WriteFile(f, []byte(results), 0o644)
	var out bytes.Buffer
	if err := run([]string{"summary", f}, nil, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	want := "codebase\thandlers\tdrops\tTP\tFP\tmisses\tprecision\trecall\n" +
		"a/b\t4\t2\t1\t2\t1\t0.33\t0.50\n" +
		"all\t5\t2\t1\t2\t1\t0.33\t0.50\n" +
		"precision 0.33 (Wilson 0.06–0.79), recall 0.50 (0.09–0.91)\n"
	if out.String() != want {
		t.Errorf("summary:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestAgree(t *testing.T) {
	dir := t.TempDir()
	first := filepath.Join(dir, "first.tsv")
	second := filepath.Join(dir, "second.tsv")
	os.WriteFile(first, []byte("codebase\tlocation\tfunction\tlabel\twhy\n"+
		"a/b\tp.go:1\tf\tdrop\tskips\n"+
		"a/b\tp.go:2\tg\tdrop\tBorderline, a test reader\n"+
		"a/b\tp.go:3\th\tnot\tlogs\n"+
		"c/d\tq.go:1\tk\tdrop\tan empty case\n"+
		"c/d\tq.go:2\tl\tnot\tquiet\n"), 0o644)
	// Rows in another order: matched by codebase, location and function.
	os.WriteFile(second, []byte("codebase\tlocation\tfunction\tlabel\twhy\n"+
		"c/d\tq.go:2\tl\tnot\tfine\n"+
		"a/b\tp.go:3\th\tdrop\tborderline, the log is debug only\n"+
		"a/b\tp.go:2\tg\tnot\tno message ends\n"+
		"a/b\tp.go:1\tf\tdrop\ta filter\n"+
		"c/d\tq.go:1\tk\tnot\tfine\n"), 0o644)
	var out bytes.Buffer
	if err := run([]string{"agree", first, second}, nil, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	// both 1, first only 2, second only 1, neither 1: po 0.4, pe 0.6*0.4+0.4*0.6 = 0.48,
	// kappa -0.08/0.52 = -0.15. Without the two Borderline rows (g, h): both 1, first
	// only 1, neither 1: po 2/3, pe 4/9, kappa 0.40.
	want := "first\tsecond\thandlers\tboth drop\tfirst only\tsecond only\tagree\tkappa\n" +
		first + "\t" + second + "\t5\t1\t2\t1\t0.40\t-0.15\n" +
		"all: 5 handlers, 3 drops (first), 2 (second), 1 both; kappa -0.15; second against first: " +
		"precision 0.50 (Wilson 0.09–0.91), recall 0.33 (0.06–0.79); " +
		"right labels against first, errors split evenly: precision 0.80, recall 0.67\n" +
		"neither says Borderline: 3 handlers, 2 drops (first), 1 (second), 1 both; kappa 0.40; second against first: " +
		"precision 1.00 (Wilson 0.21–1.00), recall 0.50 (0.09–0.91); " +
		"right labels against first, errors split evenly: precision 1.00, recall 0.75\n"
	if out.String() != want {
		t.Errorf("agree:\n%s\nwant:\n%s", out.String(), want)
	}

	// A handler missing from either side is an error, not a silent partial comparison.
	short := filepath.Join(dir, "short.tsv")
	os.WriteFile(short, []byte("codebase\tlocation\tfunction\tlabel\twhy\na/b\tp.go:1\tf\tdrop\tx\n"), 0o644)
	for _, args := range [][]string{{"agree", first, short}, {"agree", short, first}} {
		err := run(args, nil, &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "is not in") {
			t.Errorf("%v: err = %v, want a missing handler named", args[1:], err)
		}
	}
	dup := filepath.Join(dir, "dup.tsv")
	os.WriteFile(dup, []byte("codebase\tlocation\tfunction\tlabel\twhy\na/b\tp.go:1\tf\tdrop\tx\na/b\tp.go:1\tf\tnot\ty\n"), 0o644)
	if err := run([]string{"agree", dup, first}, nil, &bytes.Buffer{}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "labelled twice") {
		t.Errorf("duplicate row: err = %v", err)
	}
}

func TestRelabel(t *testing.T) {
	dir := t.TempDir()
	results := filepath.Join(dir, "results.tsv")
	os.WriteFile(results, []byte("codebase\tlocation\tfunction\tlabel\tverdict\tfindings\n"+
		"a/b\tp.go:1\tf\tdrop\tflagged\t1: x\n"+
		"a/b\tp.go:2\tg\tnot\tflagged\t2: y\n"+
		"a/b\tp.go:9\tz\tnot (not enumerated; counted as a false alarm)\tflagged\t9: w\n"), 0o644)
	labels := filepath.Join(dir, "adjudicated.tsv")
	os.WriteFile(labels, []byte("codebase\tlocation\tfunction\tlabel\twhy\n"+
		"a/b\tp.go:2\tg\tdrop\ta filter after all\n"+
		"a/b\tp.go:1\tf\tnot\tthe skip is logged\n"), 0o644)
	var out bytes.Buffer
	if err := run([]string{"relabel", labels, results}, nil, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	want := "codebase\tlocation\tfunction\tlabel\tverdict\tfindings\n" +
		"a/b\tp.go:1\tf\tnot\tflagged\t1: x\n" +
		"a/b\tp.go:2\tg\tdrop\tflagged\t2: y\n" +
		"a/b\tp.go:9\tz\tnot (not enumerated; counted as a false alarm)\tflagged\t9: w\n"
	if out.String() != want {
		t.Errorf("relabel:\n%s\nwant:\n%s", out.String(), want)
	}

	// A result without a label, or a label without a result, is an error.
	short := filepath.Join(dir, "short.tsv")
	os.WriteFile(short, []byte("codebase\tlocation\tfunction\tlabel\twhy\na/b\tp.go:1\tf\tdrop\tx\n"), 0o644)
	if err := run([]string{"relabel", short, results}, nil, &bytes.Buffer{}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "is not in") {
		t.Errorf("result without a label: err = %v", err)
	}
	extra := filepath.Join(dir, "extra.tsv")
	os.WriteFile(extra, []byte("codebase\tlocation\tfunction\tlabel\twhy\na/b\tp.go:1\tf\tdrop\tx\n"+
		"a/b\tp.go:2\tg\tdrop\tx\na/b\tp.go:3\th\tnot\tx\n"), 0o644)
	if err := run([]string{"relabel", extra, results}, nil, &bytes.Buffer{}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "has no result") {
		t.Errorf("label without a result: err = %v", err)
	}
}

func TestWilson(t *testing.T) {
	// 5 of 20 and 5 of 10: the tenth held-out set's figures as the README gives them.
	for _, tc := range []struct {
		k, n   int
		lo, hi string
	}{{5, 20, "0.11", "0.47"}, {5, 10, "0.24", "0.76"}, {0, 0, "0.00", "1.00"}, {3, 3, "0.44", "1.00"}} {
		lo, hi := wilson(tc.k, tc.n)
		if got := [2]string{fmtf(lo), fmtf(hi)}; got != [2]string{tc.lo, tc.hi} {
			t.Errorf("wilson(%d, %d) = %v, want %s–%s", tc.k, tc.n, got, tc.lo, tc.hi)
		}
	}
}

func fmtf(f float64) string { return fmt.Sprintf("%.2f", f) }

func FuzzReadLabels(f *testing.F) {
	f.Add(labels)
	f.Add("h\na\tb:1\tc\tdrop\te\n")
	f.Add("h\na\t:1\tc\tnot\te\n")
	f.Fuzz(func(t *testing.T, s string) {
		ls, err := readLabels(strings.NewReader(s), "fuzz")
		if err != nil {
			return
		}
		for _, l := range ls {
			if l.line <= 0 || (l.label != "drop" && l.label != "not") || l.file == "" {
				t.Fatalf("accepted a row it should refuse: %+v", l)
			}
		}
	})
}

func FuzzReadResults(f *testing.F) {
	f.Add("h\na\tb:1\tc\tdrop\tflagged\t1: x\n")
	f.Add("h\na\tb:1\tc\tnot\tnot run\t\n")
	f.Fuzz(func(t *testing.T, s string) {
		rows, err := readResults(strings.NewReader(s), "fuzz")
		if err != nil {
			return
		}
		for _, r := range rows {
			if r.handlers != 1 || r.tp+r.fp > 1 || r.tp > r.drops {
				t.Fatalf("inconsistent tally %+v", r)
			}
		}
	})
}
