package services

import (
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var lowerIdent = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// The list is what dashboards, alerts and the compose tests are generated from: every
// entry must be a real program, and no two may share a name, a port or a schema.
func TestAll_IsTheServicesThatExist(t *testing.T) {
	names, ports, schemas := map[string]bool{}, map[int]bool{}, map[string]bool{}
	for _, s := range All {
		if !lowerIdent.MatchString(s.Name) || token.IsKeyword(s.Name) {
			t.Errorf("%q is not a lower-case Go package name", s.Name)
		}
		if !lowerIdent.MatchString(s.Schema) {
			t.Errorf("%s: schema %q is not a lower-case SQL identifier", s.Name, s.Schema)
		}
		if s.Port < 1024 || s.Port > 65535 {
			t.Errorf("%s: port %d", s.Name, s.Port)
		}
		if names[s.Name] || ports[s.Port] || schemas[s.Schema] {
			t.Errorf("%s: name, port %d or schema %s used twice", s.Name, s.Port, s.Schema)
		}
		names[s.Name], ports[s.Port], schemas[s.Schema] = true, true, true
		if strings.TrimSpace(s.About) == "" {
			t.Errorf("%s: no About", s.Name)
		}
		main, err := os.ReadFile(filepath.Join(s.Name, "main.go"))
		if err != nil {
			t.Errorf("%s: %v: every listed service is a program under services/", s.Name, err)
			continue
		}
		if !strings.Contains(string(main), "lifecycle.Main(") {
			t.Errorf("services/%s/main.go does not run lifecycle.Main", s.Name)
		}
	}
	// And every program under services/ is listed.
	dirs, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d.Name(), "main.go")); d.IsDir() && err == nil && !names[d.Name()] {
			t.Errorf("services/%s is a program but not in services.All", d.Name())
		}
	}
}

func TestOutboxTable(t *testing.T) {
	if got := (Service{Schema: "orders", Outbox: true}).OutboxTable(); got != "orders.outbox" {
		t.Errorf("OutboxTable = %q", got)
	}
	if got := (Service{Schema: "x"}).OutboxTable(); got != "" {
		t.Errorf("OutboxTable without an outbox = %q", got)
	}
}

func TestCamelName(t *testing.T) {
	for name, want := range map[string]string{"order": "Order", "fraud_check": "FraudCheck", "s3sync": "S3sync"} {
		if got := (Service{Name: name}).CamelName(); got != want {
			t.Errorf("CamelName(%s) = %s, want %s", name, got, want)
		}
	}
}
