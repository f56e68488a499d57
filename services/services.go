// Package services is the list of Loudly's services: the one place that says which
// services exist, so that what is generated for each of them — its rows on the consumer
// dashboard (dashboards/), its alert rules (alerts/) — and what the compose demo's tests
// expect of it (deploy/compose/) follow from one list.
//
// `go run ./cmd/loudly new service NAME` appends an entry here when it scaffolds
// services/NAME; `go generate ./dashboards/... ./alerts/...` then renders its rows and
// rules. A service added by hand needs the same: its directory, an entry here, a compose
// service and a scrape job (docs/template.md).
package services

import "strings"

// Service is one program under services/<Name>.
type Service struct {
	// Name is the directory under services/ and the name of its program, and also its
	// Prometheus job, its compose service, its OTEL_SERVICE_NAME and its runbooks'
	// service. A lower-case Go package name.
	Name string
	// Port is its default HTTP port (HTTP_ADDR): the API, /healthz, /readyz and /metrics.
	// The compose demo runs it there and Prometheus scrapes it there.
	Port int
	// Schema is the PostgreSQL schema it owns: its migrations, its idempotency records and
	// its outbox live there, and nobody else writes to it.
	Schema string
	// Outbox says it publishes events through a transactional outbox, <Schema>.outbox.
	Outbox bool
	// About says in a few words what it does, for the dashboards.
	About string
}

// OutboxTable is the service's outbox table, or "" when it has none.
func (s Service) OutboxTable() string {
	if !s.Outbox {
		return ""
	}
	return s.Schema + ".outbox"
}

// CamelName is Name in CamelCase, as alert names carry it: fraud_check is FraudCheck.
func (s Service) CamelName() string {
	var b strings.Builder
	up := true
	for _, c := range s.Name {
		switch {
		case c == '_':
			up = true
		case up:
			b.WriteString(strings.ToUpper(string(c)))
			up = false
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}

// NATSUser is the service's NATS user in the compose demo (deploy/compose/nats/auth.conf
// gives it its permissions), and NATSPasswordVar the variable of deploy/compose/.env
// holding its password.
func (s Service) NATSUser() string        { return s.Name }
func (s Service) NATSPasswordVar() string { return strings.ToUpper(s.Name) + "_NATS_PASSWORD" }

// DBRole is the PostgreSQL role the service migrates and runs as in the compose demo: the
// owner of its schema, with no rights on the others' (deploy/compose/postgres/roles.sql).
// DBPasswordVar is the variable of deploy/compose/.env holding its password.
func (s Service) DBRole() string {
	if strings.HasPrefix(s.Name, "pg_") { // PostgreSQL reserves role names starting with pg_
		return "svc_" + s.Name
	}
	return s.Name + "_svc"
}
func (s Service) DBPasswordVar() string { return strings.ToUpper(s.Name) + "_DB_PASSWORD" }

// All lists every service, in the order dashboards and alert files show them.
var All = []Service{
	{Name: "order", Port: 8080, Schema: "orders", Outbox: true,
		About: "order API, outbox relay, settlement, reconciler"},
	{Name: "inventory", Port: 8081, Schema: "inventory", Outbox: true,
		About: "reserves stock for placed orders"},
}

// Names lists the services' names, in order.
func Names() []string {
	names := make([]string, len(All))
	for i, s := range All {
		names[i] = s.Name
	}
	return names
}
