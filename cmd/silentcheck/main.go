// Command silentcheck reports message-handling code where a branch drops work without a
// trace (see loudly/internal/silentcheck for the rules).
//
// Run it directly on packages:
//
//	go run ./cmd/silentcheck ./...
//
// or as a vet tool, which is how CI runs it alongside the standard vet checks:
//
//	go install ./cmd/silentcheck
//	go vet -vettool=$(go env GOPATH)/bin/silentcheck ./...
//
// It exits non-zero when it reports a finding.
package main

import (
	"golang.org/x/tools/go/analysis/singlechecker"

	"loudly/internal/silentcheck"
)

func main() { singlechecker.Main(silentcheck.Analyzer) }
