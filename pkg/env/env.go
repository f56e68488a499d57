// Package env reads a program's configuration from environment variables, with documented
// defaults, and collects every problem so a bad configuration is reported all at once.
package env

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Reader reads variables through getenv (os.Getenv in programs, a map in tests).
type Reader struct {
	getenv func(string) string
	errs   []error
}

// New returns a reader over getenv.
func New(getenv func(string) string) *Reader { return &Reader{getenv: getenv} }

// String returns the variable, or def when it is unset or empty.
func (r *Reader) String(name, def string) string {
	if v := strings.TrimSpace(r.getenv(name)); v != "" {
		return v
	}
	return def
}

// Choice returns the variable, lower-cased, which must be one of choices; def when it is
// unset or empty.
func (r *Reader) Choice(name, def string, choices ...string) string {
	v := strings.ToLower(r.String(name, ""))
	if v == "" {
		return def
	}
	for _, c := range choices {
		if v == c {
			return v
		}
	}
	r.errs = append(r.errs, fmt.Errorf("%s=%q: want one of %s", name, v, strings.Join(choices, ", ")))
	return def
}

// Duration parses a Go duration ("500ms", "30s") that must be positive.
func (r *Reader) Duration(name string, def time.Duration) time.Duration {
	v := r.String(name, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		r.errs = append(r.errs, fmt.Errorf("%s=%q: want a positive duration such as 500ms or 30s", name, v))
		return def
	}
	return d
}

// Int parses an integer within [lo, hi].
func (r *Reader) Int(name string, def, lo, hi int) int {
	v := r.String(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		r.errs = append(r.errs, fmt.Errorf("%s=%q: want an integer from %d to %d", name, v, lo, hi))
		return def
	}
	return n
}

// URL parses a URL whose scheme is one of schemes.
func (r *Reader) URL(name, def string, schemes ...string) string {
	v := r.String(name, def)
	u, err := url.Parse(v)
	if err != nil || u.Host == "" && u.Path == "" {
		r.errs = append(r.errs, fmt.Errorf("%s=%q: not a URL", name, v))
		return v
	}
	for _, s := range schemes {
		if u.Scheme == s {
			return v
		}
	}
	r.errs = append(r.errs, fmt.Errorf("%s=%q: scheme must be one of %s", name, v, strings.Join(schemes, ", ")))
	return v
}

// URLs parses a comma-separated list of URLs, each with one of schemes, such as the seed
// servers of a cluster ("nats://n1:4222,nats://n2:4222"). Spaces around the commas are
// allowed; the list is returned without them. A single URL is a list of one.
func (r *Reader) URLs(name, def string, schemes ...string) string {
	v := r.String(name, def)
	var list []string
	for part := range strings.SplitSeq(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			r.errs = append(r.errs, fmt.Errorf("%s=%q: empty entry in the comma-separated list of URLs", name, v))
			return v
		}
		u, err := url.Parse(part)
		if err != nil || u.Host == "" {
			r.errs = append(r.errs, fmt.Errorf("%s=%q: %q is not a URL with a host", name, v, part))
			return v
		}
		if !slices.Contains(schemes, u.Scheme) {
			r.errs = append(r.errs, fmt.Errorf("%s=%q: scheme of %q must be one of %s", name, v, part, strings.Join(schemes, ", ")))
			return v
		}
		list = append(list, part)
	}
	return strings.Join(list, ",")
}

// Reject records a problem that a caller's own check found in a variable the reader
// returned, so it is reported with all the others.
func (r *Reader) Reject(name, value, problem string) {
	r.errs = append(r.errs, fmt.Errorf("%s=%q: %s", name, value, problem))
}

// Addr checks a listen address such as ":8080" or "127.0.0.1:0".
func (r *Reader) Addr(name, def string) string {
	v := r.String(name, def)
	i := strings.LastIndex(v, ":")
	if i < 0 {
		r.errs = append(r.errs, fmt.Errorf("%s=%q: want host:port or :port", name, v))
		return v
	}
	if p, err := strconv.Atoi(v[i+1:]); err != nil || p < 0 || p > 65535 {
		r.errs = append(r.errs, fmt.Errorf("%s=%q: bad port", name, v))
	}
	return v
}

// Err returns every problem found, or nil.
func (r *Reader) Err() error { return errors.Join(r.errs...) }
