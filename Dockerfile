# syntax=docker/dockerfile:1
#
# Loudly's container image: every service under services/ (order, inventory, and any that
# `loudly new service` scaffolds), the load generator and the operator CLI, statically
# linked, in one distroless image that runs as a non-root user. The compose file picks the
# program with `command:` (there is no ENTRYPOINT, so `docker compose exec order
# /app/loudly dlq list` runs the CLI next to a service).
#
#   docker build --build-arg VERSION=$(git describe --always --dirty) -t loudly:dev .
#
# Two more targets add a healthcheck probe (deploy/compose/httpcheck) to third-party
# images of the compose demo that have no health command of their own. Their versions are pinned in deploy/compose/.env, which passes them here;
# the defaults below are the same (deploy/compose's test checks they agree).

ARG GO_VERSION=1.26.8
ARG OTELCOL_VERSION=0.159.0
ARG NATS_EXPORTER_VERSION=0.17.3

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOTOOLCHAIN=local
# Modules first: this layer is rebuilt only when go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download && go mod verify
COPY . .
ARG VERSION=dev
# ./services/... is every program under services/ (each becomes /out/app/<name>; the
# packages that are not programs are compiled and left out), so a new service needs no
# change here.
RUN --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/app/ \
      ./services/... ./loadtest ./cmd/loudly && \
    go build -trimpath -ldflags "-s -w" -o /out/ ./deploy/compose/httpcheck

# The OpenTelemetry Collector contrib image is FROM scratch (no shell, no wget): httpcheck
# asks its health_check extension.
FROM otel/opentelemetry-collector-contrib:${OTELCOL_VERSION} AS otel-collector
COPY --from=build /out/httpcheck /httpcheck

# prometheus-nats-exporter's image is Alpine with an entrypoint script (/entrypoint.sh
# execs the exporter with compose's command as its arguments). Its busybox wget could
# probe it; httpcheck asks its /metrics so both extended images use the same probe.
FROM natsio/prometheus-nats-exporter:${NATS_EXPORTER_VERSION} AS nats-exporter
COPY --from=build /out/httpcheck /httpcheck

# The default target (last): Loudly itself.
FROM gcr.io/distroless/static-debian12:nonroot AS app
ARG VERSION=dev
LABEL org.opencontainers.image.title="loudly" \
      org.opencontainers.image.description="Loudly: its services, load generator and operator CLI" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/app/ /app/
ENV PATH=/app:/usr/local/bin:/usr/bin:/bin
USER 65532:65532
EXPOSE 8080 8081
CMD ["/app/order"]
