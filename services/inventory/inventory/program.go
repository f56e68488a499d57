package inventory

import "loudly/pkg/lifecycle"

// DefaultAddr is HTTP_ADDR's default.
const DefaultAddr = ":8081"

// Program is the inventory service as a program: what its main runs with lifecycle.Main, and
// what runs it in-process exactly the same way with lifecycle.Run (`loudly demo`, the
// tests' testenv.StartProgram).
func Program(version string) lifecycle.Program[Config, *Service] {
	return lifecycle.Program[Config, *Service]{
		Name: "inventory", Version: version, DefaultAddr: DefaultAddr,
		Load: ConfigFromEnv, Start: New,
	}
}
