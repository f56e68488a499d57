package kubernetes

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// endpoint is a pod the NetworkPolicies speak about: one the chart renders, or one that an
// operator, a dependency chart or the cluster runs, with the ports it listens on.
type endpoint struct {
	name      string
	namespace string
	labels    map[string]string
	ports     map[int32]string // port -> name
}

// The ports of pods this chart does not render, as their projects document them.
var (
	// The NATS chart 2.14.2's defaults (values.yaml): config.nats.port, config.cluster.port,
	// config.monitor.port, promExporter.port.
	natsChartPorts = map[int32]string{4222: "nats", 6222: "cluster", 8222: "monitor", 7777: "prom-metrics"}
	// A CloudNativePG instance: PostgreSQL, the instance manager's status endpoint (the
	// operator asks it), the metrics exporter.
	cnpgPorts = map[int32]string{5432: "postgresql", 8000: "status", 9187: "metrics"}
	// The cluster DNS (kube-dns or CoreDNS behind the kube-dns labels).
	dnsPorts = map[int32]string{53: "dns"}
)

// endpoints are every pod of the release (rendered or run by an operator for an object
// the release renders), the cluster DNS, and one pod standing for each other namespace the
// values name (Prometheus, KEDA, the CloudNativePG operator, the telemetry backends).
func endpoints(t *testing.T, r *rendered) []endpoint {
	t.Helper()
	var out []endpoint
	natsRendered := false
	for _, p := range pods(r) {
		e := endpoint{name: p.owner.Name, namespace: namespace, labels: p.labels, ports: map[int32]string{}}
		for _, c := range p.spec.Containers {
			for _, port := range c.Ports {
				e.ports[port.ContainerPort] = port.Name
			}
		}
		if labels.SelectorFromSet(natsPodLabels()).Matches(labels.Set(e.labels)) {
			natsRendered = true
			e.name = "nats (NATS chart)"
		}
		out = append(out, e)
	}
	if !natsRendered && pathAny(r.Values, "nats", "enabled") == true {
		out = append(out, endpoint{"nats (NATS chart)", namespace, natsPodLabels(), natsChartPorts})
	}
	for _, o := range r.all("Cluster") {
		out = append(out, endpoint{"postgres (CloudNativePG)", namespace, map[string]string{"cnpg.io/cluster": o.Name}, cnpgPorts})
	}
	for _, o := range r.all("OpenTelemetryCollector") {
		out = append(out, endpoint{"collector (OpenTelemetry operator)", namespace, collectorPodLabels(o.Name), collectorPorts(t, o)})
	}
	np := r.Values["networkPolicy"]
	out = append(out, endpoint{"dns", pathString(np, "dns", "namespace"), toStrings(pathAny(np, "dns", "podLabels")), dnsPorts})
	for _, ns := range []string{pathString(np, "prometheusNamespace"), pathString(np, "kedaNamespace"), pathString(r.Values, "postgres", "operatorNamespace")} {
		out = append(out, endpoint{ns, ns, map[string]string{"app": ns}, nil})
	}
	if pathAny(r.Values, "telemetry", "collector", "enabled") == true {
		backends := pathString(r.Values, "telemetry", "collector", "backendNamespace")
		out = append(out, endpoint{"telemetry backends", backends, map[string]string{"app": "backend"}, exporterPorts(t, r)})
	}
	return out
}

func natsPodLabels() map[string]string {
	return map[string]string{"app.kubernetes.io/name": "nats", "app.kubernetes.io/instance": releaseName, "app.kubernetes.io/component": "nats"}
}

// The labels the OpenTelemetry operator puts on a collector's pods (its
// manifestutils.SelectorLabels at v0.158.0).
func collectorPodLabels(name string) map[string]string {
	return map[string]string{
		"app.kubernetes.io/managed-by": "opentelemetry-operator",
		"app.kubernetes.io/instance":   namespace + "." + name,
		"app.kubernetes.io/part-of":    "opentelemetry",
		"app.kubernetes.io/component":  "opentelemetry-collector",
	}
}

