package guard

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// Listen wraps a TCP listener, or a TLS listener made on one (tls.Listen,
// tls.NewListener: the handshake then happens under the guard's
// deadlines), for sipgo's ServeTCP or ServeTLS:
//
//   - a connection from a banned source, or over its source's rate (each
//     connection counts as a message), or past MaxConns or
//     MaxConnsPerSource, is closed at once, before any byte is read;
//   - the connections it hands out count each message they carry against
//     their source's rate, and are closed (the peer sees the connection
//     end, not an answer) at the first message over it or once the
//     source is banned;
//   - they are closed when their first message, or any message once begun,
//     does not arrive whole within MessageTimeout, or after IdleTimeout
//     without a byte; each write must complete within WriteTimeout;
//   - Accept does not fail on errors that pass (no file descriptor left, a
//     connection aborted before it was accepted): it waits and retries, as
//     net/http does, where sipgo would stop serving the listener.
func (g *Guard) Listen(ln net.Listener) net.Listener { return &listener{Listener: ln, g: g} }

type listener struct {
	net.Listener
	g *Guard
}

func (l *listener) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if !retryable(err) {
				return nil, err
			}
			if delay == 0 {
				l.g.log.Warn("sip accept failed; retrying", "addr", l.Addr().String(), "error", err)
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			time.Sleep(delay)
			continue
		}
		delay = 0
		ip, ok := addrOf(c.RemoteAddr())
		if !ok {
			return c, nil // not an IP connection: nothing to count it against
		}
		admitted, perSource, reason := l.g.admit(ip)
		if !admitted {
			l.g.metrics.refused.WithLabelValues(reason).Inc()
			l.g.log.Debug("sip connection refused", "remote", c.RemoteAddr().String(), "reason", reason)
			_ = c.Close()
			continue
		}
		now := time.Now()
		return &conn{Conn: c, g: l.g, ip: ip, perSource: perSource, opened: now, active: now}, nil
	}
}

// retryable reports whether an Accept error passes: the listener is fine.
func retryable(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
		syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EINTR, syscall.EAGAIN, syscall.EPROTO, syscall.EPERM} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// errRefused stops the framer at a message over the rate.
var errRefused = errors.New("message refused")

// conn is an accepted connection under the guard. sipgo reads each
// connection from one goroutine, so the read side is not locked.
type conn struct {
	net.Conn
	g         *Guard
	ip        netip.Addr
	perSource bool // counted against its source's cap
	opened    time.Time
	closeOnce sync.Once

	fr        framer
	msgStart  time.Time // first byte of the message being read
	active    time.Time // last byte read
	delivered bool      // a whole message arrived
}

// readDeadline is when the next read must have returned.
func (c *conn) readDeadline() time.Time {
	switch {
	case c.fr.inMessage():
		return c.msgStart.Add(c.g.c.MessageTimeout)
	case !c.delivered:
		return c.opened.Add(c.g.c.MessageTimeout)
	}
	return c.active.Add(c.g.c.IdleTimeout)
}

func (c *conn) Read(b []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(c.readDeadline()); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(b)
	if n > 0 {
		now := time.Now()
		c.active = now
		refused := Pass
		ferr := c.fr.feed(b[:n], func() error {
			c.msgStart = now
			if v := c.g.lim.Allow(c.ip); v != Pass {
				refused = v
				return errRefused
			}
			return nil
		}, func() { c.delivered = true })
		if ferr != nil {
			c.shut(refused.String())
			return 0, io.EOF
		}
		// An error that came with data comes back at the next read.
		return n, nil
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		reason := "idle"
		switch {
		case c.fr.inMessage():
			reason = "message_timeout"
		case !c.delivered:
			reason = "first_message_timeout"
		}
		c.shut(reason)
		return 0, io.EOF
	}
	return n, err
}

func (c *conn) Write(b []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.g.c.WriteTimeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

// shut closes the connection for reason (sipgo then sees the end of the
// stream, and forgets the connection).
func (c *conn) shut(reason string) {
	c.g.metrics.closed.WithLabelValues(reason).Inc()
	c.g.log.Debug("sip connection closed by the guard", "remote", c.RemoteAddr().String(), "reason", reason)
	_ = c.Close()
}

func (c *conn) Close() error {
	c.closeOnce.Do(func() { c.g.release(c.ip, c.perSource) })
	return c.Conn.Close()
}
