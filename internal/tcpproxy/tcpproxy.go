// Package tcpproxy is a small TCP proxy for tests and `make cluster`: it
// spreads incoming connections over its backends in round-robin (skipping
// a backend that refuses), and can freeze the connections it carries, so
// a test can make a link go silent while TCP stays open.
package tcpproxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// dialTimeout bounds connecting to one backend before the next is tried.
const dialTimeout = time.Second

// copyBuf is each direction's copy buffer.
const copyBuf = 32 << 10

// frozenPoll is how often a frozen copier checks whether it was thawed.
const frozenPoll = 10 * time.Millisecond

// Proxy forwards connections from its listener to its backends.
type Proxy struct {
	ln        net.Listener
	backends  []string
	next      atomic.Uint64
	mu        sync.Mutex
	links     map[*link]struct{}
	wg        sync.WaitGroup
	closed    atomic.Bool
	freezeNew atomic.Bool // new links start frozen (a partition, not just a stuck link)
}

// link is one proxied connection pair.
type link struct {
	client, server net.Conn
	frozen         atomic.Bool
}

// Listen starts a proxy on addr (host:port; port 0 picks one) in front of
// backends.
func Listen(addr string, backends ...string) (*Proxy, error) {
	if len(backends) == 0 {
		return nil, errors.New("tcpproxy: no backend")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, backends: backends, links: map[*link]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr returns the proxy's listening address.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// dial connects to the next backend in turn that accepts.
func (p *Proxy) dial() (net.Conn, error) {
	var err error
	for range p.backends {
		addr := p.backends[p.next.Add(1)%uint64(len(p.backends))]
		var c net.Conn
		if c, err = net.DialTimeout("tcp", addr, dialTimeout); err == nil {
			return c, nil
		}
	}
	return nil, err
}

func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	server, err := p.dial()
	if err != nil {
		client.Close()
		return
	}
	l := &link{client: client, server: server}
	l.frozen.Store(p.freezeNew.Load())
	p.mu.Lock()
	if p.closed.Load() {
		p.mu.Unlock()
		client.Close()
		server.Close()
		return
	}
	p.links[l] = struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { l.pipe(server, client); done <- struct{}{} }()
	go func() { l.pipe(client, server); done <- struct{}{} }()
	<-done
	<-done
	client.Close()
	server.Close()
	p.mu.Lock()
	delete(p.links, l)
	p.mu.Unlock()
}

// pipe copies src to dst, holding bytes back while the link is frozen.
func (l *link) pipe(dst, src net.Conn) {
	buf := make([]byte, copyBuf)
	for {
		n, err := src.Read(buf)
		for n > 0 && l.frozen.Load() {
			time.Sleep(frozenPoll)
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			// Pass the end on: a half-close as a half-close, anything else
			// as a close of both directions.
			if tc, ok := dst.(*net.TCPConn); ok && errors.Is(err, io.EOF) {
				_ = tc.CloseWrite()
				return
			}
			dst.Close()
			src.Close()
			return
		}
	}
}

// Freeze stops forwarding bytes on every connection open now (both
// directions), keeping them open; new connections are not frozen.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for l := range p.links {
		l.frozen.Store(true)
	}
}

// FreezeNew makes connections opened from now on start frozen (on) or
// not: with Freeze, the backend is cut off for new connections too.
func (p *Proxy) FreezeNew(on bool) { p.freezeNew.Store(on) }

// Thaw resumes forwarding on every frozen connection, and new ones start
// thawed.
func (p *Proxy) Thaw() {
	p.freezeNew.Store(false)
	p.mu.Lock()
	defer p.mu.Unlock()
	for l := range p.links {
		l.frozen.Store(false)
	}
}

// Conns returns how many connections the proxy carries.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.links)
}

// Close stops listening, closes every connection and waits for them.
func (p *Proxy) Close() error {
	p.closed.Store(true)
	err := p.ln.Close()
	p.mu.Lock()
	for l := range p.links {
		l.frozen.Store(false)
		l.client.Close()
		l.server.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}
