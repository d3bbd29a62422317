package e2e

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/internal/testpki"
)

// selfSigned writes a certificate and key for 127.0.0.1 and returns their paths.
func selfSigned(t testing.TB) (certFile, keyFile string) {
	t.Helper()
	return testpki.SelfSigned(t, "127.0.0.1").WriteFiles(t, t.TempDir(), "sip")
}

// options is a minimal OPTIONS request for a stream transport.
func options(transport, local string) string {
	return strings.Join([]string{
		"OPTIONS sip:acme.example SIP/2.0",
		fmt.Sprintf("Via: SIP/2.0/%s %s;branch=z9hG4bK-%d;rport", transport, local, time.Now().UnixNano()),
		"Max-Forwards: 70",
		"From: <sip:probe@acme.example>;tag=e2e",
		"To: <sip:acme.example>",
		fmt.Sprintf("Call-ID: e2e-%d@127.0.0.1", time.Now().UnixNano()),
		"CSeq: 1 OPTIONS",
		"Content-Length: 0",
		"", "",
	}, "\r\n")
}

// readResponse reads one SIP response's status line and headers.
func readResponse(t testing.TB, r *bufio.Reader) (string, textproto.MIMEHeader) {
	t.Helper()
	tp := textproto.NewReader(r)
	status, err := tp.ReadLine()
	if err != nil {
		t.Fatalf("read status line: %v", err)
	}
	hdr, err := tp.ReadMIMEHeader()
	if err != nil && err != io.EOF {
		t.Fatalf("read headers: %v", err)
	}
	return status, hdr
}

// SIP over TCP and TLS: OPTIONS is answered with what the node supports,
// RFC 5626 CRLF keep-alive pings get their pong, TLS below 1.2 is refused.
func TestSIPStreamTransports(t *testing.T) {
	cert, key := selfSigned(t)
	n := startNode(t, "tr", nodeOpts{tlsCert: cert, tlsKey: key})
	if n.sipTCP == "" || n.sipTLS == "" {
		t.Fatalf("node did not report TCP and TLS listeners (tcp %q, tls %q)", n.sipTCP, n.sipTLS)
	}
	dialers := map[string]func() (net.Conn, error){
		"TCP": func() (net.Conn, error) { return net.DialTimeout("tcp", n.sipTCP, 5*time.Second) },
		"TLS": func() (net.Conn, error) {
			return tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", n.sipTLS,
				&tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}) // self-signed test certificate
		},
	}
	for transport, dial := range dialers {
		t.Run(transport, func(t *testing.T) {
			conn, err := dial()
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			r := bufio.NewReader(conn)

			// A CRLF CRLF ping gets a CRLF pong (RFC 5626 §3.5.1).
			if _, err := conn.Write([]byte("\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
			pong := make([]byte, 2)
			if _, err := io.ReadFull(r, pong); err != nil || string(pong) != "\r\n" {
				t.Fatalf("keep-alive pong: %q, %v", pong, err)
			}
			if _, err := conn.Write([]byte(options(transport, conn.LocalAddr().String()))); err != nil {
				t.Fatal(err)
			}
			status, hdr := readResponse(t, r)
			if status != "SIP/2.0 200 OK" {
				t.Fatalf("OPTIONS over %s: %q", transport, status)
			}
			for _, h := range []string{"Allow", "Accept", "Supported"} {
				if hdr.Get(h) == "" {
					t.Errorf("OPTIONS answer lacks %s", h)
				}
			}
			if !strings.Contains(hdr.Get("Allow"), "REGISTER") {
				t.Errorf("Allow: %q", hdr.Get("Allow"))
			}
		})
	}
	t.Run("TLS 1.1 refused", func(t *testing.T) {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", n.sipTLS,
			&tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
		if err == nil {
			conn.Close()
			t.Fatal("a TLS 1.1 handshake succeeded")
		}
	})
}
