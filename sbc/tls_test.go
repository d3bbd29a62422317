package sbc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/internal/testpki"
)

// tlsSBC is a TLS server standing for an SBC: it presents cert, asks for a
// client certificate chaining to clients (nil: asks for none) and reports
// the serial of each client certificate it accepted.
type tlsSBC struct {
	addr    string
	serials chan string
}

func startTLSSBC(t *testing.T, cert tls.Certificate, clients *x509.CertPool, maxVersion uint16) *tlsSBC {
	t.Helper()
	conf := &tls.Config{Certificates: []tls.Certificate{cert}, MaxVersion: maxVersion, MinVersion: tls.VersionTLS10}
	if clients != nil {
		conf.ClientAuth, conf.ClientCAs = tls.RequireAndVerifyClientCert, clients
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &tlsSBC{addr: ln.Addr().String(), serials: make(chan string, 16)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := c.(*tls.Conn)
				_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
				if err := tc.Handshake(); err != nil {
					return
				}
				serial := "none"
				if pc := tc.ConnectionState().PeerCertificates; len(pc) > 0 {
					serial = pc[0].SerialNumber.String()
				}
				_, _ = tc.Write([]byte("ok\n"))
				s.serials <- serial
			}()
		}
	}()
	return s
}

// talk dials the SBC as trunk target and reads its greeting: with TLS 1.3
// a refused client certificate shows on the first read, not in the
// handshake.
func talk(t *testing.T, d *TLSDialer, target Target, addr string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := d.Dial(ctx, target, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 3)
	if _, err := c.Read(buf); err != nil {
		return err
	}
	if string(buf) != "ok\n" {
		return errors.New("unexpected greeting " + string(buf))
	}
	return nil
}

