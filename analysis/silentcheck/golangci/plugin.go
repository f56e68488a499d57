// Package golangci registers silentcheck as a golangci-lint module plugin, so that a
// custom golangci-lint binary built with `golangci-lint custom` runs it next to the
// team's other linters. It has no settings. See the analyzer's README.md for the
// .custom-gcl.yml and .golangci.yml that use it.
package golangci

import (
	"github.com/golangci/plugin-module-register/register"
	"golang.org/x/tools/go/analysis"

	"loudly/analysis/silentcheck"
)

func init() {
	register.Plugin("silentcheck", New)
}

// New is the plugin's constructor; golangci-lint passes the linter's settings, which
// silentcheck does not take.
func New(any) (register.LinterPlugin, error) { return plugin{}, nil }

type plugin struct{}

func (plugin) BuildAnalyzers() ([]*analysis.Analyzer, error) {
	return []*analysis.Analyzer{silentcheck.Analyzer}, nil
}

// GetLoadMode asks for type information: every rule is decided from types.
func (plugin) GetLoadMode() string { return register.LoadModeTypesInfo }
