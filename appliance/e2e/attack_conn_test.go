package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// SIP over TCP and TLS against connection exhaustion: with
// sip.tcp_max_per_source 20 and sip.tcp_max_connections 50, a 21st
// connection from one source and a 51st in all are closed as they are
// accepted, unanswered, while those within the caps are served and a
// place freed is taken again; a connection that sends nothing, one that
// never finishes its TLS handshake, one that sends a header a second
// (slowloris) and one that sends only keep-alives are all closed once
// sip.tcp_message_timeout (2 s here) has passed; the node serves
// throughout.
func TestAttackConnections(t *testing.T) {
	cert, key := selfSigned(t)
	const perSource, total, msgTimeout = 20, 50, 2 * time.Second
	n := startNode(t, "conns", nodeOpts{tlsCert: cert, tlsKey: key, logLevel: "info", env: []string{
		"OUTPOST_SIP_FLOOD_EXEMPT=", // loopback is where the attackers are
		fmt.Sprintf("OUTPOST_SIP_TCP_MAX_PER_SOURCE=%d", perSource),
		fmt.Sprintf("OUTPOST_SIP_TCP_MAX_CONNECTIONS=%d", total),
		fmt.Sprintf("OUTPOST_SIP_TCP_MESSAGE_TIMEOUT=%s", msgTimeout),
	}})

	// Within the caps: 20 from one source, 30 from two others, each
	// answered (and so kept: it delivered a message).
	var held []*sipConn
	for i := range total {
		src := "127.0.0.21"
		if i >= perSource {
			src = fmt.Sprintf("127.0.0.%d", 22+i%2)
		}
		c := dialSIP(t, "tcp", src, n.sipTCP)
		if status := c.options(t); status != "SIP/2.0 200 OK" {
			t.Fatalf("connection %d from %s within the caps: OPTIONS got %q", i+1, src, status)
		}
		held = append(held, c)
		if i+1 == perSource && !dialSIP(t, "tcp", "127.0.0.21", n.sipTCP).refused(t) {
			t.Errorf("a connection over sip.tcp_max_per_source (%d) was served", perSource)
		}
	}
	if !dialSIP(t, "tls", "127.0.0.24", n.sipTLS).refused(t) {
		t.Errorf("a TLS connection over sip.tcp_max_connections (%d, TCP and TLS together) was served", total)
	}
	held[0].Close()
	eventually(t, 10*time.Second, "a place freed is taken again", func(context.Context) error {
		c := dialSIP(t, "tcp", "127.0.0.24", n.sipTCP)
		defer c.Close()
		if status := c.optionsErr(); status != "SIP/2.0 200 OK" {
			return fmt.Errorf("OPTIONS got %q", status)
		}
		return nil
	})
	for _, c := range held[1:] {
		c.Close()
	}
	m := metrics(t, n)
	refusedPerSource := m(`outpost_sip_guard_connections_refused_total{reason="per_source"}`)
	refusedTotal := m(`outpost_sip_guard_connections_refused_total{reason="total"}`)
	if refusedPerSource < 1 || refusedTotal < 1 {
		t.Errorf("refused: %.0f per source, %.0f over the total; want both counted", refusedPerSource, refusedTotal)
	}
	eventually(t, 10*time.Second, "the connections closed", func(context.Context) error {
		if open := metrics(t, n)("outpost_sip_guard_connections"); open != 0 {
			return fmt.Errorf("%.0f open", open)
		}
		return nil
	})

	// Connections that hold a place without delivering a message.
	type hold struct {
		name string
		c    *sipConn
		feed func(c *sipConn) // what it sends every 500 ms
	}
	start := time.Now() // before the dials: the server's clocks start at accept
	holds := []hold{
		{"silent (TCP)", dialSIP(t, "tcp", "127.0.0.25", n.sipTCP), nil},
		{"no TLS handshake", dialSIP(t, "raw", "127.0.0.25", n.sipTLS), nil},
		{"slowloris (TCP)", dialSIP(t, "tcp", "127.0.0.25", n.sipTCP), func(c *sipConn) { c.write("X-Slow: 1\r\n") }},
		{"slowloris (TLS)", dialSIP(t, "tls", "127.0.0.25", n.sipTLS), func(c *sipConn) { c.write("X-Slow: 1\r\n") }},
		{"keep-alives only", dialSIP(t, "tcp", "127.0.0.25", n.sipTCP), func(c *sipConn) { c.write("\r\n\r\n") }},
	}
	for _, h := range holds {
		if h.feed != nil && h.name != "keep-alives only" {
			h.c.write("OPTIONS sip:acme.example SIP/2.0\r\n")
		}
	}
	closedAt := make([]time.Duration, len(holds))
	closed := make(chan int, len(holds))
	for i, h := range holds {
		go func() {
			closedAt[i] = 20 * time.Second
			if h.c.waitClosed(20*time.Second) < 20*time.Second {
				closedAt[i] = time.Since(start)
			}
			closed <- i
		}()
	}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	done := make([]bool, len(holds))
	for left := len(holds); left > 0; {
		select {
		case i := <-closed:
			done[i] = true
			left--
		case <-tick.C:
			for i, h := range holds {
				if !done[i] && h.feed != nil {
					h.feed(h.c)
				}
			}
		}
	}
	var report []string
	for i, h := range holds {
		took := closedAt[i]
		switch {
		case took >= 20*time.Second:
			t.Errorf("%s: still open after 20 s", h.name)
		case took < msgTimeout:
			t.Errorf("%s: closed after %s, before sip.tcp_message_timeout (%s)", h.name, took, msgTimeout)
		}
		report = append(report, fmt.Sprintf("%s closed after %s", h.name, took.Round(100*time.Millisecond)))
	}
	m = metrics(t, n)
	t.Logf("caps: %d per source, %d in all: refused %.0f per source, %.0f over the total; %s; closed by the guard: %.0f first_message_timeout, %.0f message_timeout",
		perSource, total, refusedPerSource, refusedTotal, strings.Join(report, "; "),
		m(`outpost_sip_guard_connections_closed_total{reason="first_message_timeout"}`),
		m(`outpost_sip_guard_connections_closed_total{reason="message_timeout"}`))

	// The node serves on.
	for _, tr := range []string{"tcp", "tls"} {
		addr := n.sipTCP
		if tr == "tls" {
			addr = n.sipTLS
		}
		c := dialSIP(t, tr, "127.0.0.1", addr)
		if status := c.options(t); status != "SIP/2.0 200 OK" {
			t.Errorf("after the attacks, OPTIONS over %s: %q", tr, status)
		}
		c.Close()
	}
}

