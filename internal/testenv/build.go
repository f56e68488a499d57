package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// builds holds the programs Build made for this test binary, in one directory that Main
// removes when the tests end.
var builds struct {
	mu   sync.Mutex
	dir  string
	bins map[string]built
}

type built struct {
	path string
	err  error
	out  []byte
}

// Build compiles the main package pkg (a path as the go command takes it, "." for the
// package under test) once per test binary, with -trimpath as make test builds so the
// build cache serves it, and returns the program's path. Every test that runs the
// program shares the one build. The package's TestMain must call Main, which removes it.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	if !mainCalled.Load() {
		t.Fatal("testenv: Build keeps its programs until the tests end, and this package " +
			"does not call testenv.Main, which removes them; add: func TestMain(m *testing.M) { testenv.Main(m) }")
	}
	builds.mu.Lock()
	defer builds.mu.Unlock()
	b, ok := builds.bins[pkg]
	if !ok {
		if builds.dir == "" {
			dir, err := os.MkdirTemp("", "loudly-bin-")
			if err != nil {
				t.Fatal(err)
			}
			builds.dir, builds.bins = dir, map[string]built{}
		}
		// Named as go build names it (the directory's name), in a directory of its own.
		abs, err := filepath.Abs(pkg)
		if err != nil {
			t.Fatal(err)
		}
		sub := filepath.Join(builds.dir, strconv.Itoa(len(builds.bins)))
		b.path = filepath.Join(sub, filepath.Base(abs))
		if b.err = os.Mkdir(sub, 0o755); b.err == nil {
			b.out, b.err = exec.Command("go", "build", "-trimpath", "-o", b.path, pkg).CombinedOutput()
		}
		builds.bins[pkg] = b
	}
	if b.err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, b.err, b.out)
	}
	return b.path
}

// removeBuilds removes what Build made.
func removeBuilds() {
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
	}
}
