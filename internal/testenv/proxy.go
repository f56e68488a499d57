package testenv

import (
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"
)

// Proxy is a TCP proxy in front of a real server, so an outage test can point a service
// at it and take the server away (Cut) and give it back (Restore) without stopping the
// server, which other tests may be sharing.
type Proxy struct {
	ln net.Listener
	wg sync.WaitGroup

	mu     sync.Mutex
	target string // "" until known: connections are reset
	cut    bool
	closed bool
	conns  map[net.Conn]struct{}
	// flowing is closed while bytes pass; Stall replaces it with an open one, on which
	// every transfer and every new connection waits until Unstall closes it.
	flowing chan struct{}
}

// NewProxy starts a proxy on 127.0.0.1 in front of target (host:port); it is closed when
// the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: proxy listen: %v", err)
	}
	p := &Proxy{target: target, ln: ln, conns: map[net.Conn]struct{}{}, flowing: make(chan struct{})}
	close(p.flowing)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// ProxyDSN starts a proxy in front of the server of a postgres:// URL and returns it with
// the same URL pointing at the proxy.
func ProxyDSN(t testing.TB, dsn string) (*Proxy, string) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		t.Fatalf("testenv.ProxyDSN: need a postgres:// URL with a host, got %s", redact(dsn))
	}
	target := u.Host
	if u.Port() == "" {
		target = net.JoinHostPort(u.Hostname(), "5432")
	}
	p := NewProxy(t, target)
	u.Host = p.Addr()
	return p, u.String()
}

// retarget points new connections at target; open ones stay where they are. It lets a
// proxy exist, and its address be handed out, before the server behind it has a port.
func (p *Proxy) retarget(target string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = target
}

// Addr is the proxy's "127.0.0.1:PORT".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut resets every open connection in both directions and resets new ones as soon as
// they are accepted, until Restore. Clients see what a crashed server or a broken
// network looks like: a connection reset, not a clean goodbye.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		reset(c)
	}
}

// Restore lets new connections through again. Connections cut earlier stay broken;
// clients have to reconnect, as they would after a real outage.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

// Stall stops forwarding without closing anything, as a partition that drops packets does:
// open connections stay open and their bytes wait, new connections are accepted and wait
// to be connected, no reset and no FIN reaches either side, until Unstall. Then what waited
// is delivered, as TCP delivers retransmitted segments once the network heals — unless the
// client gave up on the connection meanwhile. (The proxy's own kernel still answers TCP
// keep-alives, which a real partition would not: clients detect this stall only with
// deadlines of their own.)
func (p *Proxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.flowing:
		p.flowing = make(chan struct{})
	default: // already stalled
	}
}

// Unstall lets bytes and connections through again.
func (p *Proxy) Unstall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.flowing:
	default:
		close(p.flowing)
	}
}

// StallFor stalls the proxy for d and unstalls it then, without blocking; the returned
// channel is closed once it flows again. The partition lasting d is the fault itself.
func (p *Proxy) StallFor(d time.Duration) <-chan struct{} {
	p.Stall()
	healed := make(chan struct{})
	time.AfterFunc(d, func() {
		p.Unstall()
		close(healed)
	})
	return healed
}

// waitFlowing blocks while the proxy is stalled.
func (p *Proxy) waitFlowing() {
	p.mu.Lock()
	ch := p.flowing
	p.mu.Unlock()
	<-ch
}

func (p *Proxy) close() {
	p.Unstall()
	p.mu.Lock()
	p.closed = true
	p.ln.Close()
	for c := range p.conns {
		reset(c)
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			time.Sleep(10 * time.Millisecond) // e.g. out of file descriptors; try again
			continue
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	if !p.track(client) {
		return
	}
	defer p.untrack(client)
	p.waitFlowing()
	p.mu.Lock()
	target := p.target
	p.mu.Unlock()
	if target == "" {
		reset(client)
		return
	}
	server, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		reset(client)
		return
	}
	if !p.track(server) {
		reset(client)
		return
	}
	defer p.untrack(server)

	done := make(chan struct{}, 2)
	go p.pipe(server, client, done)
	go p.pipe(client, server, done)
	<-done
	<-done
	client.Close()
	server.Close()
}

// pipe copies one direction and passes a clean end of stream on as a half-close, so
// protocols that shut down their sending side and still read an answer keep working.
func (p *Proxy) pipe(dst, src net.Conn, done chan<- struct{}) {
	defer func() { done <- struct{}{} }()
	buf := make([]byte, 32<<10)
	var err error
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			p.waitFlowing()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				err = werr
				break
			}
		}
		if rerr != nil {
			if rerr != io.EOF {
				err = rerr
			}
			break
		}
	}
	if err == nil {
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
			return
		}
	}
	dst.Close()
	src.Close()
}

// track registers an open connection, or resets it and reports false while the proxy is
// cut or closed.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut || p.closed {
		reset(c)
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
}

// reset closes c with an RST instead of a FIN, the way a dead peer looks.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}
