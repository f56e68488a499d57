// Command gen writes the rule files and promtool tests of package alerts into the current
// directory. go generate runs it in alerts/:
//
//	go generate ./alerts/...
package main

import (
	"loudly/alerts"
	"loudly/internal/generated"
)

func main() { generated.Main(alerts.Files) }
