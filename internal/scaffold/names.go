package scaffold

import (
	"fmt"
	"go/token"
	"regexp"
	"slices"
	"strings"

	"loudly/services"
)

var lowerIdent = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// predeclared are Go's predeclared identifiers: legal package names, and a trap.
var predeclared = strings.Fields(`any bool byte comparable complex64 complex128 error float32 float64 int int8
	int16 int32 int64 rune string uint uint8 uint16 uint32 uint64 uintptr true false iota nil append cap
	clear close complex copy delete imag len make max min new panic print println real recover`)

// checkName refuses a NAME that is not a lower-case Go package name or that the wiring
// cannot use.
func checkName(name string) error {
	suggest := strings.Map(func(r rune) rune {
		switch {
		case r >= 'A' && r <= 'Z':
			return r - 'A' + 'a'
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_':
			return r
		}
		return -1
	}, name)
	suggest = strings.TrimLeft(suggest, "0123456789_")
	hint := ""
	if suggest != "" && suggest != name && lowerIdent.MatchString(suggest) && !token.IsKeyword(suggest) {
		hint = fmt.Sprintf(" (%s would do)", suggest)
	}
	switch {
	case !lowerIdent.MatchString(name):
		return refuse("NAME %q is not a valid Go package name: use lower-case letters, digits and underscores, starting with a letter%s", name, hint)
	case token.IsKeyword(name):
		return refuse("NAME %q is a Go keyword, which cannot name a package", name)
	case slices.Contains(predeclared, name):
		return refuse("NAME %q is a predeclared Go identifier (a package named so would shadow it): choose another NAME", name)
	case name == "main" || name == "os" || name == "lifecycle":
		return refuse("NAME %q cannot be used: the program's main.go is package main and imports os and lifecycle", name)
	case len(name) > 20:
		return refuse("NAME %q is longer than 20 characters (it names an alert, a compose service, a schema and a consumer)", name)
	}
	return nil
}

// postgresReserved are PostgreSQL's reserved key words (and those reserved but allowed as
// function or type names): none of them can name a schema unquoted.
var postgresReserved = strings.Fields(`all analyse analyze and any array as asc asymmetric authorization binary
	both case cast check collate collation column concurrently constraint create cross current_catalog
	current_date current_role current_schema current_time current_timestamp current_user default deferrable
	desc distinct do else end except false fetch for foreign freeze from full grant group having ilike in
	initially inner intersect into is isnull join lateral leading left like limit localtime localtimestamp
	natural not notnull null offset on only or order outer overlaps placing primary references returning
	right select session_user similar some symmetric system_user table tablesample then to trailing true
	union unique user using variadic verbose when where window with`)

// schemaFor is the PostgreSQL schema of a service: its name, unless PostgreSQL reserves the
// name (user → user_svc) or its pg_ prefix (pg_x → svc_pg_x).
func schemaFor(name string) string {
	switch {
	case slices.Contains(postgresReserved, name):
		return name + "_svc"
	case strings.HasPrefix(name, "pg_"):
		return "svc_" + name
	}
	return name
}

// FreePort is one above the highest port of the listed services, skipping the ports the
// compose demo's other programs use, so that every service can also run side by side on
// one machine.
func FreePort(existing []services.Service) int {
	taken := map[int]bool{3000: true, 3100: true, 3200: true, 4222: true, 4317: true, 4318: true, 5432: true,
		7777: true, 8222: true, 8888: true, 8889: true, 9090: true, 9464: true}
	port := 8079
	for _, s := range existing {
		taken[s.Port] = true
		port = max(port, s.Port)
	}
	for port++; taken[port]; port++ {
	}
	return port
}
