package certfile_test

import (
	"crypto/tls"
	"net"
	"testing"

	"github.com/outpost-voice/outpost/internal/certfile"
	"github.com/outpost-voice/outpost/internal/testpki"
)

// handshake runs a TLS 1.2 handshake between a server offering suites and a
// client offering only clientSuites, over an in-memory pipe, and returns the
// client's error and the suite agreed.
func handshake(t *testing.T, suites, clientSuites []uint16) (uint16, error) {
	t.Helper()
	leaf := testpki.SelfSigned(t, "node.example")
	c, s := net.Pipe()
	defer c.Close()
	defer s.Close()
	srv := tls.Server(s, &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: suites,
		Certificates: []tls.Certificate{leaf.TLS}})
	go func() { _ = srv.Handshake(); s.Close() }()
	cl := tls.Client(c, &tls.Config{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12,
		CipherSuites: clientSuites, InsecureSkipVerify: true})
	err := cl.Handshake()
	return cl.ConnectionState().CipherSuite, err
}

// A client that offers only CBC suites is refused unless the server's list
// includes them; an AEAD client gets an AEAD suite either way.
func TestServerSuites(t *testing.T) {
	if _, err := handshake(t, certfile.ServerSuites(false), certfile.CBCSuites); err == nil {
		t.Error("a CBC-only TLS 1.2 client completed a handshake with the AEAD-only server")
	}
	got, err := handshake(t, certfile.ServerSuites(true), certfile.CBCSuites)
	if err != nil {
		t.Fatalf("a CBC-only client with sip.tls_cbc_ciphers on: %v", err)
	}
	if name := tls.CipherSuiteName(got); name != "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA" {
		t.Errorf("CBC client agreed %s, want TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", name)
	}
	for _, cbc := range []bool{false, true} {
		got, err := handshake(t, certfile.ServerSuites(cbc), nil) // Go's default client list
		if err != nil {
			t.Fatalf("cbc %v: a default client: %v", cbc, err)
		}
		if name := tls.CipherSuiteName(got); name != "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" {
			t.Errorf("cbc %v: a default client agreed %s, want an AES-GCM suite", cbc, name)
		}
	}
}
