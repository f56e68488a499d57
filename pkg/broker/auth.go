package broker

import (
	"fmt"
	"os"
	"regexp"

	"github.com/nats-io/nats.go"

	"loudly/pkg/env"
)

// Environment variables of a client's NATS credentials. At most one kind may be set: a
// user and password (both), a creds file (a user JWT and its nkey seed, for a server run
// in operator mode), or an nkey seed file. With none the client connects anonymously,
// which only a server without authorization accepts. A NATS_URL carrying user:password@
// also works, as nats.go reads it; it is not checked here.
const (
	UserVar     = "NATS_USER"
	PasswordVar = "NATS_PASSWORD"
	CredsVar    = "NATS_CREDS"
	NkeySeedVar = "NATS_NKEY_SEED"
)

// Auth is how a client proves who it is to NATS. The zero value is anonymous.
type Auth struct {
	User, Password string
	CredsFile      string // NATS_CREDS: path of a .creds file
	NkeySeedFile   string // NATS_NKEY_SEED: path of a file holding an nkey seed (SU...)
}

// ReadAuth reads NATS_USER with NATS_PASSWORD, or NATS_CREDS, or NATS_NKEY_SEED. Setting
// more than one kind, a user without a password (or the reverse), or naming a file that
// cannot be read, is a configuration error.
func ReadAuth(r *env.Reader) Auth {
	a := Auth{
		User:         r.String(UserVar, ""),
		Password:     r.String(PasswordVar, ""),
		CredsFile:    r.String(CredsVar, ""),
		NkeySeedFile: r.String(NkeySeedVar, ""),
	}
	kinds := 0
	if a.User != "" || a.Password != "" {
		kinds++
		if a.User == "" {
			r.Reject(PasswordVar, "(hidden)", "set without "+UserVar)
		} else if a.Password == "" {
			r.Reject(UserVar, a.User, "set without "+PasswordVar)
		}
	}
	for _, f := range []struct{ name, path string }{{CredsVar, a.CredsFile}, {NkeySeedVar, a.NkeySeedFile}} {
		if f.path == "" {
			continue
		}
		kinds++
		if _, err := os.ReadFile(f.path); err != nil {
			r.Reject(f.name, f.path, fmt.Sprintf("cannot read the file: %v", err))
		}
	}
	if kinds > 1 {
		r.Reject(UserVar+"/"+CredsVar+"/"+NkeySeedVar, a.String(), "set one kind of NATS credentials, not several")
		return Auth{}
	}
	return a
}

// String names the credentials without their secret: for logs and errors.
func (a Auth) String() string {
	var s string
	if a.User != "" || a.Password != "" {
		s = "user " + a.User
	}
	if a.CredsFile != "" {
		s += " creds file " + a.CredsFile
	}
	if a.NkeySeedFile != "" {
		s += " nkey seed file " + a.NkeySeedFile
	}
	if s == "" {
		return "anonymous"
	}
	return s
}

// Options are the nats.go options that present the credentials: nats.UserInfo,
// nats.UserCredentials or nats.NkeyOptionFromSeed.
func (a Auth) Options() ([]nats.Option, error) {
	switch {
	case a.User != "":
		return []nats.Option{nats.UserInfo(a.User, a.Password)}, nil
	case a.CredsFile != "":
		return []nats.Option{nats.UserCredentials(a.CredsFile)}, nil
	case a.NkeySeedFile != "":
		opt, err := nats.NkeyOptionFromSeed(a.NkeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("%s=%s: %w", NkeySeedVar, a.NkeySeedFile, err)
		}
		return []nats.Option{opt}, nil
	}
	return nil, nil
}

// violationSubject finds the subject in the server's permissions violation ("Permissions
// Violation for Publish to \"x\"", "... for Subscription to \"x\"").
var violationSubject = regexp.MustCompile(`(Publish|Subscription) to "([^"]+)"`)

// describeViolation returns the operation and subject a permissions violation names.
func describeViolation(err error) (op, subject string) {
	m := violationSubject.FindStringSubmatch(err.Error())
	if m == nil {
		return "unknown", ""
	}
	return m[1], m[2]
}
