package kubernetes

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"loudly/internal/generated"
	"loudly/pkg/env"
	"loudly/pkg/service"
	"loudly/pkg/telemetry"
	"loudly/services"
)

func TestGeneratedFilesAreInSync(t *testing.T) { generated.CheckInSync(t, "deploy/kubernetes", Files) }

// forEachValueSet renders the chart with the default values and with the training
// namespace's, and runs check on each.
func forEachValueSet(t *testing.T, check func(t *testing.T, r *rendered)) {
	for name, files := range valueSets {
		t.Run(name, func(t *testing.T) { check(t, render(t, ".", files, nil)) })
	}
}

// The chart renders with either values file, every object decodes strictly into its Go
// type or fits its CRD's facts (render fails the test otherwise), and each service gets
// its whole set of objects.
func TestChart_RendersEveryServiceStrictly(t *testing.T) {
	forEachValueSet(t, func(t *testing.T, r *rendered) {
		for name := range serviceValues(t, r) {
			full := releaseName + "-" + name
			for _, kind := range []string{"Deployment", "Service", "PodDisruptionBudget", "ScaledObject", "NetworkPolicy", "PodMonitor", "Secret"} {
				n := full
				if kind == "Secret" {
					n = releaseName + "-db-" + name
				}
				r.one(t, kind, n)
			}
		}
		for _, want := range []struct{ kind, name string }{
			{"Cluster", releaseName + "-pg"}, {"Database", releaseName + "-loudly"},
			{"OpenTelemetryCollector", releaseName}, {"PrometheusRule", releaseName + "-alerts"},
			{"ConfigMap", releaseName + "-nats-auth"}, {"Secret", releaseName + "-nats-users"},
			{"Job", releaseName + "-cli"},
		} {
			r.one(t, want.kind, want.name)
		}
		kinds := map[string]int{}
		for _, o := range r.Objects {
			kinds[o.Kind]++
		}
		t.Logf("%d objects: %v", len(r.Objects), kinds)
	})
}

// serviceValues is the services map the templates saw.
func serviceValues(t *testing.T, r *rendered) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for name, v := range r.Values["services"].(map[string]any) {
		out[name] = v.(map[string]any)
	}
	return out
}

// pod is a pod template the chart renders, with where it came from.
type pod struct {
	owner     object
	labels    map[string]string
	spec      corev1.PodSpec
	longLived bool // a Deployment or StatefulSet (probes apply), not a Job
}

func pods(r *rendered) []pod {
	var out []pod
	for _, o := range r.Objects {
		switch v := o.Typed.(type) {
		case *appsv1.Deployment:
			out = append(out, pod{o, v.Spec.Template.Labels, v.Spec.Template.Spec, true})
		case *appsv1.StatefulSet:
			out = append(out, pod{o, v.Spec.Template.Labels, v.Spec.Template.Spec, true})
		case *batchv1.Job:
			out = append(out, pod{o, v.Spec.Template.Labels, v.Spec.Template.Spec, false})
		}
	}
	return out
}

// The Dockerfile's runtime user, which the pods' security context must name.
func dockerfileUser(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^USER (\d+):(\d+)\s*$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("the Dockerfile has no USER uid:gid line: the chart's runAsUser must follow it")
	}
	uid, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return uid
}

