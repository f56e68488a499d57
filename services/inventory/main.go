// Command inventory is Loudly's inventory service. Configuration comes from the
// environment (README, "Configuration"); main only wires. `inventory healthcheck` asks a
// running instance's /readyz (the container healthcheck).
package main

import (
	"os"

	"loudly/pkg/lifecycle"
	"loudly/services/inventory/inventory"
)

var version = "dev" // set with -ldflags "-X main.version=..."

func main() {
	os.Exit(lifecycle.Main(inventory.Program(version)))
}
