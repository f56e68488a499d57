package telemetry_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"loudly/internal/testenv"
	"loudly/pkg/env"
	"loudly/pkg/telemetry"
)

// setup is what a service does at start-up: FromEnv over the process environment (which
// the SDK's exporters read too), then Setup; it also reads Loudly's own metrics.
func setup(t *testing.T) (*telemetry.Telemetry, *sdkmetric.ManualReader) {
	t.Helper()
	r := env.New(os.Getenv)
	cfg := telemetry.FromEnv(telemetry.Config{ServiceName: "export-test", LogWriter: io.Discard}, r)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	reader := sdkmetric.NewManualReader()
	cfg.MetricReaders = []sdkmetric.Reader{reader}
	tel, err := telemetry.Setup(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tel.Shutdown(ctx)
	})
	return tel, reader
}

// flush pushes out what every provider holds; the error is the span export's.
func flush(t *testing.T, tel *telemetry.Telemetry) error {
	t.Helper()
	ctx := context.Background()
	err := tel.TracerProvider.ForceFlush(ctx)
	if err := tel.MeterProvider.ForceFlush(ctx); err != nil {
		t.Errorf("metrics: %v", err)
	}
	if tel.LoggerProvider != nil {
		if err := tel.LoggerProvider.ForceFlush(ctx); err != nil {
			t.Errorf("logs: %v", err)
		}
	}
	return err
}

// endpoint is the receiver's address for protocol p.
func endpoint(o *testenv.OTLP, p telemetry.Protocol) string {
	if p == telemetry.ProtocolGRPC {
		return o.GRPCURL()
	}
	return o.URL
}

var protocols = []telemetry.Protocol{telemetry.ProtocolHTTP, telemetry.ProtocolGRPC}

// Spans, metrics and logs leave through the SDK's exporters over either protocol, with the
// headers and the compression of the standard variables, the same way for each signal.
func TestSetup_ExportsEverySignalOverEitherProtocol(t *testing.T) {
	for _, p := range protocols {
		t.Run(string(p), func(t *testing.T) {
			o := testenv.OTLPReceiver(t)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint(o, p))
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", string(p))
			t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "X-Loudly-Tenant=blue%20team")
			t.Setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
			tel, reader := setup(t)

			ctx, span := tel.Tracer().Start(context.Background(), "work")
			counter, err := tel.Meter().Int64Counter("loudly.test.things")
			if err != nil {
				t.Fatal(err)
			}
			counter.Add(ctx, 3)
			tel.Logger.InfoContext(ctx, "a line for the collector")
			span.End()
			if err := flush(t, tel); err != nil {
				t.Fatal(err)
			}

			if !o.HasTrace(span.SpanContext().TraceID().String()) {
				t.Errorf("the span's trace was not exported; received %s", o)
			}
			if o.MetricPoints("loudly.test.things") == 0 {
				t.Errorf("the counter was not exported; received %s", o)
			}
			if !slices.Contains(o.LogBodies(), "a line for the collector") {
				t.Errorf("the log line was not exported; received %q", o.LogBodies())
			}
			for _, signal := range []string{testenv.OTLPTraces, testenv.OTLPMetrics, testenv.OTLPLogs} {
				e, ok := o.Last(signal)
				if !ok || e.Protocol != string(p) || e.Header.Get("X-Loudly-Tenant") != "blue team" || e.Compression != "gzip" {
					t.Errorf("%s: last export %+v, want %s with the header and gzip", signal, e, p)
				}
			}
			if got := telemetry.DroppedSpans(t, reader); got["queue_full"]+got["export_failed"]+got["rejected"] != 0 {
				t.Errorf("dropped %v, want none", got)
			}
		})
	}
}