// Every Loudly container runs the Dockerfile's non-root user on a read-only root
// filesystem without privileges, from a pinned tag, with requests and limits and
// GOMEMLIMIT at 90% of its memory limit; every long-lived one has HTTP probes on a port it
// declares (the services: /healthz for liveness, /readyz for readiness).
func TestChart_PodPolicies(t *testing.T) {
	uid := dockerfileUser(t)
	programs := dockerfilePrograms(t)
	forEachValueSet(t, func(t *testing.T, r *rendered) {
		svcs := serviceValues(t, r)
		for _, p := range pods(r) {
			if p.labels["app.kubernetes.io/part-of"] != "loudly" {
				continue // the NATS chart's pods: its own choices (docs/kubernetes.md)
			}
			psc := p.spec.SecurityContext
			if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != uid {
				t.Errorf("%s: pod security context %+v: want runAsNonRoot and runAsUser %d (the Dockerfile's USER)", p.owner, psc, uid)
			}
			if p.spec.AutomountServiceAccountToken == nil || *p.spec.AutomountServiceAccountToken {
				t.Errorf("%s: mounts a service account token it never uses", p.owner)
			}
			for _, c := range p.spec.Containers {
				where := fmt.Sprintf("%s container %s", p.owner, c.Name)
				if !regexp.MustCompile(`^[^:@]+(:[A-Za-z0-9_][A-Za-z0-9_.-]*)$`).MatchString(c.Image) || strings.HasSuffix(c.Image, ":latest") {
					t.Errorf("%s: image %q: want a pinned tag, not latest", where, c.Image)
				}
				if len(c.Command) != 1 || !programs[c.Command[0]] {
					t.Errorf("%s: command %v: want one of the programs the Dockerfile puts in /app", where, c.Command)
				}
				sc := c.SecurityContext
				if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
					sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
					sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
					t.Errorf("%s: security context %+v: want a read-only root filesystem, no privilege escalation, capabilities dropped", where, sc)
				}
				limit := c.Resources.Limits.Memory()
				for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
					if _, ok := c.Resources.Limits[res]; !ok {
						t.Errorf("%s: no %s limit", where, res)
					}
					if _, ok := c.Resources.Requests[res]; !ok {
						t.Errorf("%s: no %s request", where, res)
					}
				}
				if got, want := envValue(c, "GOMEMLIMIT"), strconv.FormatInt(limit.Value()*9/10, 10); got != want {
					t.Errorf("%s: GOMEMLIMIT=%q, want %s (90%% of the memory limit %s)", where, got, want, limit)
				}
				if !p.longLived {
					continue
				}
				if c.LivenessProbe == nil || c.ReadinessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet == nil {
					t.Errorf("%s: want HTTP liveness and readiness probes", where)
					continue
				}
				for _, pr := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
					if pr != nil && pr.HTTPGet != nil && !declaresPort(c, pr.HTTPGet.Port.String()) {
						t.Errorf("%s: probe on port %s, which the container does not declare", where, pr.HTTPGet.Port.String())
					}
				}
				if _, isService := svcs[c.Name]; isService {
					if c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
						t.Errorf("%s: liveness %s, readiness %s: want /healthz and /readyz", where, c.LivenessProbe.HTTPGet.Path, c.ReadinessProbe.HTTPGet.Path)
					}
				}
			}
		}
	})
}

// dockerfilePrograms are the programs the Dockerfile's image holds: it builds
// ./services/... (each service's program, /app/<name>), ./loadtest and ./cmd/loudly into
// /app.
func dockerfilePrograms(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	build := regexp.MustCompile(`-o /out/app/ \\\s+(.*)&&`).FindSubmatch(b)
	if build == nil {
		t.Fatal("the Dockerfile has no `go build ... -o /out/app/` line: the chart's commands must follow it")
	}
	out := map[string]bool{}
	for _, pkg := range strings.Fields(string(build[1])) {
		switch pkg {
		case "./services/...":
			for _, n := range services.Names() {
				out["/app/"+n] = true
			}
		default:
			out["/app/"+filepath.Base(pkg)] = true
		}
	}
	return out
}

func envValue(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

func declaresPort(c corev1.Container, port string) bool {
	for _, p := range c.Ports {
		if p.Name == port || strconv.Itoa(int(p.ContainerPort)) == port {
			return true
		}
	}
	return false
}

// operatorSecrets are the Secrets an operator creates for the objects the chart renders:
// CloudNativePG makes <cluster>-ca (the CA of the server certificate) for every Cluster.
func operatorSecrets(r *rendered) map[string]bool {
	out := map[string]bool{}
	for _, o := range r.all("Cluster") {
		out[o.Name+"-ca"] = true
	}
	return out
}

// Every Secret a pod, the NATS chart or CloudNativePG is pointed at is rendered, with the
// key asked for (or is one an operator makes); every rendered Secret is used.
func TestChart_EverySecretReferencedExists(t *testing.T) {
	forEachValueSet(t, func(t *testing.T, r *rendered) {
		secrets := map[string]*corev1.Secret{}
		for _, o := range r.all("Secret") {
			secrets[o.Name] = o.Typed.(*corev1.Secret)
		}
		byOperator := operatorSecrets(r)
		used := map[string]bool{}
		ref := func(where, name, key string) {
			used[name] = true
			if byOperator[name] {
				return
			}
			s, ok := secrets[name]
			if !ok {
				t.Errorf("%s: Secret %s is not rendered", where, name)
				return
			}
			if _, ok := s.Data[key]; key != "" && !ok {
				t.Errorf("%s: Secret %s has no key %s (keys: %v)", where, name, key, slices.Sorted(maps.Keys(s.Data)))
			}
		}
		for _, p := range pods(r) {
			for _, c := range append(slices.Clone(p.spec.InitContainers), p.spec.Containers...) {
				for _, e := range c.Env {
					if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
						ref(fmt.Sprintf("%s env %s", p.owner, e.Name), e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key)
					}
				}
				for _, e := range c.EnvFrom {
					if e.SecretRef != nil {
						ref(p.owner.String()+" envFrom", e.SecretRef.Name, "")
					}
				}
			}
			for _, v := range p.spec.Volumes {
				if v.Secret != nil {
					for _, it := range v.Secret.Items {
						ref(p.owner.String()+" volume "+v.Name, v.Secret.SecretName, it.Key)
					}
					if len(v.Secret.Items) == 0 {
						ref(p.owner.String()+" volume "+v.Name, v.Secret.SecretName, "")
					}
				}
			}
		}
		// The NATS servers' passwords, whether or not the NATS chart is rendered here.
		for _, name := range natsEnvFromSecrets(t, r) {
			ref("nats.container.patch envFrom", name, "")
		}
		// The services' roles: CloudNativePG sets each role's password from a basic-auth
		// Secret whose username is the role.
		for _, o := range r.all("Cluster") {
			for _, role := range pathList(o.Typed, "spec", "managed", "roles") {
				role := role.(map[string]any)
				name := pathString(role, "passwordSecret", "name")
				ref(fmt.Sprintf("%s role %s", o, role["name"]), name, "password")
				if s := secrets[name]; s != nil && (s.Type != corev1.SecretTypeBasicAuth || string(s.Data["username"]) != role["name"]) {
					t.Errorf("Secret %s: type %s, username %q: want basic-auth for role %s", name, s.Type, s.Data["username"], role["name"])
				}
			}
		}
		for name := range secrets {
			if !used[name] {
				t.Errorf("Secret %s is rendered and used by nothing", name)
			}
		}
	})
}

