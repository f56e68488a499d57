// Command gen writes the chart's generated files (files/) into the current directory from
// their sources: the alert rules, the dashboards and the compose demo's NATS users. go
// generate runs it in deploy/kubernetes/:
//
//	go generate ./deploy/kubernetes/...
package main

import (
	"loudly/deploy/kubernetes"
	"loudly/internal/generated"
)

func main() { generated.Main(kubernetes.Files) }