// collectorPorts are the ports the collector's configuration listens on: its receivers'
// endpoints, the health check, the Prometheus exporter and its own telemetry.
func collectorPorts(t *testing.T, o object) map[int32]string {
	t.Helper()
	ports := map[int32]string{}
	cfg := pathAny(o.Typed, "spec", "config")
	add := func(name, hostport string) {
		if hostport == "" {
			return
		}
		_, p, err := net.SplitHostPort(hostport)
		if err != nil {
			t.Fatalf("%s: endpoint %s: %v", o, hostport, err)
		}
		n, _ := strconv.Atoi(p)
		ports[int32(n)] = name
	}
	add("otlp-grpc", pathString(cfg, "receivers", "otlp", "protocols", "grpc", "endpoint"))
	add("otlp-http", pathString(cfg, "receivers", "otlp", "protocols", "http", "endpoint"))
	add("health", pathString(cfg, "extensions", "health_check", "endpoint"))
	add("metrics-otlp", pathString(cfg, "exporters", "prometheus", "endpoint"))
	for _, rd := range pathList(cfg, "service", "telemetry", "metrics", "readers") {
		if p := intValue(pathAny(rd, "pull", "exporter", "prometheus", "port")); p > 0 {
			ports[int32(p)] = "metrics"
		}
	}
	return ports
}

// exporterPorts are the ports the collector sends to: its exporters' endpoints.
func exporterPorts(t *testing.T, r *rendered) map[int32]string {
	t.Helper()
	ports := map[int32]string{}
	for _, o := range r.all("OpenTelemetryCollector") {
		for name, exp := range pathAny(o.Typed, "spec", "config", "exporters").(map[string]any) {
			ep := pathString(exp, "endpoint")
			if ep == "" || name == "prometheus" {
				continue
			}
			host := ep
			if u, err := url.Parse(ep); err == nil && u.Host != "" {
				host = u.Host
			}
			_, p, err := net.SplitHostPort(host)
			if err != nil {
				t.Fatalf("exporter %s endpoint %s: %v", name, ep, err)
			}
			n, _ := strconv.Atoi(p)
			ports[int32(n)] = name
		}
	}
	return ports
}

func toStrings(v any) map[string]string {
	out := map[string]string{}
	if m, ok := v.(map[string]any); ok {
		for k, s := range m {
			out[k] = fmt.Sprint(s)
		}
	}
	return out
}

func selects(t *testing.T, sel *metav1.LabelSelector, l map[string]string) bool {
	t.Helper()
	if sel == nil {
		return true
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("selector %v: %v", sel, err)
	}
	return s.Matches(labels.Set(l))
}

// selectedIn are the endpoints of the release's namespace that sel selects.
func selectedIn(t *testing.T, eps []endpoint, sel *metav1.LabelSelector) []endpoint {
	t.Helper()
	var out []endpoint
	for _, e := range eps {
		if e.namespace == namespace && selects(t, sel, e.labels) {
			out = append(out, e)
		}
	}
	return out
}

// peerMatches says whether a policy peer (in the policy's namespace) selects e.
func peerMatches(t *testing.T, peer networkingv1.NetworkPolicyPeer, e endpoint) bool {
	if peer.IPBlock != nil {
		return false
	}
	if peer.NamespaceSelector == nil {
		return e.namespace == namespace && selects(t, peer.PodSelector, e.labels)
	}
	return selects(t, peer.NamespaceSelector, map[string]string{"kubernetes.io/metadata.name": e.namespace}) &&
		selects(t, peer.PodSelector, e.labels)
}

func portMatches(ports []networkingv1.NetworkPolicyPort, e endpoint, port int32) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		if p.Port == nil {
			return true
		}
		if p.Port.IntValue() == int(port) || p.Port.StrVal != "" && p.Port.StrVal == e.ports[port] {
			return true
		}
	}
	return false
}

func policies(r *rendered) []*networkingv1.NetworkPolicy {
	var out []*networkingv1.NetworkPolicy
	for _, o := range r.all("NetworkPolicy") {
		out = append(out, o.Typed.(*networkingv1.NetworkPolicy))
	}
	return out
}

func hasType(p *networkingv1.NetworkPolicy, ty networkingv1.PolicyType) bool {
	for _, x := range p.Spec.PolicyTypes {
		if x == ty {
			return true
		}
	}
	return false
}

