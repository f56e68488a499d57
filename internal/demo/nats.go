package demo

import (
	"fmt"
	"io"
	"net"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// startNATS starts an embedded JetStream server on 127.0.0.1:port, or on a port the
// kernel picks when that one is taken, storing its streams under storeDir so a restart
// of the demo finds them. Its log goes to logw. No authentication: it listens on
// loopback only, for this machine's demo.
func startNATS(storeDir string, port int, logw io.Writer) (*server.Server, string, error) {
	srv, err := tryNATS(storeDir, port, logw)
	if err != nil && port != server.RANDOM_PORT {
		srv, err = tryNATS(storeDir, server.RANDOM_PORT, logw)
	}
	if err != nil {
		return nil, "", err
	}
	return srv, fmt.Sprintf("nats://127.0.0.1:%d", srv.Addr().(*net.TCPAddr).Port), nil
}

func tryNATS(storeDir string, port int, logw io.Writer) (*server.Server, error) {
	if port != server.RANDOM_PORT && !free(port) {
		return nil, fmt.Errorf("port %d is taken", port)
	}
	srv, err := server.NewServer(&server.Options{
		ServerName: "loudly-demo",
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   storeDir,
		NoSigs:     true, // the demo handles signals and shuts the server down itself
	})
	if err != nil {
		return nil, fmt.Errorf("configure embedded NATS: %w", err)
	}
	srv.SetLoggerV2(&natsLog{w: logw}, false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(15*time.Second) || !srv.JetStreamEnabled() {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded NATS did not start with JetStream on 127.0.0.1:%d in %s (see its log)", port, storeDir)
	}
	return srv, nil
}

// free reports whether 127.0.0.1:port can be listened on now.
func free(port int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// natsLog writes the server's notices, warnings and errors as lines.
type natsLog struct{ w io.Writer }

func (l *natsLog) line(level, format string, v ...any) {
	fmt.Fprintf(l.w, "%s [%s] %s\n", time.Now().Format(time.RFC3339), level, fmt.Sprintf(format, v...))
}
func (l *natsLog) Noticef(format string, v ...any) { l.line("INF", format, v...) }
func (l *natsLog) Warnf(format string, v ...any)   { l.line("WRN", format, v...) }
func (l *natsLog) Errorf(format string, v ...any)  { l.line("ERR", format, v...) }
func (l *natsLog) Fatalf(format string, v ...any)  { l.line("FTL", format, v...) }
func (l *natsLog) Debugf(string, ...any)           {}
func (l *natsLog) Tracef(string, ...any)           {}
