// Command gen writes the dashboards of package dashboards as JSON into the current
// directory. go generate runs it in dashboards/:
//
//	go generate ./dashboards/...
package main

import (
	"fmt"
	"os"

	"loudly/dashboards"
)

func main() {
	files, err := dashboards.Files()
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
