package node

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"sync"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/outpost-voice/outpost/sbc"
)

// errUADialsTLS: sipgo's own TLS dialling is shut; the trunk connector
// opens TLS toward SBCs (see trunkTLS).
var errUADialsTLS = errors.New("tls connections toward an sbc are opened by the trunk connector with that trunk's " +
	"certificates; this one was not (the connection closed between the two): the call moves to the next trunk")

// uaTLSConfig is the user agent's own TLS client configuration: it fails
// every handshake. sipgo has one TLS configuration for all it dials, and a
// trunk needs its own CAs, name and client certificate, so TLS toward a
// trunk is dialled by trunkTLS and handed to sipgo ready; sipgo dialling
// TLS itself can only mean that connection was lost in between.
func uaTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:             tls.VersionTLS12,
		InsecureSkipVerify:     true, // nothing is trusted: VerifyConnection refuses every peer
		VerifyConnection:       func(tls.ConnectionState) error { return errUADialsTLS },
		GetClientCertificate:   func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &tls.Certificate{}, nil },
		SessionTicketsDisabled: true,
	}
}

// trunkTLS opens the TLS connections toward trunks with each trunk's own
// settings (sbc.TLSDialer) and hands them to sipgo, which keeps them in
// its pool and reads them like any other: sipgo's TLS transport serves
// trunkTLS as a listener whose Accept returns the connections dialled.
// Requests to that SBC address then go over the connection; when the SBC
// closes it, sipgo drops it from its pool and the next Connect dials anew.
type trunkTLS struct {
	dialer *sbc.TLSDialer
	tp     interface {
		GetConnection(network, addr string) (sip.Connection, error)
	}
	addr net.Addr // what Addr reports: the node's SIP TLS listener, for sipgo's Via

	handoff chan handoff
	pending chan struct{} // the accepted of the connection Accept returned last (only Accept touches it)
	closed  chan struct{}
	close   sync.Once

	mu      sync.Mutex
	dialing map[string]*dialCall // by "ip:port": one dial at a time per SBC address
}

type handoff struct {
	conn     net.Conn
	accepted chan struct{} // closed once sipgo took the connection into its pool
}

type dialCall struct {
	done chan struct{}
	err  error
}

func newTrunkTLS(dialer *sbc.TLSDialer, ua *sipgo.UserAgent, addr net.Addr) *trunkTLS {
	return &trunkTLS{dialer: dialer, tp: ua.TransportLayer(), addr: addr,
		handoff: make(chan handoff), closed: make(chan struct{}), dialing: map[string]*dialCall{}}
}

// Connect makes sure sipgo holds a TLS connection to ep, the address of
// trunk target t, dialling it with t's settings when there is none.
func (c *trunkTLS) Connect(ctx context.Context, t sbc.Target, ep sbc.Endpoint) error {
	addr := ep.Addr()
	for {
		if conn, _ := c.tp.GetConnection("tls", addr); conn != nil {
			return nil
		}
		c.mu.Lock()
		call, busy := c.dialing[addr]
		if !busy {
			call = &dialCall{done: make(chan struct{})}
			c.dialing[addr] = call
		}
		c.mu.Unlock()
		if busy { // another request is dialling this address: wait for it
			select {
			case <-call.done:
				if call.err != nil {
					return call.err
				}
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		call.err = c.dial(ctx, t, addr)
		c.mu.Lock()
		delete(c.dialing, addr)
		c.mu.Unlock()
		close(call.done)
		return call.err
	}
}

// dial opens the connection and waits until sipgo took it.
func (c *trunkTLS) dial(ctx context.Context, t sbc.Target, addr string) error {
	conn, err := c.dialer.Dial(ctx, t, addr)
	if err != nil {
		return err
	}
	h := handoff{conn: conn, accepted: make(chan struct{})}
	select {
	case c.handoff <- h:
	case <-c.closed:
		_ = conn.Close()
		return net.ErrClosed
	case <-ctx.Done():
		_ = conn.Close()
		return ctx.Err()
	}
	select {
	case <-h.accepted:
		return nil
	case <-c.closed:
		return net.ErrClosed
	}
}

// Accept is net.Listener's: the next connection dialled. sipgo's Serve
// loop pools each connection Accept returns before it calls Accept again,
// so that call is what tells dial its connection is in the pool.
func (c *trunkTLS) Accept() (net.Conn, error) {
	if c.pending != nil {
		close(c.pending)
		c.pending = nil
	}
	select {
	case h := <-c.handoff:
		c.pending = h.accepted
		return h.conn, nil
	case <-c.closed:
		return nil, net.ErrClosed
	}
}

// Close stops Accept.
func (c *trunkTLS) Close() error {
	c.close.Do(func() { close(c.closed) })
	return nil
}

// Addr is the node's SIP TLS listener (sipgo puts its port in Via).
func (c *trunkTLS) Addr() net.Addr { return c.addr }

// tlsListenAddr is what trunkTLS reports as its address: the SIP TLS
// listener's, else port 5061 on the node's host.
func tlsListenAddr(ln net.Listener, host string) net.Addr {
	if ln != nil {
		return ln.Addr()
	}
	return &net.TCPAddr{IP: net.ParseIP(strings.Trim(host, "[]")), Port: 5061}
}
