package e2e

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// paddedOptions is an OPTIONS for transport whose headers carry pad bytes
// more, in one X-Pad header (lines > 1) or in lines headers of equal size.
func paddedOptions(transport, local string, pad, lines int, contentLength string) string {
	var b strings.Builder
	id := time.Now().UnixNano()
	fmt.Fprintf(&b, "OPTIONS sip:acme.example SIP/2.0\r\nVia: SIP/2.0/%s %s;branch=z9hG4bK-big%d;rport\r\n", transport, local, id)
	fmt.Fprintf(&b, "Max-Forwards: 70\r\nFrom: <sip:big@acme.example>;tag=big\r\nTo: <sip:acme.example>\r\nCall-ID: big-%d\r\nCSeq: 1 OPTIONS\r\n", id)
	per := pad / max(lines, 1)
	for i := range max(lines, 1) {
		fmt.Fprintf(&b, "X-Pad-%d: %s\r\n", i, strings.Repeat("a", per))
	}
	fmt.Fprintf(&b, "Content-Length: %s\r\n\r\n", contentLength)
	return b.String()
}

// Oversized messages and headers at a running node: a SIP message is at
// most 64 KiB over TCP and TLS (sipgo's limit: the connection is closed,
// there being no message boundary left to resume at), and over UDP at most
// what one read of 32 KiB holds (a longer datagram is cut, does not parse,
// and is dropped). Each of these gets no answer and the node serves on: a
// 60 kB datagram of headers, a 70 kB header line, 2,000 header lines
// (70 kB), a Content-Length of 1 GB, over TCP and TLS. A message with 8 kB
// of headers is answered (longer than any phone sends, well within the
// limits).
func TestAttackOversized(t *testing.T) {
	cert, key := selfSigned(t)
	n := startNode(t, "big", nodeOpts{tlsCert: cert, tlsKey: key, logLevel: "info"})
	var report []string

	// UDP.
	udp := newRawPhone(t, "127.0.0.71", n.sipUDP)
	if a := udp.send(paddedOptions("UDP", udp.local(), 8000, 1, "0")); a.status != 200 {
		t.Errorf("an OPTIONS with 8 kB of headers over UDP: %q, want 200", a.line)
	}
	for _, tc := range []struct {
		what       string
		pad, lines int
	}{{"a 60 kB header", 60000, 1}, {"1,700 header lines (62 kB)", 40000, 1700}} {
		a := udp.send(paddedOptions("UDP", udp.local(), tc.pad, tc.lines, "0"))
		got := "no answer"
		if a.status != 0 {
			got = a.line
			t.Errorf("UDP datagram with %s: %q, want no answer", tc.what, a.line)
		}
		report = append(report, fmt.Sprintf("UDP, %s: %s", tc.what, got))
		if code := udpProbe(t, "127.0.0.72", n.sipUDP, 2*time.Second); code != 200 {
			t.Fatalf("after %s over UDP the node answers OPTIONS %d", tc.what, code)
		}
	}

	// TCP and TLS.
	for _, tr := range []string{"tcp", "tls"} {
		addr := map[string]string{"tcp": n.sipTCP, "tls": n.sipTLS}[tr]
		c := dialSIP(t, tr, "127.0.0.73", addr)
		if status := c.optionsOf(paddedOptions(strings.ToUpper(tr), c.LocalAddr().String(), 8000, 1, "0")); status != "SIP/2.0 200 OK" {
			t.Errorf("%s: an OPTIONS with 8 kB of headers: %q, want 200", tr, status)
		}
		c.Close()
		for _, tc := range []struct{ what, msg string }{
			{"a 70 kB header line", paddedOptions("TCP", "127.0.0.73:5060", 70000, 1, "0")},
			{"2,000 header lines (70 kB)", paddedOptions("TCP", "127.0.0.73:5060", 70000, 2000, "0")},
			{"a 70 kB line that never ends", "OPTIONS sip:acme.example SIP/2.0\r\nX-Pad: " + strings.Repeat("a", 70000)},
			{"Content-Length: 1000000000", paddedOptions("TCP", "127.0.0.73:5060", 10, 1, "1000000000") + strings.Repeat("b", 20000)},
		} {
			c := dialSIP(t, tr, "127.0.0.73", addr)
			go func() { _, _ = c.Write([]byte(tc.msg)) }()
			start := time.Now()
			answer, closed := c.readUntilClosed(10 * time.Second)
			switch {
			case !closed:
				t.Errorf("%s, %s: the connection stays open after 10 s", tr, tc.what)
			case strings.Contains(answer, "SIP/2.0 2"):
				t.Errorf("%s, %s: answered %q", tr, tc.what, strings.SplitN(answer, "\r\n", 2)[0])
			}
			report = append(report, fmt.Sprintf("%s, %s: closed after %s, no answer", strings.ToUpper(tr), tc.what, time.Since(start).Round(10*time.Millisecond)))
			c.Close()
		}
		c = dialSIP(t, tr, "127.0.0.74", addr)
		if status := c.options(t); status != "SIP/2.0 200 OK" {
			t.Errorf("%s after the oversized messages: OPTIONS got %q", tr, status)
		}
		c.Close()
	}
	t.Logf("oversized messages against %s:\n  %s", n.id, strings.Join(report, "\n  "))
}

// optionsOf sends msg (an OPTIONS) and returns the answer's status line.
func (c *sipConn) optionsOf(msg string) string {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte(msg)); err != nil {
		return "write: " + err.Error()
	}
	status, err := c.r.ReadString('\n')
	if err != nil {
		return "read: " + err.Error()
	}
	for {
		line, err := c.r.ReadString('\n')
		if err != nil || line == "\r\n" {
			break
		}
	}
	return strings.TrimSpace(status)
}

// readUntilClosed reads what the peer sends until it closes the connection
// or d passes; closed is false when it did not close.
func (c *sipConn) readUntilClosed(d time.Duration) (got string, closed bool) {
	_ = c.SetReadDeadline(time.Now().Add(d))
	b, err := io.ReadAll(c.r)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return string(b), false
	}
	return string(b), true
}
