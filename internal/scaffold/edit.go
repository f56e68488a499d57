package scaffold

import (
	"fmt"
	"go/format"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"loudly/services"
)

// changeGo inserts text at offset of a Go file and formats the result.
func (sc *Scaffold) changeGo(rel string, src []byte, offset int, text, what string) error {
	out := slices.Concat(src[:offset], []byte(text), src[offset:])
	formatted, err := format.Source(out)
	if err != nil {
		return fmt.Errorf("%s: the edit would not compile: %w", rel, err)
	}
	sc.changed = append(sc.changed, fileChange{path: rel, data: formatted, what: what})
	return nil
}

// blockEnd is the index of the last line of the YAML block that starts at line start (0
// based): the lines after it that are indented deeper, up to the next line at its
// indentation or less, without the comments and blank lines before that line.
func blockEnd(lines []string, start int) int {
	indent := len(lines[start]) - len(strings.TrimLeft(lines[start], " "))
	end := start
	for i := start + 1; i < len(lines); i++ {
		t := strings.TrimSpace(lines[i])
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if len(lines[i])-len(strings.TrimLeft(lines[i], " ")) <= indent {
			break
		}
		end = i
	}
	return end
}

// insertAfterBlock appends text to the last line of the block starting at line start: text
// starts with the newline that ends that line.
func insertAfterBlock(src []byte, start int, text string) []byte {
	lines := strings.SplitAfter(string(src), "\n")
	for i := range lines {
		lines[i] = strings.TrimSuffix(lines[i], "\n")
	}
	end := blockEnd(lines, start)
	var b strings.Builder
	for i, l := range lines {
		b.WriteString(l)
		if i == end {
			b.WriteString(text)
		}
		if i < len(lines)-1 {
			b.WriteString("\n")
		}
	}
	return []byte(b.String())
}

// editCompose adds the service to the compose demo after the last listed service, in
// their style: the shared Loudly image, its program, the shared environment with its own
// PostgreSQL role and NATS user, drills on (the demo is a training ground), a healthcheck
// its distroless image can run, and start-up after its dependencies. It returns the edited file, which editCredentials completes.
func (sc *Scaffold) editCompose(src []byte, existing []services.Service, svc services.Service) ([]byte, error) {
	m, err := yamlChild(src, "services")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ComposeFile, err)
	}
	start := -1
	for i := 0; i+1 < len(m.Content); i += 2 {
		if slices.ContainsFunc(existing, func(s services.Service) bool { return s.Name == m.Content[i].Value }) {
			start = m.Content[i].Line - 1
		}
	}
	if start < 0 {
		return nil, fmt.Errorf("%s: none of the listed services is a compose service", ComposeFile)
	}
	n := svc.Name
	block := fmt.Sprintf(`

  %[1]s:
    image: *loudly-image
    build: *loudly-build
    pull_policy: build
    restart: unless-stopped
    command: ["/app/%[1]s"]
    environment:
      <<: *service-env
      OTEL_SERVICE_NAME: %[1]s
      HTTP_ADDR: ":%[2]d"
      DRILLS: enabled
      DATABASE_URL: postgres://%[3]s:${%[4]s}@postgres:5432/loudly?sslmode=disable
      NATS_USER: %[5]s
      NATS_PASSWORD: ${%[6]s}
    # Longer than SHUTDOWN_TIMEOUT (20s): let in-flight messages finish before SIGKILL.
    stop_grace_period: 25s
    healthcheck:
      test: ["CMD", "/app/%[1]s", "healthcheck"]
      interval: 5s
      timeout: 4s
      retries: 12
      start_period: 20s
    depends_on:
      postgres:
        condition: service_healthy
      nats:
        condition: service_healthy
      otel-collector:
        condition: service_healthy
      loki:
        condition: service_healthy`, n, svc.Port, svc.DBRole(), svc.DBPasswordVar(), svc.NATSUser(), svc.NATSPasswordVar())
	out := insertAfterBlock(src, start, block)
	keys, err := yamlKeys(out, "services")
	if err != nil || !slices.Contains(keys, n) {
		return nil, fmt.Errorf("%s: adding service %s failed (%v)", ComposeFile, n, err)
	}
	return out, nil
}

