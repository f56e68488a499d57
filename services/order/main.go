// Command order is Loudly's order service. Configuration comes from the environment
// (README, "Configuration"); main only wires. `order healthcheck` asks a running
// instance's /readyz (the container healthcheck).
package main

import (
	"os"

	"loudly/pkg/lifecycle"
	"loudly/services/order/order"
)

var version = "dev" // set with -ldflags "-X main.version=..."

func main() {
	os.Exit(lifecycle.Main(order.Program(version)))
}