func TestTLSDialerDefaultFiles(t *testing.T) {
	dir := t.TempDir()
	serverCA, clientCA := testpki.NewCA(t, "sbc ca"), testpki.NewCA(t, "outpost ca")
	server := serverCA.Issue(t, testpki.Leaf{Hosts: []string{"sbc.test", "127.0.0.1"}})
	client := clientCA.Issue(t, testpki.Leaf{Hosts: []string{"outpost.test"}, Serial: 4242, Client: true})
	certFile, keyFile := client.WriteFiles(t, dir, "client")
	caFile := filepath.Join(dir, "ca.pem")
	testpki.Write(t, caFile, serverCA.CertPEM)
	mtls := startTLSSBC(t, server.TLS, clientCA.Pool, 0)
	plain := startTLSSBC(t, server.TLS, nil, 0)
	old := startTLSSBC(t, server.TLS, nil, tls.VersionTLS11)

	d, err := NewTLSDialer(TLSOptions{CertFile: certFile, KeyFile: keyFile, CAFile: caFile})
	if err != nil {
		t.Fatal(err)
	}
	byName := Target{TrunkID: "t1", Host: "sbc.test", Port: 5061, Transport: "tls"}
	byIP := Target{TrunkID: "t1", Host: "127.0.0.1", Port: 5061, Transport: "tls"}
	for _, tc := range []struct {
		name   string
		target Target
		addr   string
		want   string // "" ok, else part of the error
	}{
		{"mutual tls, verified by name", byName, mtls.addr, ""},
		{"mutual tls, verified by address", byIP, mtls.addr, ""},
		{"no client certificate asked", byName, plain.addr, ""},
		{"wrong name", Target{TrunkID: "t1", Host: "other.test", Transport: "tls"}, plain.addr, "certificate is valid for sbc.test"},
		{"tls 1.1 refused", byName, old.addr, "protocol version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := talk(t, d, tc.target, tc.addr)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("err = %v, want none", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
	if got := <-mtls.serials; got != "4242" {
		t.Errorf("the SBC saw client certificate %s, want serial 4242", got)
	}

	// Without the CA file the system's roots do not know the SBC's CA.
	bare, err := NewTLSDialer(TLSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = talk(t, bare, byName, plain.addr)
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) || !errors.Is(err, ErrTLS) {
		t.Errorf("err = %v, want an unknown authority marked ErrTLS", err)
	}
	// Without a client certificate the mutual-TLS SBC refuses us.
	if err := talk(t, bare, byName, mtls.addr); err == nil {
		t.Error("an SBC asking for a client certificate took a connection without one")
	}
}

func TestTLSDialerPerTrunkDirectory(t *testing.T) {
	dir, trunks := t.TempDir(), t.TempDir()
	caA, caB := testpki.NewCA(t, "ca a"), testpki.NewCA(t, "ca b")
	clientsA, clientsB := testpki.NewCA(t, "clients a"), testpki.NewCA(t, "clients b")
	sbcA := startTLSSBC(t, caA.Issue(t, testpki.Leaf{Hosts: []string{"a.test"}}).TLS, clientsA.Pool, 0)
	sbcB := startTLSSBC(t, caB.Issue(t, testpki.Leaf{Hosts: []string{"b.test"}}).TLS, clientsB.Pool, 0)
	certFile, keyFile := clientsA.Issue(t, testpki.Leaf{Hosts: []string{"outpost"}, Serial: 1, Client: true}).WriteFiles(t, dir, "a")
	caFile := filepath.Join(dir, "ca.pem")
	testpki.Write(t, caFile, caA.CertPEM)

	// Trunk tb has its own CA and client certificate; ta uses the defaults.
	tb := filepath.Join(trunks, "tb")
	if err := os.Mkdir(tb, 0o700); err != nil {
		t.Fatal(err)
	}
	b := clientsB.Issue(t, testpki.Leaf{Hosts: []string{"outpost"}, Serial: 2, Client: true})
	testpki.Write(t, filepath.Join(tb, TrunkCertFile), b.CertPEM)
	testpki.Write(t, filepath.Join(tb, TrunkKeyFile), b.KeyPEM)
	testpki.Write(t, filepath.Join(tb, TrunkCAFile), caB.CertPEM)

	d, err := NewTLSDialer(TLSOptions{CertFile: certFile, KeyFile: keyFile, CAFile: caFile, Dir: trunks})
	if err != nil {
		t.Fatal(err)
	}
	ta, tbT := Target{TrunkID: "ta", Host: "a.test"}, Target{TrunkID: "tb", Host: "b.test"}
	if err := talk(t, d, ta, sbcA.addr); err != nil {
		t.Fatalf("trunk ta: %v", err)
	}
	if err := talk(t, d, tbT, sbcB.addr); err != nil {
		t.Fatalf("trunk tb: %v", err)
	}
	if a, b := <-sbcA.serials, <-sbcB.serials; a != "1" || b != "2" {
		t.Errorf("client certificates seen: a %s, b %s; want 1 and 2", a, b)
	}
	// ta's CA does not vouch for tb's SBC, nor tb's for ta's.
	if err := talk(t, d, Target{TrunkID: "ta", Host: "b.test"}, sbcB.addr); err == nil {
		t.Error("trunk ta's CA accepted the certificate of a CA it does not hold")
	}
	if err := talk(t, d, Target{TrunkID: "tb", Host: "a.test"}, sbcA.addr); err == nil {
		t.Error("trunk tb's CA accepted the certificate of a CA it does not hold")
	}

	// A renewed certificate is picked up without a restart.
	renewed := clientsB.Issue(t, testpki.Leaf{Hosts: []string{"outpost"}, Serial: 3, Client: true})
	testpki.Write(t, filepath.Join(tb, TrunkKeyFile), renewed.KeyPEM)
	testpki.Write(t, filepath.Join(tb, TrunkCertFile), renewed.CertPEM)
	future := time.Now().Add(time.Minute) // a distinct mtime even on coarse clocks
	for _, f := range []string{TrunkKeyFile, TrunkCertFile} {
		if err := os.Chtimes(filepath.Join(tb, f), future, future); err != nil {
			t.Fatal(err)
		}
	}
	if err := talk(t, d, tbT, sbcB.addr); err != nil {
		t.Fatalf("trunk tb after renewal: %v", err)
	}
	if got := <-sbcB.serials; got != "3" {
		t.Errorf("after renewal the SBC saw serial %s, want 3", got)
	}

	// A broken directory says what is wrong, and is tried again once fixed.
	if err := os.Remove(filepath.Join(tb, TrunkKeyFile)); err != nil {
		t.Fatal(err)
	}
	err = talk(t, d, tbT, sbcB.addr)
	if !errors.Is(err, ErrTLS) || !strings.Contains(err.Error(), "cert.pem and key.pem go together") {
		t.Errorf("err = %v, want the missing key named", err)
	}
	testpki.Write(t, filepath.Join(tb, TrunkKeyFile), renewed.KeyPEM)
	if err := talk(t, d, tbT, sbcB.addr); err != nil {
		t.Errorf("trunk tb once fixed: %v", err)
	}
	// A CA file overwritten with junk (a renewal half written) is logged
	// and the CAs loaded before go on serving.
	testpki.Write(t, filepath.Join(tb, TrunkCAFile), []byte("not a certificate\n"))
	if err := os.Chtimes(filepath.Join(tb, TrunkCAFile), future, future); err != nil {
		t.Fatal(err)
	}
	if err := talk(t, d, tbT, sbcB.addr); err != nil {
		t.Errorf("trunk tb with a junk CA file over a good one: %v", err)
	}
}

func TestNewTLSDialerRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "ca")
	certFile, keyFile := ca.Issue(t, testpki.Leaf{Hosts: []string{"x"}, Client: true}).WriteFiles(t, dir, "c")
	junk := filepath.Join(dir, "junk.pem")
	testpki.Write(t, junk, []byte("junk"))
	for _, tc := range []struct {
		o    TLSOptions
		want string
	}{
		{TLSOptions{CertFile: certFile}, "go together"},
		{TLSOptions{CertFile: certFile, KeyFile: junk}, "sbc.tls_key"},
		{TLSOptions{CertFile: junk, KeyFile: keyFile}, "sbc.tls_cert"},
		{TLSOptions{CAFile: junk}, "sbc.tls_ca"},
		{TLSOptions{CAFile: filepath.Join(dir, "none.pem")}, "no such file"},
	} {
		_, err := NewTLSDialer(tc.o)
		if !errors.Is(err, ErrTLS) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewTLSDialer(%+v) = %v, want ErrTLS naming %q", tc.o, err, tc.want)
		}
	}
}
