package node

import (
	"crypto/tls"
	"errors"
	"net"
	"testing"

	"github.com/outpost-voice/outpost/internal/testpki"
)

// sipgo's own TLS dialling is shut: a handshake with the user agent's
// configuration fails, whatever the server's certificate, so a TLS
// connection toward an SBC is only ever the trunk connector's.
func TestUATLSConfigFailsClosed(t *testing.T) {
	ca := testpki.NewCA(t, "ca")
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{
		ca.Issue(t, testpki.Leaf{Hosts: []string{"127.0.0.1"}}).TLS}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	conf := uaTLSConfig()
	conf.RootCAs = ca.Pool // even a trusted server is refused
	if err := tls.Client(raw, conf).Handshake(); !errors.Is(err, errUADialsTLS) {
		t.Fatalf("handshake with the UA's TLS configuration = %v, want errUADialsTLS", err)
	}
}
