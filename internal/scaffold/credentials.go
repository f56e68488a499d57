package scaffold

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"loudly/pkg/deadletter"
	"loudly/pkg/faults"
	"loudly/services"
	"loudly/services/drill"
)

// The files that give each service of the compose demo its credentials: its NATS user and
// permissions, its PostgreSQL role, and their passwords (docs/security.md).
const (
	AuthConfFile = "deploy/compose/nats/auth.conf"
	RolesFile    = "deploy/compose/postgres/roles.sql"
	EnvFile      = "deploy/compose/.env"
	ClusterFile  = "deploy/compose/docker-compose.cluster.yml"
)

// The lines above which the scaffold adds a service's permissions, user and role.
const (
	permissionsMarker = "# (loudly new service adds a service's permissions above this line)"
	userMarker        = "# (loudly new service adds a service's user above this line)"
	roleMarker        = "-- (loudly new service adds a service's role above this line)"
)

// RoleSQL is the part of postgres/roles.sql that makes svc's role the owner of its schema
// (svc.DBRole, svc.Schema) with the password of the container's svc.DBPasswordVar.
func RoleSQL(svc services.Service) string {
	role, v := svc.DBRole(), strings.ToLower(svc.Name)+"_password"
	return fmt.Sprintf(`-- %[1]s: schema %[2]s
\getenv %[4]s %[5]s
SELECT 'CREATE ROLE %[3]s' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '%[3]s') \gexec
ALTER ROLE %[3]s WITH LOGIN PASSWORD :'%[4]s';
CREATE SCHEMA IF NOT EXISTS %[2]s AUTHORIZATION %[3]s;
ALTER SCHEMA %[2]s OWNER TO %[3]s;
REVOKE ALL ON SCHEMA %[2]s FROM PUBLIC;
`, svc.Name, svc.Schema, role, v, svc.DBPasswordVar())
}

// permissions is the NATS permissions block of the scaffolded service: publish its
// events (when it publishes) and its consumer's dead letters, the JetStream API calls of
// the streams it ensures and of its one consumer, replies on its own inbox; and, for its
// drills (DRILLS=enabled), what order and inventory have: configure and watch the fault
// bucket, never write it, and answer the drills check.
func (sc *Scaffold) permissions(svc services.Service, ensured []string) string {
	d := sc.data
	q := func(s ...string) string { return `"` + strings.Join(s, `", "`) + `"` }
	var allow []string
	if d.Publishes != "" {
		allow = append(allow, q(d.Publishes))
	}
	allow = append(allow, q(deadletter.SubjectPrefix+d.Name))
	for _, s := range append(ensured, deadletter.Stream) {
		allow = append(allow, q("$JS.API.STREAM.INFO."+s, "$JS.API.STREAM.CREATE."+s, "$JS.API.STREAM.UPDATE."+s))
	}
	c := d.Stream + "." + d.Name
	allow = append(allow,
		q("$JS.API.CONSUMER.CREATE."+c, "$JS.API.CONSUMER.CREATE."+c+".>"),
		q("$JS.API.CONSUMER.INFO."+c, "$JS.API.CONSUMER.MSG.NEXT."+c),
		q("$JS.ACK."+c+".>"))
	kv := "KV_" + faults.Bucket
	allow = append(allow,
		q("$JS.API.STREAM.INFO."+kv, "$JS.API.STREAM.CREATE."+kv, "$JS.API.STREAM.UPDATE."+kv),
		q("$JS.API.CONSUMER.CREATE."+kv+".>", "$JS.API.CONSUMER.DELETE."+kv+".>"),
		q("$JS.FC."+kv+".>"))
	return fmt.Sprintf(`%[1]s_PERMISSIONS = {
  publish: {
    allow: [
      %[2]s
    ]
    deny: ["$KV.%[3]s.>"]
  }
  subscribe: {
    allow: ["_INBOX.loudly-%[4]s.>", "%[5]s%[4]s"]
  }
  allow_responses: true
}

`, strings.ToUpper(svc.Name), strings.Join(allow, "\n      "), faults.Bucket, svc.Name, drill.SubjectPrefix)
}

