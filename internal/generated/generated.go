// Package generated is the one way Loudly's generated artefacts (dashboards, alert rules)
// are written by `go generate` and checked by tests: the committed file must be exactly
// what the code renders, byte for byte.
package generated

import (
	"bytes"
	"fmt"
	"os"
	"testing"
)

// File is one generated file, named relative to its package directory.
type File struct {
	Name string
	Data []byte
}

// Main is the body of a package's gen command: it writes the files into the current
// directory (go generate runs it in the package's directory) and exits non-zero on error.
func Main(render func() ([]File, error)) {
	files, err := render()
	if err == nil {
		for _, f := range files {
			if err = os.WriteFile(f.Name, f.Data, 0o644); err != nil {
				break
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

// CheckInSync fails the test for every committed file (read from the test's working
// directory, the package's) that differs from what render produces. pkg names the package
// directory in the message: "run go generate ./<pkg>/... and commit the result".
func CheckInSync(t testing.TB, pkg string, render func() ([]File, error)) {
	t.Helper()
	files, err := render()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		committed, err := os.ReadFile(f.Name)
		if err != nil {
			t.Errorf("%s/%s: %v: run go generate ./%s/... and commit the result", pkg, f.Name, err, pkg)
			continue
		}
		if !bytes.Equal(committed, f.Data) {
			t.Errorf("%s/%s is out of sync with the code that renders it: run go generate ./%s/... and commit the result", pkg, f.Name, pkg)
		}
	}
}