// With OTEL_EXPORTER_OTLP_CERTIFICATE the exporters trust the collector's certificate
// authority, and with the client certificate and key they prove who they are (mutual
// TLS); without the authority nothing is exported, and the lost spans are counted.
func TestSetup_ExportsOverTLSWithTheStandardVariables(t *testing.T) {
	pki := newTestPKI(t)
	for _, p := range protocols {
		t.Run(string(p), func(t *testing.T) {
			o := testenv.StartOTLP(t, testenv.OTLPConfig{TLS: pki.serverTLS})
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint(o, p)) // https://
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", string(p))
			t.Setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", pki.caFile)
			t.Setenv("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", pki.clientCertFile)
			t.Setenv("OTEL_EXPORTER_OTLP_CLIENT_KEY", pki.clientKeyFile)
			tel, _ := setup(t)
			_, span := tel.Tracer().Start(context.Background(), "over tls")
			span.End()
			tel.Logger.Info("a line over tls")
			if err := flush(t, tel); err != nil {
				t.Fatal(err)
			}
			if !o.HasTrace(span.SpanContext().TraceID().String()) || !slices.Contains(o.LogBodies(), "a line over tls") {
				t.Errorf("received %s", o)
			}
		})
	}
	t.Run("an authority the exporter does not know", func(t *testing.T) {
		o := testenv.StartOTLP(t, testenv.OTLPConfig{TLS: pki.serverTLS})
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", o.URL)
		t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2000")
		t.Setenv("OTEL_LOGS_EXPORTER", "none")
		tel, reader := setup(t)
		endSpans(tel, 4)
		if err := tel.TracerProvider.ForceFlush(context.Background()); err == nil {
			t.Fatal("spans exported to a collector whose certificate nobody vouched for")
		}
		if o.Spans() != 0 {
			t.Errorf("the receiver got %d spans", o.Spans())
		}
		if got := telemetry.DroppedSpans(t, reader); got["export_failed"] != 4 {
			t.Errorf("dropped %v, want export_failed=4", got)
		}
	})
}

// A collector's OTLP partial success is counted as what it is, over either protocol: the
// spans the collector refused, not the whole batch as failed.
func TestSpanExportCountsWhatTheCollectorRejects(t *testing.T) {
	for _, p := range protocols {
		t.Run(string(p), func(t *testing.T) {
			o := testenv.StartOTLP(t, testenv.OTLPConfig{RejectSpans: 2})
			// A signal's own endpoint: used as it is, so over HTTP it names the path.
			traces := o.URL + testenv.OTLPTraces
			if p == telemetry.ProtocolGRPC {
				traces = o.GRPCURL()
			}
			t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", traces)
			t.Setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", string(p))
			tel, reader := setup(t)
			endSpans(tel, 5)
			_ = tel.TracerProvider.ForceFlush(context.Background()) // the partial success is its error
			if o.Spans() != 5 {
				t.Fatalf("the receiver got %d spans, want the batch of 5", o.Spans())
			}
			if got := telemetry.DroppedSpans(t, reader); got["rejected"] != 2 || got["export_failed"] != 0 {
				t.Errorf("dropped %v, want rejected=2 and nothing failed", got)
			}
		})
	}
}

func endSpans(tel *telemetry.Telemetry, n int) {
	for range n {
		_, s := tel.Tracer().Start(context.Background(), "work")
		s.End()
	}
}

// testPKI is a certificate authority, a server certificate for 127.0.0.1 and a client
// certificate, all made for the test.
type testPKI struct {
	serverTLS                             *tls.Config
	caFile, clientCertFile, clientKeyFile string
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey := key()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "loudly test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ = x509.ParseCertificate(caDER)
	issue := func(serial int64, usage x509.ExtKeyUsage, ip net.IP) (tls.Certificate, []byte, []byte) {
		k := key()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "loudly test"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		if ip != nil {
			tmpl.IPAddresses = []net.IP{ip}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		return pair, certPEM, keyPEM
	}
	server, _, _ := issue(2, x509.ExtKeyUsageServerAuth, net.IPv4(127, 0, 0, 1))
	_, clientCert, clientKey := issue(3, x509.ExtKeyUsageClientAuth, nil)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	p := testPKI{
		serverTLS: &tls.Config{Certificates: []tls.Certificate{server}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool,
			MinVersion: tls.VersionTLS12},
		caFile: filepath.Join(dir, "ca.pem"), clientCertFile: filepath.Join(dir, "client.pem"), clientKeyFile: filepath.Join(dir, "client-key.pem"),
	}
	for file, b := range map[string][]byte{
		p.caFile:         pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		p.clientCertFile: clientCert,
		p.clientKeyFile:  clientKey,
	} {
		if err := os.WriteFile(file, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return p
}
