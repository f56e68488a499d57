package scaffold

import (
	"regexp"
	"strings"
)

var subjectToken = regexp.MustCompile(`^[a-z0-9_-]+$`)

// checkSubject refuses what is not a NATS subject of lower-case tokens. A filter may use
// the wildcards * (one token) and > (the rest, last), but not in its first token, which
// names its stream.
func checkSubject(flagName, subject string, filter bool) error {
	tokens := strings.Split(subject, ".")
	for i, t := range tokens {
		switch {
		case filter && i > 0 && (t == "*" || t == ">" && i == len(tokens)-1):
		case !subjectToken.MatchString(t):
			what := "lower-case letters, digits, '-' and '_'"
			if filter {
				what += " (or a wildcard * or a final > after the first token)"
			}
			return refuse("%s %q is not a subject this scaffold accepts: tokens separated by '.', each of %s", flagName, subject, what)
		}
	}
	if len(tokens) < 2 {
		return refuse("%s %q: a subject has at least two tokens, the first naming its stream (orders.placed)", flagName, subject)
	}
	return nil
}

// covers reports whether every subject that filter matches is matched by pattern.
func covers(pattern, filter string) bool {
	p, s := strings.Split(pattern, "."), strings.Split(filter, ".")
	for i, pt := range p {
		if pt == ">" {
			return len(s) > i
		}
		if i >= len(s) || s[i] == ">" || pt != "*" && pt != s[i] {
			return false
		}
	}
	return len(p) == len(s)
}

// overlaps reports whether some subject matches both a and b.
func overlaps(a, b string) bool {
	x, y := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; ; i++ {
		if i == len(x) || i == len(y) {
			return len(x) == len(y)
		}
		if x[i] == ">" || y[i] == ">" {
			return true
		}
		if x[i] != "*" && y[i] != "*" && x[i] != y[i] {
			return false
		}
	}
}

// camel is the Go name of a subject: payments.requested → PaymentsRequested.
func camel(subject string) string {
	var b strings.Builder
	for _, part := range strings.FieldsFunc(subject, func(r rune) bool { return r == '.' || r == '-' || r == '_' }) {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}