// editPrometheus adds the scrape job of the service after the last listed service's.
func (sc *Scaffold) editPrometheus(existing []services.Service, svc services.Service) error {
	src, err := sc.read(PrometheusFile)
	if err != nil {
		return err
	}
	jobs, err := yamlChild(src, "scrape_configs")
	if err != nil || jobs.Kind != yaml.SequenceNode {
		return fmt.Errorf("%s: no scrape_configs list (%v)", PrometheusFile, err)
	}
	start := -1
	for _, job := range jobs.Content {
		for i := 0; i+1 < len(job.Content); i += 2 {
			name := job.Content[i+1].Value
			if job.Content[i].Value == "job_name" && slices.ContainsFunc(existing, func(s services.Service) bool { return s.Name == name }) {
				start = job.Line - 1
			}
			if job.Content[i].Value == "job_name" && name == svc.Name {
				return refuse("%s already has a scrape job %s: choose another NAME", PrometheusFile, svc.Name)
			}
		}
	}
	if start < 0 {
		return fmt.Errorf("%s: no scrape job of a listed service", PrometheusFile)
	}
	block := fmt.Sprintf("\n  - job_name: %s\n    static_configs:\n      - targets: [\"%s:%d\"]", svc.Name, svc.Name, svc.Port)
	out := insertAfterBlock(src, start, block)
	if _, err := yamlChild(out, "scrape_configs"); err != nil {
		return fmt.Errorf("%s: adding job %s failed: %v", PrometheusFile, svc.Name, err)
	}
	sc.changed = append(sc.changed, fileChange{path: PrometheusFile, data: out,
		what: fmt.Sprintf("scrape job %s (%s:%d), so its dashboard row and alert have data", svc.Name, svc.Name, svc.Port)})
	return nil
}

// editRunbookIndex adds the service's alert to the table of docs/runbooks/README.md.
func (sc *Scaffold) editRunbookIndex() error {
	src, err := sc.read(RunbookIndex)
	if err != nil {
		return err
	}
	d := sc.data
	row := fmt.Sprintf("| [%[1]s](%[1]s.md) | critical | no instance of %[2]s answers its scrape (or it is not scraped), for 2m | Consumers → *%[3]s* |",
		d.AlertName, d.Name, d.Panel)
	lines := strings.Split(string(src), "\n")
	last := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "| [Loudly") {
			last = i
		}
	}
	if last < 0 {
		return fmt.Errorf("%s: no table of alerts to add %s to", RunbookIndex, d.AlertName)
	}
	lines = slices.Insert(lines, last+1, row)
	sc.changed = append(sc.changed, fileChange{path: RunbookIndex, data: []byte(strings.Join(lines, "\n")), what: d.AlertName + " in the runbook index"})
	return nil
}

// editChart adds the service to the Kubernetes chart's values (deploy/kubernetes), above
// the marker line after the listed services: its port, PostgreSQL role and schema, its
// drills (DRILLS follows the chart's drills.enabled), its durable consumer, which KEDA
// scales it on, and the defaults the others have. Its NATS user and permissions reach the
// chart from auth.conf through go generate ./deploy/kubernetes/....
func (sc *Scaffold) editChart(svc services.Service) error {
	src, err := sc.read(ChartValuesFile)
	if err != nil {
		return err
	}
	d := sc.data
	entry := fmt.Sprintf(`%[1]s:
    port: %[2]d
    dbRole: %[3]s
    schema: %[4]s
    drills: true
    api: false
    consumers:
      - stream: %[5]s
        consumer: %[1]s
    autoscaling:
      minReplicas: 2
      maxReplicas: 6
      lagThreshold: 2000
    dbMaxConns: 20
    resources:
      requests: {cpu: 250m, memory: 128Mi}
      limits: {cpu: "1", memory: 256Mi}
    env: {}
  `, svc.Name, svc.Port, svc.DBRole(), svc.Schema, d.Stream)
	out, err := insertBefore(src, chartMarker, entry, ChartValuesFile)
	if err != nil {
		return err
	}
	m, err := yamlChild(out, "services")
	if err != nil || !slices.ContainsFunc(m.Content, func(n *yaml.Node) bool { return n.Value == svc.Name }) {
		return fmt.Errorf("%s: adding service %s failed (%v)", ChartValuesFile, svc.Name, err)
	}
	sc.changed = append(sc.changed, fileChange{path: ChartValuesFile, data: out,
		what: fmt.Sprintf("the Kubernetes chart's service %s: port, role and schema, drills, KEDA on consumer %s (go generate ./deploy/kubernetes/... copies its NATS user)", svc.Name, svc.Name)})
	return nil
}