// ensuredStreams are the streams the scaffolded service ensures at start-up (its
// service.go's Spec.Streams): every stream of the lists it joins, the one the scaffold
// adds to services/events included.
func (sc *Scaffold) ensuredStreams(parsed []streamDecl) []string {
	var out []string
	for _, s := range parsed {
		if s.List != "" && slices.Contains(sc.lists, s.List) {
			out = append(out, s.Name)
		}
	}
	if sc.newShared != "" {
		out = append(out, sc.newShared)
	}
	if st := sc.data.OwnStream; st != nil {
		out = append(out, st.Name)
	}
	return out
}

// streamRights is a line of auth.conf granting a user the JetStream API calls that ensure
// a stream.
var streamRights = regexp.MustCompile(`(?m)^( +)"\$JS\.API\.STREAM\.INFO\.(\w+)", "\$JS\.API\.STREAM\.CREATE\.(\w+)", "\$JS\.API\.STREAM\.UPDATE\.(\w+)"$`)

// grantStream gives every user of conf that may ensure the shared streams (those of
// services/events, in parsed) the same rights on stream st, which the scaffold adds to
// them: a line after its last such line, in each permissions block.
func grantStream(conf []byte, parsed []streamDecl, st string) []byte {
	shared := func(name string) bool {
		return slices.ContainsFunc(parsed, func(s streamDecl) bool { return s.Name == name && s.List == "events.Streams" })
	}
	blocks := strings.SplitAfter(string(conf), "_PERMISSIONS = {")
	for i, b := range blocks {
		var last []int
		for _, m := range streamRights.FindAllStringSubmatchIndex(b, -1) {
			if name := b[m[4]:m[5]]; shared(name) {
				last = m
			}
		}
		if last != nil {
			line := fmt.Sprintf("\n%s\"$JS.API.STREAM.INFO.%[2]s\", \"$JS.API.STREAM.CREATE.%[2]s\", \"$JS.API.STREAM.UPDATE.%[2]s\"", b[last[2]:last[3]], st)
			blocks[i] = b[:last[1]] + line + b[last[1]:]
		}
	}
	return []byte(strings.Join(blocks, ""))
}