// allowed evaluates the policies as a cluster does: a connection from one pod to another's
// port is allowed when the source is not isolated for egress or some policy selecting it
// allows it out, and the destination is not isolated for ingress or some policy
// selecting it lets it in.
func allowed(t *testing.T, r *rendered, from, to endpoint, port int32) bool {
	out, in := true, true
	for _, p := range policies(r) {
		if from.namespace == namespace && hasType(p, networkingv1.PolicyTypeEgress) && selects(t, &p.Spec.PodSelector, from.labels) {
			out = false
		}
		if to.namespace == namespace && hasType(p, networkingv1.PolicyTypeIngress) && selects(t, &p.Spec.PodSelector, to.labels) {
			in = false
		}
	}
	for _, p := range policies(r) {
		if from.namespace == namespace && hasType(p, networkingv1.PolicyTypeEgress) && selects(t, &p.Spec.PodSelector, from.labels) {
			for _, rule := range p.Spec.Egress {
				for _, peer := range rule.To {
					if peerMatches(t, peer, to) && portMatches(rule.Ports, to, port) {
						out = true
					}
				}
			}
		}
		if to.namespace == namespace && hasType(p, networkingv1.PolicyTypeIngress) && selects(t, &p.Spec.PodSelector, to.labels) {
			for _, rule := range p.Spec.Ingress {
				for _, peer := range rule.From {
					if peerMatches(t, peer, from) && portMatches(rule.Ports, to, port) {
						in = true
					}
				}
			}
		}
	}
	return out && in
}

// Every port a NetworkPolicy opens is one the pods it opens it to listen on, every
// selector selects some pod, and every policy applies to some pod.
func TestChart_NetworkPoliciesOpenOnlyListeningPorts(t *testing.T) {
	forEachValueSet(t, func(t *testing.T, r *rendered) {
		eps := endpoints(t, r)
		for _, p := range policies(r) {
			selected := selectedIn(t, eps, &p.Spec.PodSelector)
			if len(selected) == 0 {
				t.Errorf("NetworkPolicy %s selects no pod", p.Name)
			}
			for i, rule := range p.Spec.Ingress {
				if len(rule.Ports) == 0 {
					t.Errorf("NetworkPolicy %s ingress rule %d opens every port", p.Name, i)
				}
				for _, port := range rule.Ports {
					for _, e := range selected {
						if !listens(e, port) {
							t.Errorf("NetworkPolicy %s ingress rule %d opens port %s on %s, which listens on %v", p.Name, i, port.Port, e.name, e.ports)
						}
					}
				}
				for _, peer := range rule.From {
					if !anyMatch(t, peer, eps) {
						t.Errorf("NetworkPolicy %s ingress rule %d: peer %+v matches no pod", p.Name, i, peer)
					}
				}
			}
			for i, rule := range p.Spec.Egress {
				if len(rule.Ports) == 0 || len(rule.To) == 0 {
					t.Errorf("NetworkPolicy %s egress rule %d opens every port or every destination", p.Name, i)
				}
				for _, peer := range rule.To {
					var dests []endpoint
					for _, e := range eps {
						if peerMatches(t, peer, e) {
							dests = append(dests, e)
						}
					}
					if len(dests) == 0 {
						t.Errorf("NetworkPolicy %s egress rule %d: peer %+v matches no pod", p.Name, i, peer)
					}
					for _, port := range rule.Ports {
						for _, d := range dests {
							if !listens(d, port) {
								t.Errorf("NetworkPolicy %s egress rule %d opens port %s to %s, which listens on %v", p.Name, i, port.Port, d.name, d.ports)
							}
						}
					}
				}
			}
		}
	})
}

func listens(e endpoint, port networkingv1.NetworkPolicyPort) bool {
	if port.Port == nil {
		return false
	}
	for n, name := range e.ports {
		if port.Port.IntValue() == int(n) || port.Port.StrVal != "" && port.Port.StrVal == name {
			if port.Protocol == nil || *port.Protocol == corev1.ProtocolTCP || n == 53 {
				return true
			}
		}
	}
	return false
}

func anyMatch(t *testing.T, peer networkingv1.NetworkPolicyPeer, eps []endpoint) bool {
	for _, e := range eps {
		if peerMatches(t, peer, e) {
			return true
		}
	}
	return false
}

