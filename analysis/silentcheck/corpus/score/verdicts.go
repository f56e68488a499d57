package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// A label is one row of a label file: codebase, location (path:line), function, label,
// why.
type label struct {
	codebase, location, function, label, why string
	file                                     string // location's path, relative to the checkout, cleaned
	line                                     int
}

// A handler is a labelled row located in its file: the extent of the function, literal
// or loop that starts on the row's line.
type handler struct {
	label
	start, end token.Position
	findings   []finding
}

type finding struct {
	file    string // relative to the checkout
	line    int
	col     int
	message string
}

func verdictsCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("verdicts", flag.ContinueOnError)
	fs.SetOutput(stderr)
	labelsPath := fs.String("labels", "", "label file (codebase, location, function, label, why)")
	codebase := fs.String("codebase", "", "the codebase whose rows are scored (owner/name)")
	root := fs.String("root", "", "the codebase's checkout, where the analyzer ran")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *labelsPath == "" || *codebase == "" || *root == "" || fs.NArg() != 0 {
		return errors.New("verdicts needs -labels, -codebase and -root, and reads findings on stdin\n" + usage)
	}
	labels, err := readLabelFile(*labelsPath)
	if err != nil {
		return err
	}
	var mine []label
	for _, l := range labels {
		if l.codebase == *codebase {
			mine = append(mine, l)
		}
	}
	if len(mine) == 0 {
		return fmt.Errorf("%s has no row for codebase %q", *labelsPath, *codebase)
	}
	handlers, err := locate(*root, mine)
	if err != nil {
		return err
	}
	findings, err := readFindings(stdin, *root)
	if err != nil {
		return err
	}
	outside := assign(handlers, findings)
	for _, h := range handlers {
		verdict := "quiet"
		if len(h.findings) > 0 {
			verdict = "flagged"
		}
		var msgs []string
		for _, fd := range h.findings {
			msgs = append(msgs, fmt.Sprintf("%d: %s", fd.line, fd.message))
		}
		fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\t%s\t%s\n", h.codebase, h.location, h.function, h.label.label,
			verdict, strings.Join(msgs, "; "))
	}
	for _, fd := range outside {
		fmt.Fprintf(stderr, "OUTSIDE %s\t%s:%d:%d\t%s\n", *codebase, fd.file, fd.line, fd.col, fd.message)
	}
	return nil
}

// readLabels reads a label file, header first. A row must have the five columns and a
// location path:line; the label is drop or not.
func readLabels(r io.Reader, name string) ([]label, error) {
	var labels []label
	err := eachRow(r, name, 5, "5 (codebase, location, function, label, why)", func(n int, cols []string) error {
		l := label{codebase: cols[0], location: cols[1], function: cols[2], label: cols[3], why: cols[4]}
		i := strings.LastIndexByte(l.location, ':')
		line, err := strconv.Atoi(l.location[i+1:])
		if i <= 0 || err != nil || line <= 0 {
			return fmt.Errorf("%s:%d: location %q is not path:line", name, n, l.location)
		}
		l.file, l.line = filepath.ToSlash(filepath.Clean(l.location[:i])), line
		if l.label != "drop" && l.label != "not" {
			return fmt.Errorf("%s:%d: label %q is neither drop nor not", name, n, l.label)
		}
		labels = append(labels, l)
		return nil
	})
	return labels, err
}

// labelKey is what names a handler across label and result files of one set.
type labelKey struct{ codebase, location, function string }

func (l label) key() labelKey { return labelKey{l.codebase, l.location, l.function} }

// indexLabels maps each handler of a label file to its label; a handler labelled twice
// is an error.
func indexLabels(labels []label, name string) (map[labelKey]label, error) {
	byKey := make(map[labelKey]label, len(labels))
	for _, l := range labels {
		if _, dup := byKey[l.key()]; dup {
			return nil, fmt.Errorf("%s: %s %s %s is labelled twice", name, l.codebase, l.location, l.function)
		}
		byKey[l.key()] = l
	}
	return byKey, nil
}

func readLabelFile(path string) ([]label, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readLabels(f, path)
}