// editCredentials gives the service its NATS user and permissions (auth.conf), its
// PostgreSQL role (roles.sql), their passwords (.env), and passes the passwords to the
// containers that need them (the compose file's nats and postgres, the cluster profile's
// nodes). compose is the compose file as editCompose left it.
func (sc *Scaffold) editCredentials(compose []byte, svc services.Service, parsed []streamDecl) error {
	natsPW, dbPW := svc.NATSPasswordVar(), svc.DBPasswordVar()
	conf, err := sc.read(AuthConfFile)
	if err != nil {
		return err
	}
	if strings.Contains(string(conf), "user: "+svc.NATSUser()+",") {
		return refuse("%s already has a NATS user %s: choose another NAME", AuthConfFile, svc.NATSUser())
	}
	if sc.newShared != "" {
		conf = grantStream(conf, parsed, sc.newShared)
	}
	conf, err = insertBefore(conf, permissionsMarker, sc.permissions(svc, sc.ensuredStreams(parsed)), AuthConfFile)
	if err != nil {
		return err
	}
	conf, err = insertBefore(conf, userMarker, fmt.Sprintf("{user: %[1]s, password: $%[2]s, permissions: $%[3]s_PERMISSIONS}\n    ",
		svc.NATSUser(), natsPW, strings.ToUpper(svc.Name)), AuthConfFile)
	if err != nil {
		return err
	}
	roles, err := sc.read(RolesFile)
	if err != nil {
		return err
	}
	if roles, err = insertBefore(roles, roleMarker, RoleSQL(svc)+"\n", RolesFile); err != nil {
		return err
	}
	env, err := sc.read(EnvFile)
	if err != nil {
		return err
	}
	if env, err = afterLast(env, natsPasswordLine, natsPW+"=loudly-"+svc.Name, EnvFile); err != nil {
		return err
	}
	if env, err = afterLast(env, dbPasswordLine, dbPW+"=loudly-"+svc.Name+"-db", EnvFile); err != nil {
		return err
	}
	if compose, err = afterLast(compose, natsPasswordYAML, natsPW+": ${"+natsPW+"}", ComposeFile); err != nil {
		return err
	}
	if compose, err = afterLast(compose, dbPasswordYAML, dbPW+": ${"+dbPW+"}", ComposeFile); err != nil {
		return err
	}
	cluster, err := sc.read(ClusterFile)
	if err != nil {
		return err
	}
	if cluster, err = afterLast(cluster, natsPasswordYAML, natsPW+": ${"+natsPW+"}", ClusterFile); err != nil {
		return err
	}
	sc.changed = append(sc.changed,
		fileChange{path: ComposeFile, data: compose, what: fmt.Sprintf(
			"compose service %s: the loudly image running /app/%s, HTTP_ADDR :%d, its NATS user and PostgreSQL role, healthcheck, depends_on healthy; their passwords for nats and postgres",
			svc.Name, svc.Name, svc.Port)},
		fileChange{path: ClusterFile, data: cluster, what: "the NATS user's password for the cluster's nodes"},
		fileChange{path: AuthConfFile, data: conf, what: fmt.Sprintf("NATS user %s: publish %s, its streams' and consumer's JetStream API, its inbox",
			svc.NATSUser(), strings.Join(sc.publishList(), ", "))},
		fileChange{path: RolesFile, data: roles, what: fmt.Sprintf("PostgreSQL role %s, owner of schema %s only", svc.DBRole(), svc.Schema)},
		fileChange{path: EnvFile, data: env, what: fmt.Sprintf("demo passwords %s and %s", natsPW, dbPW)})
	return nil
}

func (sc *Scaffold) publishList() []string {
	if sc.data.Publishes == "" {
		return []string{deadletter.SubjectPrefix + sc.data.Name}
	}
	return []string{sc.data.Publishes, deadletter.SubjectPrefix + sc.data.Name}
}

var (
	natsPasswordLine = regexp.MustCompile(`(?m)^()[A-Z0-9_]+_NATS_PASSWORD=.*$`)
	dbPasswordLine   = regexp.MustCompile(`(?m)^()[A-Z0-9_]+_DB_PASSWORD=.*$`)
	natsPasswordYAML = regexp.MustCompile(`(?m)^( +)([A-Z0-9_]+_NATS_PASSWORD): \$\{([A-Z0-9_]+_NATS_PASSWORD)\}$`)
	dbPasswordYAML   = regexp.MustCompile(`(?m)^( +)([A-Z0-9_]+_DB_PASSWORD): \$\{([A-Z0-9_]+_DB_PASSWORD)\}$`)
)

// afterLast adds line, indented like them, after the last line re matches (its first
// group is the indentation).
func afterLast(src []byte, re *regexp.Regexp, line, file string) ([]byte, error) {
	all := re.FindAllSubmatchIndex(src, -1)
	if all == nil {
		return nil, fmt.Errorf("%s: no line like %s to add %s after", file, re, line)
	}
	m := all[len(all)-1]
	indent := string(src[m[2]:m[3]])
	return slices.Concat(src[:m[1]], []byte("\n"+indent+line), src[m[1]:]), nil
}

// insertBefore inserts text at the start of the line holding marker (after its
// indentation).
func insertBefore(src []byte, marker, text, file string) ([]byte, error) {
	i := strings.Index(string(src), marker)
	if i < 0 {
		return nil, fmt.Errorf("%s: no line %q to add the service above", file, marker)
	}
	return slices.Concat(src[:i], []byte(text), src[i:]), nil
}