// The policies allow the pipeline's flows and refuse the rest: each row a connection
// someone would name.
func TestChart_NetworkPoliciesAllowThePipelineOnly(t *testing.T) {
	r := render(t, ".", valueSets["training"], nil)
	eps := endpoints(t, r)
	find := func(name string) endpoint {
		for _, e := range eps {
			if e.name == name {
				return e
			}
		}
		t.Fatalf("no pod %s among %d", name, len(eps))
		return endpoint{}
	}
	order, inventory, loadgen, cli := find(releaseName+"-order"), find(releaseName+"-inventory"), find(releaseName+"-loadgen"), find(releaseName+"-cli")
	nats, pg, collector, dns := find("nats (NATS chart)"), find("postgres (CloudNativePG)"), find("collector (OpenTelemetry operator)"), find("dns")
	prom, keda, cnpg := find("monitoring"), find("keda"), find("cnpg-system")
	for _, c := range []struct {
		from, to endpoint
		port     int32
		want     bool
	}{
		{order, nats, 4222, true}, {inventory, nats, 4222, true}, {loadgen, nats, 4222, true}, {cli, nats, 4222, true},
		{order, pg, 5432, true}, {inventory, pg, 5432, true},
		{order, collector, 4318, true}, {inventory, collector, 4318, true}, {loadgen, collector, 4318, true},
		{loadgen, order, 8080, true}, {order, dns, 53, true}, {cli, dns, 53, true},
		{prom, order, 8080, true}, {prom, inventory, 8081, true}, {prom, collector, 8888, true}, {prom, nats, 7777, true}, {prom, pg, 9187, true},
		{keda, nats, 8222, true}, {cnpg, pg, 8000, true}, {pg, pg, 5432, true}, {nats, nats, 6222, true},
		{collector, find("telemetry backends"), 4317, true},
		// And what the pipeline never does.
		{inventory, order, 8080, false}, {order, inventory, 8081, false}, {loadgen, pg, 5432, false}, {cli, pg, 5432, false},
		{loadgen, inventory, 8081, false}, {cli, order, 8080, false}, {order, nats, 8222, false}, {prom, nats, 4222, false},
		{keda, pg, 5432, false}, {order, collector, 4317, false}, {collector, pg, 5432, false}, {order, keda, 8080, false},
	} {
		if got := allowed(t, r, c.from, c.to, c.port); got != c.want {
			t.Errorf("%s -> %s:%d allowed %v, want %v", c.from.name, c.to.name, c.port, got, c.want)
		}
	}
}

// Every PodMonitor selects pods of the release and scrapes a port they name; a service's
// job label is its name, as the alert rules' job="<service>" expects.
func TestChart_PodMonitorsScrapeNamedPorts(t *testing.T) {
	forEachValueSet(t, func(t *testing.T, r *rendered) {
		eps := endpoints(t, r)
		for _, o := range r.all("PodMonitor") {
			pm := o.Typed.(*monitoringv1.PodMonitor)
			selected := selectedIn(t, eps, &pm.Spec.Selector)
			if len(selected) == 0 {
				t.Errorf("PodMonitor %s selects no pod", pm.Name)
			}
			for _, ep := range pm.Spec.PodMetricsEndpoints {
				for _, e := range selected {
					port, named := "", false
					if ep.Port != nil {
						port = *ep.Port
					}
					for _, name := range e.ports {
						named = named || port != "" && port == name
					}
					if !named {
						t.Errorf("PodMonitor %s scrapes port %q, which %s does not name (%v)", pm.Name, port, e.name, e.ports)
					}
					if pm.Spec.JobLabel != "" && e.labels[pm.Spec.JobLabel] == "" {
						t.Errorf("PodMonitor %s takes the job from label %s, which %s lacks", pm.Name, pm.Spec.JobLabel, e.name)
					}
				}
			}
		}
		for name := range serviceValues(t, r) {
			pm := r.one(t, "PodMonitor", releaseName+"-"+name).Typed.(*monitoringv1.PodMonitor)
			if pm.Spec.JobLabel != "app.kubernetes.io/name" {
				t.Errorf("PodMonitor %s: jobLabel %q; the rules select job=%q", pm.Name, pm.Spec.JobLabel, name)
			}
		}
	})
}