// natsEnvFromSecrets are the Secrets the values give the NATS servers' container, with the
// NATS chart's $tplYaml templates resolved for this release.
func natsEnvFromSecrets(t *testing.T, r *rendered) []string {
	t.Helper()
	var out []string
	for _, op := range natsValues(t, r, "container", "patch") {
		op := op.(map[string]any)
		if op["path"] != "/envFrom" {
			continue
		}
		for _, e := range op["value"].([]any) {
			name := resolveTpl(t, pathAny(e, "secretRef", "name"))
			out = append(out, name)
		}
	}
	if len(out) == 0 {
		t.Fatal("nats.container.patch gives the NATS servers no envFrom Secret: auth.conf's passwords would be unset")
	}
	return out
}

// resolveTpl resolves the one template form the values use, {$tplYaml: '{{ .Release.Name }}-x'}.
func resolveTpl(t *testing.T, v any) string {
	t.Helper()
	if s, ok := v.(string); ok {
		return s
	}
	tpl, _ := pathAny(v, "$tplYaml").(string)
	const release = "{{ .Release.Name }}"
	if !strings.HasPrefix(tpl, release) || strings.Count(tpl, "{{") != 1 {
		t.Fatalf("value %v: the test resolves only '%s-suffix' templates", v, release)
	}
	return releaseName + strings.TrimPrefix(tpl, release)
}

func natsValues(t *testing.T, r *rendered, path ...string) []any {
	t.Helper()
	v, _ := pathAny(r.Values["nats"], path...).([]any)
	return v
}

