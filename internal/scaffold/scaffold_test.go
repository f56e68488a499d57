package scaffold

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"loudly/services"
)

// Samples must know every subject of services/events: a subject missing here could not
// be consumed by a scaffolded service.
func TestEventSamples_CoverEverySubject(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join("../..", "services/events/events.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	subjects, types := map[string]string{}, map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, name := range vs.Names {
			if i >= len(vs.Values) {
				continue
			}
			lit, ok := vs.Values[i].(*ast.BasicLit)
			if !ok {
				continue
			}
			switch v, _ := strconv.Unquote(lit.Value); {
			case strings.HasPrefix(name.Name, "Subject"):
				subjects[name.Name] = v
			case strings.HasPrefix(name.Name, "Type"):
				types[name.Name] = true
			}
		}
		return true
	})
	if len(subjects) == 0 {
		t.Fatal("found no Subject constants in services/events")
	}
	for name, subject := range subjects {
		if !slices.ContainsFunc(Samples, func(s Sample) bool { return s.Subject == subject }) {
			t.Errorf("events.%s (%s) has no sample in Samples", name, subject)
		}
	}
	for _, s := range Samples {
		if !types[s.Type] {
			t.Errorf("sample of %s: events.%s is not an event type", s.Subject, s.Type)
		}
	}
}

func TestSubjects(t *testing.T) {
	for _, c := range []struct {
		pattern, subject string
		covers, overlaps bool
	}{
		{"orders.>", "orders.placed", true, true},
		{"orders.>", "orders.>", true, true},
		{"orders.>", "orders.*", true, true},
		{"orders.>", "orders", false, false},
		{"orders.*", "orders.placed", true, true},
		{"orders.*", "orders.placed.x", false, false},
		{"orders.placed", "orders.*", false, true},
		{"orders.placed", "orders.placed", true, true},
		{"inventory.>", "orders.placed", false, false},
		{"shipping.>", "shipping.scheduled", true, true},
	} {
		if got := covers(c.pattern, c.subject); got != c.covers {
			t.Errorf("covers(%s, %s) = %v", c.pattern, c.subject, got)
		}
		if got := overlaps(c.pattern, c.subject); got != c.overlaps {
			t.Errorf("overlaps(%s, %s) = %v", c.pattern, c.subject, got)
		}
	}
}

func TestSchemaAndPort(t *testing.T) {
	for name, want := range map[string]string{"shipping": "shipping", "user": "user_svc", "order": "order_svc", "pg_x": "svc_pg_x"} {
		if got := schemaFor(name); got != want {
			t.Errorf("schemaFor(%s) = %s, want %s", name, got, want)
		}
	}
	if got := FreePort([]services.Service{{Port: 8080}, {Port: 8081}}); got != 8082 {
		t.Errorf("FreePort after 8080 and 8081 = %d, want 8082", got)
	}
	if got := FreePort([]services.Service{{Port: 8887}}); got != 8890 {
		t.Errorf("FreePort after 8887 = %d, want 8890 (8888 and 8889 are the collector's)", got)
	}
}

// The roles the scaffold writes for a new service are written like the demo's own:
// roles.sql holds RoleSQL of each listed service, so the scaffold's block is the tested one.
func TestRoleSQL_IsHowRolesSQLMakesEachRole(t *testing.T) {
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	roles, err := os.ReadFile(filepath.Join(root, RolesFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range services.All {
		if !strings.Contains(string(roles), RoleSQL(svc)) {
			t.Errorf("%s does not make %s's role as RoleSQL does:\n%s", RolesFile, svc.Name, RoleSQL(svc))
		}
	}
	if !strings.Contains(string(roles), roleMarker) {
		t.Errorf("%s lacks the line the scaffold adds roles above: %s", RolesFile, roleMarker)
	}
}

// A new stream in services/events is ensured by every service that ensures the demo's
// streams: their users get its API rights, the others (loadgen) do not.
func TestGrantStream_ToTheUsersThatEnsureTheDemosStreams(t *testing.T) {
	conf := []byte(`A_PERMISSIONS = {
  publish: {
    allow: [
      "a.>"
      "$JS.API.STREAM.INFO.ORDERS", "$JS.API.STREAM.CREATE.ORDERS", "$JS.API.STREAM.UPDATE.ORDERS"
      "$JS.API.STREAM.INFO.DEADLETTER", "$JS.API.STREAM.CREATE.DEADLETTER", "$JS.API.STREAM.UPDATE.DEADLETTER"
    ]
  }
}
L_PERMISSIONS = {
  publish: {
    allow: [
      "$JS.API.STREAM.INFO.ORDERS", "$JS.API.STREAM.INFO.DEADLETTER"
    ]
  }
}
`)
	got := string(grantStream(conf, []streamDecl{{Name: "ORDERS", List: "events.Streams"}, {Name: "DEADLETTER"}}, "PAYMENTS"))
	want := `      "$JS.API.STREAM.INFO.ORDERS", "$JS.API.STREAM.CREATE.ORDERS", "$JS.API.STREAM.UPDATE.ORDERS"
      "$JS.API.STREAM.INFO.PAYMENTS", "$JS.API.STREAM.CREATE.PAYMENTS", "$JS.API.STREAM.UPDATE.PAYMENTS"
      "$JS.API.STREAM.INFO.DEADLETTER"`
	if !strings.Contains(got, want) || strings.Count(got, "PAYMENTS") != 3 {
		t.Errorf("granted:\n%s", got)
	}
}

// The rendered files keep only the imports they use, named as Go programs name them.
func TestPruneImports(t *testing.T) {
	for path, want := range map[string]string{"github.com/jackc/pgx/v5": "pgx", "github.com/nats-io/nats.go": "nats",
		"loudly/services/payments/payments": "payments", "gopkg.in/yaml.v3": "yaml", "fmt": "fmt"} {
		if got := packageName(path); got != want {
			t.Errorf("packageName(%q) = %q, want %q", path, got, want)
		}
	}
	src := []byte(`package x

import (
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
)

var _ = fmt.Sprint(pgx.Batch{})
`)
	got, err := pruneImports(src)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(got); strings.Contains(s, `"strings"`) || strings.Contains(s, "nats.go") || !strings.Contains(s, `"fmt"`) || !strings.Contains(s, "pgx/v5") {
		t.Errorf("pruned:\n%s", s)
	}
}
