// Command silentcheck reports message-handling code where a branch drops work without a
// trace. It only wraps the analyzer, loudly/analysis/silentcheck, which holds the rules.
//
// Run it directly on packages:
//
//	go run ./cmd/silentcheck ./...
//
// or build it and run it as the vet tool of any module:
//
//	go -C /path/to/loudly build -o "$HOME/bin/silentcheck" ./cmd/silentcheck
//	go vet -vettool="$HOME/bin/silentcheck" ./...
//
// -kept lists every finding a //silentcheck:ok <reason> directive kept quiet, with its
// reason; -handlers lists every function judged as message-handling code. It exits 3
// when it reports a finding, 1 when packages do not load.
package main

import (
	"golang.org/x/tools/go/analysis/singlechecker"

	"loudly/analysis/silentcheck"
)

func main() { singlechecker.Main(silentcheck.Analyzer) }
