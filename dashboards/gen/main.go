// Command gen writes the dashboards of package dashboards as JSON into the current
// directory. go generate runs it in dashboards/:
//
//	go generate ./dashboards/...
package main

import (
	"loudly/dashboards"
	"loudly/internal/generated"
)

func main() { generated.Main(dashboards.Files) }