// eachRow calls row for each line of a tab-separated file after its header, skipping
// blank lines, with the line's number; a line with fewer than min columns is an error.
func eachRow(r io.Reader, name string, min int, want string, row func(n int, cols []string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 4<<20)
	n := 0
	for sc.Scan() {
		n++
		if n == 1 || strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) < min {
			return fmt.Errorf("%s:%d: %d columns, want %s", name, n, len(cols), want)
		}
		if err := row(n, cols); err != nil {
			return err
		}
	}
	return sc.Err()
}

// locate finds each label's handler: the outermost function declaration, function
// literal or for statement that starts on the label's line. A row that names no such
// node is an error, so a label that points at the wrong line cannot be scored as quiet.
func locate(root string, labels []label) ([]*handler, error) {
	fset := token.NewFileSet()
	files := map[string]*ast.File{}
	var handlers []*handler
	var errs []error
	for _, l := range labels {
		af, ok := files[l.file]
		if !ok {
			var err error
			af, err = parser.ParseFile(fset, filepath.Join(root, l.file), nil, parser.SkipObjectResolution)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %v", l.location, err))
				continue
			}
			files[l.file] = af
		}
		var found ast.Node
		ast.Inspect(af, func(n ast.Node) bool {
			if found != nil || n == nil {
				return false
			}
			switch n.(type) {
			case *ast.FuncDecl, *ast.FuncLit, *ast.ForStmt, *ast.RangeStmt:
				if fset.Position(n.Pos()).Line == l.line {
					found = n
					return false
				}
			}
			return fset.Position(n.Pos()).Line <= l.line && fset.Position(n.End()).Line >= l.line
		})
		if found == nil {
			errs = append(errs, fmt.Errorf("%s (%s): no function, literal or loop starts on that line", l.location, l.function))
			continue
		}
		handlers = append(handlers, &handler{label: l, start: fset.Position(found.Pos()), end: fset.Position(found.End())})
	}
	return handlers, errors.Join(errs...)
}

// findingLine is a diagnostic of the analyzer as singlechecker and go vet print it: every
// finding's message starts "silent path:" (rules 1 to 7) or "silent failure:" (rule 8),
// and a directive without a reason is reported as "silentcheck:ok needs a reason". Type
// errors of packages that do not load are printed the same way and are not findings.
var findingLine = regexp.MustCompile(`^(.+\.go):(\d+):(\d+): ((?:silent path:|silent failure:|silentcheck:ok needs a reason).*)$`)

// readFindings reads the analyzer's output, keeping its diagnostics and dropping the
// rest (package headers; type errors, which the caller checks for itself). A finding
// reported twice (a package and its test variant) counts once. Paths are made relative
// to root.
func readFindings(r io.Reader, root string) ([]finding, error) {
	absRoot, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	seen := map[finding]bool{}
	var out []finding
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		m := findingLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		path := m[1]
		if filepath.IsAbs(path) {
			if rel, err := filepath.Rel(absRoot, path); err == nil && !strings.HasPrefix(rel, "..") {
				path = rel
			}
		}
		line, _ := strconv.Atoi(m[2])
		col, _ := strconv.Atoi(m[3])
		fd := finding{file: filepath.ToSlash(filepath.Clean(path)), line: line, col: col, message: m[4]}
		if !seen[fd] {
			seen[fd] = true
			out = append(out, fd)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].file != out[j].file {
			return out[i].file < out[j].file
		}
		if out[i].line != out[j].line {
			return out[i].line < out[j].line
		}
		return out[i].col < out[j].col
	})
	return out, sc.Err()
}

// assign gives each finding to the innermost handler containing it and returns those in
// none.
func assign(handlers []*handler, findings []finding) []finding {
	var outside []finding
	for _, fd := range findings {
		var best *handler
		for _, h := range handlers {
			if h.file != fd.file || !contains(h, fd) {
				continue
			}
			if best == nil || contains(best, finding{line: h.start.Line, col: h.start.Column}) {
				best = h
			}
		}
		if best == nil {
			outside = append(outside, fd)
			continue
		}
		best.findings = append(best.findings, fd)
	}
	return outside
}

func contains(h *handler, fd finding) bool {
	after := fd.line > h.start.Line || (fd.line == h.start.Line && fd.col >= h.start.Column)
	before := fd.line < h.end.Line || (fd.line == h.end.Line && fd.col <= h.end.Column)
	return after && before
}
