// Command silentcheck reports message-handling code where a branch drops work without a
// trace (see loudly/internal/silentcheck for the rules).
//
// Run it directly on packages:
//
//	go run ./cmd/silentcheck ./...
//
// which prints the findings and a summary that lists every finding kept quiet by a
// //silentcheck:ok <reason> directive, with its reason. Or build it and run it as a vet
// tool, from this module or any other:
//
//	go -C /path/to/loudly build -o "$HOME/bin/silentcheck" ./cmd/silentcheck
//	go vet -vettool="$HOME/bin/silentcheck" ./...
//
// It exits 3 when it reports a finding, 1 when packages do not load.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/tools/go/analysis"
	"golang.org/x/tools/go/analysis/checker"
	"golang.org/x/tools/go/analysis/unitchecker"
	"golang.org/x/tools/go/packages"

	"loudly/internal/silentcheck"
)

func main() {
	if vetProtocol(os.Args[1:]) {
		unitchecker.Main(silentcheck.Analyzer) // go vet -vettool: one .cfg per package
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// vetProtocol reports whether go vet is driving the command: it asks for -V=full and
// -flags, then passes one .cfg file per package.
func vetProtocol(args []string) bool {
	for _, a := range args {
		if strings.HasPrefix(a, "-V") || a == "-flags" || strings.HasSuffix(a, ".cfg") {
			return true
		}
	}
	return false
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("silentcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tests := fs.Bool("test", true, "also check the packages' tests")
	silentcheck.Analyzer.Flags.VisitAll(func(f *flag.Flag) { fs.Var(f.Value, f.Name, f.Usage) })
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: silentcheck [flags] packages...\n\n%s\n\n", silentcheck.Analyzer.Doc)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 1
	}
	patterns := fs.Args()
	if len(patterns) == 0 {
		patterns = []string{"."}
	}

	// Facts (which helpers record) flow from dependencies, so they are loaded with
	// syntax too.
	cfg := &packages.Config{Mode: packages.LoadAllSyntax, Tests: *tests}
	pkgs, err := packages.Load(cfg, patterns...)
	if err != nil {
		fmt.Fprintf(stderr, "silentcheck: %v\n", err)
		return 1
	}
	if packages.PrintErrors(pkgs) > 0 {
		return 1
	}
	graph, err := checker.Analyze([]*analysis.Analyzer{silentcheck.Analyzer}, pkgs, nil)
	if err != nil {
		fmt.Fprintf(stderr, "silentcheck: %v\n", err)
		return 1
	}

	findings, suppressed := 0, []string{}
	seen := map[string]bool{} // a package and its test variant report the same lines
	for act := range graph.All() {
		if !act.IsRoot {
			continue
		}
		if act.Err != nil {
			fmt.Fprintf(stderr, "silentcheck: %s: %v\n", act.Package.PkgPath, act.Err)
			return 1
		}
		for _, d := range act.Diagnostics {
			line := fmt.Sprintf("%s: %s", act.Package.Fset.Position(d.Pos), d.Message)
			if !seen[line] {
				seen[line] = true
				findings++
				fmt.Fprintln(stderr, line)
			}
		}
		if res, ok := act.Result.(*silentcheck.Result); ok {
			for _, s := range res.Suppressed {
				line := fmt.Sprintf("  %s: %q (kept: %s)", act.Package.Fset.Position(s.Pos), s.Reason, s.Message)
				if !seen[line] {
					seen[line] = true
					suppressed = append(suppressed, line)
				}
			}
		}
	}
	fmt.Fprintf(stdout, "silentcheck: %d finding(s), %d kept quiet by //silentcheck:ok\n", findings, len(suppressed))
	for _, s := range suppressed {
		fmt.Fprintln(stdout, s)
	}
	if findings > 0 {
		return 3
	}
	return 0
}