// Generic access to decoded JSON.
func pathAny(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func pathString(v any, path ...string) string { s, _ := pathAny(v, path...).(string); return s }
func pathList(v any, path ...string) []any    { l, _ := pathAny(v, path...).([]any); return l }

// Drills are off unless a values file turns them on: the default renders DRILLS=disabled
// for every service with drill hooks and runs no load; the training values enable both.
func TestChart_DrillsOffUnlessTraining(t *testing.T) {
	for name, files := range valueSets {
		t.Run(name, func(t *testing.T) {
			r := render(t, ".", files, nil)
			want := map[string]string{"default": "disabled", "training": "enabled"}[name]
			for svc, v := range serviceValues(t, r) {
				d := r.one(t, "Deployment", releaseName+"-"+svc).Typed.(*appsv1.Deployment)
				got := envValue(d.Spec.Template.Spec.Containers[0], "DRILLS")
				if v["drills"] == true && got != want || v["drills"] != true && got != "" {
					t.Errorf("%s: DRILLS=%q with %s values", svc, got, name)
				}
			}
			loadgen := slices.ContainsFunc(r.all("Deployment"), func(o object) bool { return o.Name == releaseName+"-loadgen" })
			if loadgen != (name == "training") {
				t.Errorf("load generator rendered: %v with %s values", loadgen, name)
			}
		})
	}
	// And a production install cannot switch them on by accident: the training file is
	// the only values file that mentions them.
	b, err := os.ReadFile("values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Drills struct{ Enabled bool } `json:"drills"`
	}
	if err := yaml.Unmarshal(b, &v); err != nil || v.Drills.Enabled {
		t.Errorf("values.yaml: drills.enabled must be false (%v)", err)
	}
}

// Each service's environment, secrets filled in, is one its configuration loader accepts:
// no variable the chart sets is rejected by the program.
func TestChart_ServiceEnvironmentIsValid(t *testing.T) {
	forEachValueSet(t, func(t *testing.T, r *rendered) {
		for svc := range serviceValues(t, r) {
			c := r.one(t, "Deployment", releaseName+"-"+svc).Typed.(*appsv1.Deployment).Spec.Template.Spec.Containers[0]
			vars := map[string]string{}
			for _, e := range c.Env {
				vars[e.Name] = e.Value
				if e.ValueFrom != nil {
					vars[e.Name] = "from-a-secret"
				}
			}
			rd := env.New(func(k string) string { return vars[k] })
			cfg := service.ConfigFromEnv(rd, ":0")
			telemetry.FromEnv(telemetry.Config{}, rd)
			if err := rd.Err(); err != nil {
				t.Errorf("%s: the chart's environment is rejected: %v", svc, err)
			}
			if cfg.Broker.Replicas != intValue(r.Values["streamReplicas"]) {
				t.Errorf("%s: STREAM_REPLICAS read as %d, values say %v", svc, cfg.Broker.Replicas, r.Values["streamReplicas"])
			}
			u, err := url.Parse(cfg.DatabaseURL)
			if err != nil || u.User.Username() != pathString(r.Values, "services", svc, "dbRole") || u.Hostname() != releaseName+"-pg-rw" {
				t.Errorf("%s: DATABASE_URL %q: want its role on the CloudNativePG cluster's -rw Service (%v)", svc, cfg.DatabaseURL, err)
			}
			if _, hasPassword := u.User.Password(); hasPassword {
				t.Errorf("%s: DATABASE_URL carries a password; PGPASSWORD comes from the Secret", svc)
			}
		}
	})
}

func intValue(v any) int {
	switch n := v.(type) {
	case int:
		return n
	case int64:
		return int(n)
	case float64:
		return int(n)
	case json.Number:
		i, _ := n.Int64()
		return int(i)
	}
	return -1
}

// The rendered PrometheusRule is alerts/prometheus-rules.yaml (the rules compose's
// Prometheus loads, rendered from alerts/rules.go), group for group, rule for rule.
func TestChart_AlertRulesAreTheRepositorys(t *testing.T) {
	r := render(t, ".", nil, nil)
	got := r.one(t, "PrometheusRule", releaseName+"-alerts").Typed.(*monitoringv1.PrometheusRule).Spec
	b, err := os.ReadFile("../../alerts/prometheus-rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSONStrict(b)
	if err != nil {
		t.Fatal(err)
	}
	var want monitoringv1.PrometheusRuleSpec
	if strict, err := sigsjson.UnmarshalStrict(js, &want); err != nil || len(strict) > 0 {
		t.Fatalf("alerts/prometheus-rules.yaml as a PrometheusRule spec: %v %v", err, strict)
	}
	gj, _ := json.Marshal(got)
	wj, _ := json.Marshal(want)
	if string(gj) != string(wj) {
		t.Errorf("the PrometheusRule differs from alerts/prometheus-rules.yaml: run go generate ./deploy/kubernetes/...")
	}
	if n := len(want.Groups); n == 0 {
		t.Error("alerts/prometheus-rules.yaml has no groups")
	}
}

// Every dashboard of dashboards/ is a ConfigMap for Grafana's sidecar, byte for byte.
func TestChart_DashboardsAreTheRepositorys(t *testing.T) {
	r := render(t, ".", nil, nil)
	files, err := filepath.Glob("../../dashboards/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("dashboards/*.json: %v", err)
	}
	found := map[string]bool{}
	for _, o := range r.all("ConfigMap") {
		cm := o.Typed.(*corev1.ConfigMap)
		if cm.Labels["grafana_dashboard"] == "" {
			continue
		}
		for name, data := range cm.Data {
			want, err := os.ReadFile(filepath.Join("../../dashboards", name))
			if err != nil {
				t.Errorf("ConfigMap %s holds %s, which dashboards/ does not have", cm.Name, name)
				continue
			}
			if data != string(want) {
				t.Errorf("ConfigMap %s: %s differs from dashboards/%s: run go generate ./deploy/kubernetes/...", cm.Name, name, name)
			}
			found[name] = true
		}
	}
	for _, f := range files {
		if !found[filepath.Base(f)] {
			t.Errorf("dashboards/%s has no ConfigMap", filepath.Base(f))
		}
	}
}

// natsOptions parses a NATS configuration file the way nats-server does, with a password
// set for every user variable it reads.
func natsOptions(t *testing.T, conf string, passwords []string) *server.Options {
	t.Helper()
	for _, p := range passwords {
		t.Setenv(p, "pw-"+p)
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("nats-server reading %s: %v", conf, err)
	}
	return opts
}

var passwordVar = regexp.MustCompile(`password: \$([A-Z0-9_]+_NATS_PASSWORD)`)

// The NATS servers get exactly the users and permissions of deploy/compose/nats/auth.conf
// (nats-server parses both files to the same users), and the Secret holds a password for
// each of its users and for nothing else.
func TestChart_NATSUsersAreAuthConf(t *testing.T) {
	r := render(t, ".", nil, nil)
	compose, err := os.ReadFile(AuthConf)
	if err != nil {
		t.Fatal(err)
	}
	vars := []string{}
	for _, m := range passwordVar.FindAllStringSubmatch(string(compose), -1) {
		vars = append(vars, m[1])
	}
	cm := r.one(t, "ConfigMap", releaseName+"-nats-auth").Typed.(*corev1.ConfigMap)
	dir := t.TempDir()
	rendered := filepath.Join(dir, "auth.conf")
	if err := os.WriteFile(rendered, []byte(cm.Data["auth.conf"]), 0o600); err != nil {
		t.Fatal(err)
	}
	want := natsOptions(t, AuthConf, vars)
	got := natsOptions(t, rendered, vars)
	if len(want.Users) == 0 {
		t.Fatal("auth.conf has no users")
	}
	gj, _ := json.Marshal(got.Users)
	wj, _ := json.Marshal(want.Users)
	if string(gj) != string(wj) {
		t.Errorf("the chart's NATS users differ from deploy/compose/nats/auth.conf's:\nchart:   %s\ncompose: %s", gj, wj)
	}
	secret := r.one(t, "Secret", releaseName+"-nats-users").Typed.(*corev1.Secret)
	if keys := slices.Sorted(maps.Keys(secret.Data)); !slices.Equal(keys, slices.Sorted(slices.Values(vars))) {
		t.Errorf("Secret %s has passwords %v; auth.conf reads %v", secret.Name, keys, slices.Sorted(slices.Values(vars)))
	}
	users := map[string]bool{}
	for _, u := range want.Users {
		users[u.Username] = true
	}
	for _, p := range pods(r) {
		for _, c := range p.spec.Containers {
			if u := envValue(c, "NATS_USER"); u != "" && !users[u] {
				t.Errorf("%s: NATS_USER %s is no user of auth.conf", p.owner, u)
			}
		}
	}
}

// What the NATS servers load: the chart's config (a stand-in for the NATS chart's own
// rendering: cluster, JetStream with the values' merge) with auth.conf included by the
// values' $include path from where the NATS chart puts its config, parsed by nats-server.
func TestChart_NATSConfigLoads(t *testing.T) {
	r := render(t, ".", nil, nil)
	dir := t.TempDir()
	for _, d := range []string{"etc/nats-config", "etc/nats-auth"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cm := r.one(t, "ConfigMap", releaseName+"-nats-auth").Typed.(*corev1.ConfigMap)
	if err := os.WriteFile(filepath.Join(dir, "etc/nats-auth/auth.conf"), []byte(cm.Data["auth.conf"]), 0o600); err != nil {
		t.Fatal(err)
	}
	include := pathString(r.Values["nats"], "config", "merge", "$include")
	mounts := ""
	for _, op := range natsValues(t, r, "container", "patch") {
		if p := pathString(op, "value", "mountPath"); p != "" {
			mounts = p
		}
	}
	if got := filepath.Clean(filepath.Join("/etc/nats-config", include)); got != filepath.Join(mounts, "auth.conf") {
		t.Errorf("nats.config.merge.$include %q resolves to %s; auth.conf is mounted at %s", include, got, mounts)
	}
	jsMerge, _ := json.Marshal(pathAny(r.Values["nats"], "config", "jetstream", "merge"))
	conf := fmt.Sprintf(`server_name: nats-0
include %s
jetstream: {store_dir: %q, merge: %s}
`, include, filepath.Join(dir, "data"), jsMerge)
	// The merge object's keys belong in the jetstream block itself.
	var merge map[string]any
	_ = json.Unmarshal(jsMerge, &merge)
	block := []string{fmt.Sprintf("store_dir: %q", filepath.Join(dir, "data"))}
	for k, v := range merge {
		block = append(block, fmt.Sprintf("%s: %v", k, v))
	}
	conf = fmt.Sprintf("server_name: nats-0\ninclude %s\njetstream {\n  %s\n}\n", include, strings.Join(block, "\n  "))
	path := filepath.Join(dir, "etc/nats-config/nats.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	var vars []string
	for _, m := range passwordVar.FindAllStringSubmatch(cm.Data["auth.conf"], -1) {
		vars = append(vars, m[1])
	}
	// With the NATS chart in charts/, the configuration it renders is the one loaded.
	for _, o := range r.all("ConfigMap") {
		if o.Name == releaseName+"-nats-config" {
			t.Logf("loading the NATS chart's own nats.conf (%s)", o.Source)
			t.Setenv("SERVER_NAME", "loudly-nats-0")
			if err := os.WriteFile(path, []byte(o.Typed.(*corev1.ConfigMap).Data["nats.conf"]), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	opts := natsOptions(t, path, vars)
	if len(opts.Users) == 0 || !opts.JetStream {
		t.Errorf("nats.conf with auth.conf included: %d users, JetStream %v", len(opts.Users), opts.JetStream)
	}
	if merge["sync_interval"] == "always" && !opts.SyncAlways {
		t.Errorf("sync_interval: always did not reach the server's options")
	}
}

// roleSQL reads deploy/compose/postgres/roles.sql: each role it makes a LOGIN role, and the
// schema it makes that role own.
var (
	createRole  = regexp.MustCompile(`SELECT 'CREATE ROLE (\w+)'`)
	loginRole   = regexp.MustCompile(`ALTER ROLE (\w+) WITH LOGIN PASSWORD`)
	ownedSchema = regexp.MustCompile(`CREATE SCHEMA IF NOT EXISTS (\w+) AUTHORIZATION (\w+);`)
)

// The CloudNativePG cluster has the roles of deploy/compose/postgres/roles.sql — each a
// LOGIN role with no other attribute, owning its schema — and no other.
func TestChart_RolesAreRolesSQL(t *testing.T) {
	b, err := os.ReadFile("../compose/postgres/roles.sql")
	if err != nil {
		t.Fatal(err)
	}
	sql := string(b)
	want := map[string]string{} // role -> schema
	for _, m := range createRole.FindAllStringSubmatch(sql, -1) {
		want[m[1]] = ""
	}
	for _, m := range loginRole.FindAllStringSubmatch(sql, -1) {
		if _, ok := want[m[1]]; !ok {
			t.Fatalf("roles.sql logs in role %s it does not create", m[1])
		}
	}
	for _, m := range ownedSchema.FindAllStringSubmatch(sql, -1) {
		want[m[2]] = m[1]
	}
	if len(want) == 0 || len(loginRole.FindAllString(sql, -1)) != len(want) {
		t.Fatalf("roles.sql: roles %v, %d LOGIN: the test's reading of it is out of date", want, len(loginRole.FindAllString(sql, -1)))
	}
	forEachValueSet(t, func(t *testing.T, r *rendered) {
		got := map[string]string{}
		cluster := r.one(t, "Cluster", releaseName+"-pg")
		for _, role := range pathList(cluster.Typed, "spec", "managed", "roles") {
			role := role.(map[string]any)
			name := role["name"].(string)
			got[name] = ""
			if role["login"] != true || role["ensure"] != "present" {
				t.Errorf("role %s: login %v, ensure %v", name, role["login"], role["ensure"])
			}
			for _, attr := range []string{"superuser", "createdb", "createrole", "replication", "bypassrls"} {
				if role[attr] == true {
					t.Errorf("role %s has %s, which roles.sql does not give it", name, attr)
				}
			}
		}
		for _, s := range pathList(r.one(t, "Database", releaseName+"-loudly").Typed, "spec", "schemas") {
			s := s.(map[string]any)
			if _, ok := got[s["owner"].(string)]; !ok {
				t.Errorf("schema %s owned by %v, which is no managed role", s["name"], s["owner"])
			}
			got[s["owner"].(string)] = s["name"].(string)
		}
		if !maps.Equal(got, want) {
			t.Errorf("the cluster's roles and their schemas %v; roles.sql %v", got, want)
		}
	})
}

// The services of values.yaml are those of services/services.go, each with its port,
// role and schema there; KEDA watches consumers the service's NATS user may pull from
// (auth.conf), so the backlog it scales on is the service's own.
func TestChart_ServicesAreTheServiceList(t *testing.T) {
	r := render(t, ".", nil, nil)
	vals := serviceValues(t, r)
	if got, want := slices.Sorted(maps.Keys(vals)), slices.Sorted(slices.Values(services.Names())); !slices.Equal(got, want) {
		t.Fatalf("values.yaml services %v; services/services.go %v: `loudly new service` adds an entry to both", got, want)
	}
	auth, err := os.ReadFile(AuthConf)
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range services.All {
		v := vals[svc.Name]
		if intValue(v["port"]) != svc.Port || v["dbRole"] != svc.DBRole() || v["schema"] != svc.Schema {
			t.Errorf("services.%s: port %v, dbRole %v, schema %v; services.go: %d, %s, %s", svc.Name, v["port"], v["dbRole"], v["schema"], svc.Port, svc.DBRole(), svc.Schema)
		}
		block := permissionsBlock(string(auth), svc.Name)
		for _, c := range v["consumers"].([]any) {
			next := fmt.Sprintf(`"$JS.API.CONSUMER.MSG.NEXT.%s.%s"`, pathString(c, "stream"), pathString(c, "consumer"))
			if !strings.Contains(block, next) {
				t.Errorf("services.%s scales on consumer %s/%s, which its NATS user does not pull from (no %s in auth.conf)", svc.Name, pathString(c, "stream"), pathString(c, "consumer"), next)
			}
		}
	}
}

func permissionsBlock(conf, user string) string {
	start := strings.Index(conf, strings.ToUpper(user)+"_PERMISSIONS = {")
	if start < 0 {
		return ""
	}
	end := strings.Index(conf[start:], "\n}\n")
	if end < 0 {
		return conf[start:]
	}
	return conf[start : start+end]
}

// KEDA scales every service between minReplicas (at least 2) and maxReplicas on its
// consumers' backlog, read from the monitoring port of the NATS headless Service's pods;
// the Deployment leaves the count to it; a PodDisruptionBudget keeps all but one replica
// up through a drain.
func TestChart_ScalesOnTheBacklog(t *testing.T) {
	forEachValueSet(t, func(t *testing.T, r *rendered) {
		for name, v := range serviceValues(t, r) {
			full := releaseName + "-" + name
			so := r.one(t, "ScaledObject", full).Typed.(map[string]any)
			as := v["autoscaling"].(map[string]any)
			if got := intValue(pathAny(so, "spec", "minReplicaCount")); got < 2 || got != intValue(as["minReplicas"]) {
				t.Errorf("%s: minReplicaCount %d", full, got)
			}
			if intValue(pathAny(so, "spec", "maxReplicaCount")) != intValue(as["maxReplicas"]) {
				t.Errorf("%s: maxReplicaCount %v, values %v", full, pathAny(so, "spec", "maxReplicaCount"), as["maxReplicas"])
			}
			if pathString(so, "spec", "scaleTargetRef", "name") != full {
				t.Errorf("%s scales %s", full, pathString(so, "spec", "scaleTargetRef", "name"))
			}
			triggers := pathList(so, "spec", "triggers")
			if len(triggers) != len(v["consumers"].([]any)) {
				t.Errorf("%s: %d triggers for %d consumers", full, len(triggers), len(v["consumers"].([]any)))
			}
			for i, tr := range triggers {
				c := v["consumers"].([]any)[i]
				if pathString(tr, "type") != "nats-jetstream" || pathString(tr, "metadata", "stream") != pathString(c, "stream") || pathString(tr, "metadata", "consumer") != pathString(c, "consumer") {
					t.Errorf("%s trigger %d: %v, consumer %v", full, i, tr, c)
				}
				wantEndpoint := fmt.Sprintf("%s-nats-headless.%s.svc.cluster.local:8222", releaseName, namespace)
				if got := pathString(tr, "metadata", "natsServerMonitoringEndpoint"); got != wantEndpoint {
					t.Errorf("%s: monitoring endpoint %s, want %s (the NATS chart's headless Service, monitor port)", full, got, wantEndpoint)
				}
			}
			// With the NATS chart in charts/: the headless Service KEDA asks exposes the
			// monitoring port.
			for _, o := range r.all("Service") {
				if o.Name == releaseName+"-nats-headless" && !slices.ContainsFunc(o.Typed.(*corev1.Service).Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == 8222 }) {
					t.Errorf("%s has no port 8222: KEDA cannot read the backlog", o.Name)
				}
			}
			d := r.one(t, "Deployment", full).Typed.(*appsv1.Deployment)
			if d.Spec.Replicas != nil {
				t.Errorf("%s sets replicas %d: an upgrade would reset KEDA's count", full, *d.Spec.Replicas)
			}
			pdb := r.one(t, "PodDisruptionBudget", full).Typed.(*policyv1.PodDisruptionBudget)
			if !maps.Equal(pdb.Spec.Selector.MatchLabels, d.Spec.Selector.MatchLabels) || pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
				t.Errorf("%s: PodDisruptionBudget %+v", full, pdb.Spec)
			}
		}
	})
}

// PostgreSQL is a primary and a synchronous standby whose max_connections holds every
// service's pool at its largest scale-out, and the image is compose's release.
func TestChart_PostgresHoldsTheScaleOut(t *testing.T) {
	forEachValueSet(t, func(t *testing.T, r *rendered) {
		c := r.one(t, "Cluster", releaseName+"-pg").Typed.(map[string]any)
		if intValue(pathAny(c, "spec", "instances")) < 2 || pathString(c, "spec", "postgresql", "synchronous", "dataDurability") != "required" ||
			intValue(pathAny(c, "spec", "postgresql", "synchronous", "number")) < 1 {
			t.Errorf("Cluster spec %v: want a primary and a synchronous standby", pathAny(c, "spec"))
		}
		want := intValue(pathAny(r.Values, "postgres", "reservedConnections"))
		for _, v := range serviceValues(t, r) {
			want += intValue(v["dbMaxConns"]) * intValue(pathAny(v, "autoscaling", "maxReplicas"))
		}
		if got := pathString(c, "spec", "postgresql", "parameters", "max_connections"); got != strconv.Itoa(want) {
			t.Errorf("max_connections %s, want %d", got, want)
		}
	})
}

// composeEnv is deploy/compose/.env.
func composeEnv(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("../compose/.env")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") {
			out[k] = v
		}
	}
	return out
}

// The third-party releases are compose's (deploy/compose/.env): one place pins them.
func TestChart_ReleasesAreCompose(t *testing.T) {
	pins := composeEnv(t)
	r := render(t, ".", nil, nil)
	for _, c := range []struct{ what, got, want string }{
		{"nats.container.image.tag", pathString(r.Values["nats"], "container", "image", "tag"), pins["NATS_VERSION"]},
		{"postgres.imageName", pathString(r.Values, "postgres", "imageName"), "ghcr.io/cloudnative-pg/postgresql:" + pins["POSTGRES_VERSION"]},
		{"telemetry.collector.image", pathString(r.Values, "telemetry", "collector", "image"), "otel/opentelemetry-collector-contrib:" + pins["OTELCOL_VERSION"]},
	} {
		if c.got != c.want || c.want == "" {
			t.Errorf("%s is %q; deploy/compose/.env pins %q", c.what, c.got, c.want)
		}
	}
}

// The chart refuses the latest tag and a memory limit it cannot set GOMEMLIMIT from.
func TestChart_RefusesBadValues(t *testing.T) {
	for _, c := range []struct {
		name   string
		values map[string]any
	}{
		{"latest tag", map[string]any{"image": map[string]any{"tag": "latest"}}},
		{"one replica", map[string]any{"services": map[string]any{"order": map[string]any{"autoscaling": map[string]any{"minReplicas": 1}}}}},
		{"memory limit in bytes", map[string]any{"services": map[string]any{"order": map[string]any{"resources": map[string]any{"limits": map[string]any{"memory": "500000000"}}}}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			chrt := mustLoad(t)
			if err := renderErr(chrt, c.values); err == nil {
				t.Errorf("rendered with %v", c.values)
			} else {
				t.Logf("refused: %v", err)
			}
		})
	}
}

// The drill path of docs/kubernetes.md: the CLI Job rendered with a drill's arguments runs
// them as the operator's NATS user, the only one that may write the fault bucket, and the
// CLI's NetworkPolicy (by its pod labels) applies to it.
func TestChart_CLIJobRunsADrillAsTheOperator(t *testing.T) {
	args := []any{"drill", "start", "silent-skip", "-for", "15m"}
	r := render(t, ".", valueSets["training"], map[string]any{"cli": map[string]any{"args": args}})
	job := r.one(t, "Job", releaseName+"-cli")
	if !job.Hook {
		t.Errorf("%s is not a Helm hook: an upgrade could not run it again", job)
	}
	c := job.Typed.(*batchv1.Job).Spec.Template.Spec.Containers[0]
	if got := strings.Join(append(c.Command, c.Args...), " "); got != "/app/loudly drill start silent-skip -for 15m" {
		t.Errorf("the CLI Job runs %q", got)
	}
	if u := envValue(c, "NATS_USER"); u != "operator" {
		t.Errorf("the CLI Job connects as %q, not the operator", u)
	}
	np := r.one(t, "NetworkPolicy", releaseName+"-cli").Typed.(*networkingv1.NetworkPolicy)
	if !selects(t, &np.Spec.PodSelector, job.Typed.(*batchv1.Job).Spec.Template.Labels) {
		t.Errorf("the CLI's NetworkPolicy does not select the Job's pods")
	}
}

// Without the optional operators (docs/kubernetes.md, "Install on a cluster"): no
// OpenTelemetryCollector, PrometheusRule or PodMonitor; the programs send OTLP to the
// collector given, and the egress the values give them lets them reach it.
func TestChart_WithoutTheOptionalOperators(t *testing.T) {
	const otlp = "http://otel-collector.observability.svc:4318"
	r := render(t, ".", nil, map[string]any{
		"telemetry":  map[string]any{"collector": map[string]any{"enabled": false}, "otlpEndpoint": otlp},
		"prometheus": map[string]any{"rules": false, "podMonitors": false},
		"networkPolicy": map[string]any{"otlpEgress": []any{map[string]any{
			"to":    []any{map[string]any{"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": "observability"}}}},
			"ports": []any{map[string]any{"port": 4318, "protocol": "TCP"}},
		}}},
	})
	for _, kind := range []string{"OpenTelemetryCollector", "PrometheusRule", "PodMonitor"} {
		if n := len(r.all(kind)); n > 0 {
			t.Errorf("%d %s rendered without its operator", n, kind)
		}
	}
	for svc := range serviceValues(t, r) {
		d := r.one(t, "Deployment", releaseName+"-"+svc).Typed.(*appsv1.Deployment)
		if got := envValue(d.Spec.Template.Spec.Containers[0], "OTEL_EXPORTER_OTLP_ENDPOINT"); got != otlp {
			t.Errorf("%s: OTEL_EXPORTER_OTLP_ENDPOINT %q", svc, got)
		}
		from := endpoint{name: svc, namespace: namespace, labels: d.Spec.Template.Labels}
		to := endpoint{name: "collector", namespace: "observability", labels: map[string]string{"app": "otel"}, ports: map[int32]string{4318: "otlp-http"}}
		if !allowed(t, r, from, to, 4318) {
			t.Errorf("%s cannot reach the collector given", svc)
		}
	}
	if err := renderErr(mustLoad(t), map[string]any{"telemetry": map[string]any{"collector": map[string]any{"enabled": false}}}); err == nil {
		t.Error("rendered without a collector and without telemetry.otlpEndpoint")
	}
}
