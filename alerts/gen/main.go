// Command gen writes the rule files and promtool tests of package alerts into the current
// directory. go generate runs it in alerts/:
//
//	go generate ./alerts/...
package main

import (
	"fmt"
	"os"

	"loudly/alerts"
)

func main() {
	files, err := alerts.Files()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	for _, f := range files {
		if err := os.WriteFile(f.Name, f.Data, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
	}
}
