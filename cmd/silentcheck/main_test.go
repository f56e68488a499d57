package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"loudly/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// A module the way a team's service looks: a consumer package (its path ends in
// /consumer) and a handler with the original outage in it, next to a fixed handler and a
// deliberate, explained exception.
var module = map[string]string{
	"go.mod": "module example.com/shop\n\ngo 1.26\n",
	"consumer/consumer.go": `package consumer

type Message struct{ Data []byte }

type Outcome struct{ kind, reason string }

func Invalid(reason string, err error) Outcome { return Outcome{"invalid", reason} }
func Applied(reason string) Outcome            { return Outcome{"applied", reason} }
`,
	"orders/orders.go": `package orders

import (
	"context"

	"example.com/shop/consumer"
)

func isValid(b []byte) bool { return len(b) > 0 }

func handle(ctx context.Context, m *consumer.Message) error {
	if !isValid(m.Data) {
		return nil
	}
	if len(m.Data) > 1<<20 {
		return nil //silentcheck:ok oversized events are counted by the gateway
	}
	return nil
}

func handleFixed(ctx context.Context, m *consumer.Message) consumer.Outcome {
	if !isValid(m.Data) {
		return consumer.Invalid("schema", nil)
	}
	return consumer.Applied("ok")
}
`,
}

const finding = `orders/orders.go:13:3: silent path: branch "if !isValid(m.Data)" returns nil from a message handler without recording a decision`

// The binary must work both ways CI runs it: on its own (singlechecker) and as the
// vettool of go vet (the unitchecker protocol: -V=full, -flags, then one .cfg per package).
func TestCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command and runs go vet")
	}
	bin := testenv.Build(t, ".")
	dir := t.TempDir()
	writeFiles(t, dir, module)

	for _, tc := range []struct {
		name    string
		args    []string
		summary []string // what the run must say about the kept findings
	}{
		{"standalone", []string{bin, "./..."}, nil},
		// -kept lists what a directive kept quiet, with its reason.
		{"standalone -kept", []string{bin, "-kept", "./..."}, []string{
			`orders/orders.go:16:3: kept by //silentcheck:ok "oversized events are counted by the gateway"`,
		}},
		// go vet drives the same binary through the unitchecker protocol (-V=full,
		// -flags, then one .cfg per package), as any module's CI would.
		{"vettool", []string{"go", "vet", "-vettool=" + bin, "./..."}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(tc.args[0], tc.args[1:]...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("%s exited 0; want a failure for the silent branch\n%s", strings.Join(tc.args, " "), out)
			}
			got := strings.TrimSpace(string(out))
			if !strings.Contains(got, finding) {
				t.Errorf("output lacks the finding %q:\n%s", finding, got)
			}
			n := 0
			for _, line := range strings.Split(got, "\n") {
				if strings.Contains(line, "silent path:") && !strings.Contains(line, "kept by //silentcheck:ok") {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%d findings, want exactly 1 (the fixed handler and the explained exception stay quiet):\n%s", n, got)
			}
			for _, want := range tc.summary {
				if !strings.Contains(got, want) {
					t.Errorf("output lacks %q:\n%s", want, got)
				}
			}
		})
	}
}

// Another module imports the analyzer the way the README says: loudly is no go-gettable
// path, so its go.mod requires loudly and replaces it with a local checkout. Its own
// multichecker, built from that module, is then run as go vet's tool on the shop module.
func TestImportedByAnotherModule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a second module against this checkout and runs go vet")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	lint := t.TempDir()
	files := map[string]string{
		"go.mod": "module example.com/lint\n\ngo 1.26\n\nrequire loudly v0.0.0\n\nreplace loudly => " + root + "\n",
		"main.go": `package main

import (
	"golang.org/x/tools/go/analysis/multichecker"

	"loudly/analysis/silentcheck"
)

func main() { multichecker.Main(silentcheck.Analyzer) }
`,
	}
	writeFiles(t, lint, files)
	env := append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	bin := filepath.Join(t.TempDir(), "lint")
	for _, args := range [][]string{{"mod", "tidy"}, {"build", "-o", bin, "."}} {
		cmd := exec.Command("go", args...)
		cmd.Dir, cmd.Env = lint, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s in the importing module: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	shop := t.TempDir()
	writeFiles(t, shop, module)
	cmd := exec.Command("go", "vet", "-vettool="+bin, "./...")
	cmd.Dir, cmd.Env = shop, append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), finding) {
		t.Fatalf("go vet with the importing module's tool: err %v, want the finding %q:\n%s", err, finding, out)
	}
}

// writeFiles writes a module's files (name relative to dir: text) into dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, text := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Rule 6 follows the checked module's own helpers across its packages, and not a
// library's: a client whose producer returns early (closed, empty) is no filter of the
// team's messages. The facts that say so cross packages both ways CI runs the tool.
func TestFollowsOwnHelpersOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command and runs go vet")
	}
	bin := testenv.Build(t, ".")
	dir := t.TempDir()
	lib := filepath.Join(dir, "kclient")
	writeFiles(t, lib, map[string]string{
		"go.mod": "module example.com/kclient\n\ngo 1.26\n",
		"kclient.go": `package kclient

var sent [][]byte

// Produce sends data unless it is empty.
func Produce(data []byte) {
	if len(data) == 0 {
		return
	}
	sent = append(sent, data)
}
`,
	})
	shop := filepath.Join(dir, "shop")
	writeFiles(t, shop, map[string]string{
		"go.mod":               "module example.com/shop\n\ngo 1.26\n\nrequire example.com/kclient v0.0.0\n\nreplace example.com/kclient => ../kclient\n",
		"consumer/consumer.go": module["consumer/consumer.go"],
		"relay/relay.go": `package relay

var out [][]byte

// Send forwards small payloads only.
func Send(data []byte) {
	if len(data) > 1024 {
		return
	}
	out = append(out, data)
}
`,
		"orders/forward.go": `package orders

import (
	"context"

	"example.com/kclient"
	"example.com/shop/consumer"
	"example.com/shop/relay"
)

func forward(ctx context.Context, m *consumer.Message) error {
	kclient.Produce(m.Data)
	relay.Send(m.Data)
	return nil
}
`,
	})
	const want = `orders/forward.go:13:2: silent path: relay.Send is handed the message`
	for _, args := range [][]string{{bin, "./..."}, {"go", "vet", "-vettool=" + bin, "./..."}} {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir, cmd.Env = shop, append(os.Environ(), "GOWORK=off", "GOFLAGS=")
		out, _ := cmd.CombinedOutput()
		got := string(out)
		if !strings.Contains(got, want) {
			t.Errorf("%s: output lacks %q:\n%s", strings.Join(args, " "), want, got)
		}
		if strings.Contains(got, "kclient.Produce") {
			t.Errorf("%s: the library's producer was followed:\n%s", strings.Join(args, " "), got)
		}
	}
}