// sipConn is a SIP stream connection from a chosen loopback address.
type sipConn struct {
	net.Conn
	r *bufio.Reader
}

// dialSIP connects from src to addr over "tcp", "tls" (handshake done,
// TLS 1.2 or later) or "raw" (TCP only, e.g. to a TLS port).
func dialSIP(t testing.TB, transport, src, addr string) *sipConn {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	var c net.Conn
	var err error
	if transport == "tls" {
		c, err = tls.DialWithDialer(d, "tcp", addr, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}) // a self-signed test certificate
	} else {
		c, err = d.Dial("tcp", addr)
	}
	if err != nil {
		if transport == "tls" {
			// Refused at accept: the handshake sees the connection end.
			return &sipConn{Conn: closedConn{}, r: bufio.NewReader(closedConn{})}
		}
		t.Fatalf("dial %s from %s: %v", addr, src, err)
	}
	t.Cleanup(func() { c.Close() })
	return &sipConn{Conn: c, r: bufio.NewReader(c)}
}

func (c *sipConn) write(s string) { _, _ = c.Write([]byte(s)) }

// optionsErr sends an OPTIONS and returns the answer's status line, or
// what went wrong.
func (c *sipConn) optionsErr() string {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte(options("TCP", c.LocalAddr().String()))); err != nil {
		return "write: " + err.Error()
	}
	status, err := c.r.ReadString('\n')
	if err != nil {
		return "read: " + err.Error()
	}
	for { // the headers, up to the empty line
		line, err := c.r.ReadString('\n')
		if err != nil || line == "\r\n" {
			break
		}
	}
	return strings.TrimSpace(status)
}

func (c *sipConn) options(t testing.TB) string {
	t.Helper()
	return c.optionsErr()
}

// refused reports whether the connection ends without an answer to an
// OPTIONS.
func (c *sipConn) refused(t testing.TB) bool {
	t.Helper()
	status := c.optionsErr()
	return strings.HasPrefix(status, "read: ") || strings.HasPrefix(status, "write: ")
}

// waitClosed waits up to d for the peer to close the connection and
// returns how long it took (d when it did not).
func (c *sipConn) waitClosed(d time.Duration) time.Duration {
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(d))
	buf := make([]byte, 4096)
	for {
		_, err := c.r.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return d
		}
		return time.Since(start)
	}
}

// closedConn is a connection that was refused before it was made.
type closedConn struct{ net.Conn }

func (closedConn) Read([]byte) (int, error)         { return 0, io.EOF }
func (closedConn) Write([]byte) (int, error)        { return 0, io.ErrClosedPipe }
func (closedConn) Close() error                     { return nil }
func (closedConn) SetDeadline(time.Time) error      { return nil }
func (closedConn) SetReadDeadline(time.Time) error  { return nil }
func (closedConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (closedConn) SetWriteDeadline(time.Time) error { return nil }
