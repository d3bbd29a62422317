package node

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/config"
	"github.com/outpost-voice/outpost/internal/certfile"
)

func TestSelfSignedNames(t *testing.T) {
	c := config.Config{
		SIP:  config.SIP{Advertise: "pbx.acme.example:5060"},
		HTTP: config.HTTP{Advertise: "10.0.0.9:8080", TLSListen: "0.0.0.0:443"},
	}
	ifaddrs := []net.Addr{
		ipNet("127.0.0.1/8"), ipNet("10.0.0.5/24"), ipNet("fe80::1/64"), ipNet("fd00::5/64"),
		ipNet("::1/128"), ipNet("169.254.1.1/16"), ipNet("10.0.0.9/24"), &net.IPAddr{IP: net.ParseIP("192.0.2.1")},
	}
	got := selfSignedNames(c, "node-1", ifaddrs)
	want := []string{"node-1", "pbx.acme.example", "10.0.0.9", "localhost", "127.0.0.1", "::1", "10.0.0.5", "fd00::5"}
	if !slices.Equal(got, want) {
		t.Errorf("selfSignedNames = %q, want %q", got, want)
	}

	// A specific tls_listen host is named; a host name unfit for a
	// certificate is left out.
	c = config.Config{SIP: config.SIP{Advertise: "[fd00::7]"}, HTTP: config.HTTP{TLSListen: "192.0.2.10:8443"}}
	got = selfSignedNames(c, "bad host", nil)
	want = []string{"fd00::7", "192.0.2.10", "localhost", "127.0.0.1", "::1"}
	if !slices.Equal(got, want) {
		t.Errorf("selfSignedNames = %q, want %q", got, want)
	}
}

func ipNet(cidr string) *net.IPNet {
	ip, n, err := net.ParseCIDR(cidr)
	if err != nil {
		panic(err)
	}
	n.IP = ip
	return n
}

// logBuffer is a logger's output, safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.b.String()
	l.b.Reset()
	return s
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// The self-signed certificate: made once with the names, the key usage
// and the file modes wanted; reused while it loads; made again when a
// file is missing, the key is damaged or the certificate has expired.
func TestEnsureSelfSigned(t *testing.T) {
	var logs logBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	dir := filepath.Join(t.TempDir(), "data", "http-tls")
	names := []string{"node-1", "localhost", "127.0.0.1", "::1", "10.0.0.5"}
	now := time.Now()

	certPath, keyPath, err := ensureSelfSigned(dir, names, now, log)
	if err != nil {
		t.Fatal(err)
	}
	if certPath != filepath.Join(dir, "cert.pem") || keyPath != filepath.Join(dir, "key.pem") {
		t.Errorf("paths %s, %s", certPath, keyPath)
	}
	if out := logs.take(); !strings.Contains(out, "self-signed https certificate made") || !strings.Contains(out, "names=node-1,localhost,127.0.0.1,::1,10.0.0.5") {
		t.Errorf("log of the first making:\n%s", out)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, keyPath: 0o600, certPath: 0o644} {
		if fi, err := os.Stat(path); err != nil || fi.Mode() != want {
			t.Errorf("%s: mode %v (%v), want %v", path, fi.Mode(), err, want)
		}
	}
	certPEM := readFile(t, certPath)
	leaf := parseCertPEM(t, certPEM)
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key %T, want ECDSA P-256", leaf.PublicKey)
	}
	if !slices.Equal(leaf.DNSNames, []string{"node-1", "localhost"}) {
		t.Errorf("DNS names %q", leaf.DNSNames)
	}
	var ips []string
	for _, ip := range leaf.IPAddresses {
		ips = append(ips, ip.String())
	}
	if !slices.Equal(ips, []string{"127.0.0.1", "::1", "10.0.0.5"}) {
		t.Errorf("IP addresses %q", ips)
	}
	if leaf.KeyUsage != x509.KeyUsageDigitalSignature || !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("key usage %v, extended %v; want digital signature, server auth", leaf.KeyUsage, leaf.ExtKeyUsage)
	}
	if leaf.IsCA || !leaf.BasicConstraintsValid {
		t.Error("the certificate may act as a CA")
	}
	if got := leaf.NotAfter.Sub(now); got < 10*365*24*time.Hour || got > 10*366*24*time.Hour {
		t.Errorf("valid for %v after now, want 10 years", got)
	}
	if leaf.SerialNumber == nil || leaf.SerialNumber.Sign() <= 0 {
		t.Errorf("serial %v", leaf.SerialNumber)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	for _, name := range []string{"node-1", "localhost", "127.0.0.1", "10.0.0.5"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("verify for %s: %v", name, err)
		}
	}
	keyBlock, _ := pem.Decode(readFile(t, keyPath))
	if keyBlock == nil || keyBlock.Type != "PRIVATE KEY" {
		t.Fatalf("key.pem holds no PKCS#8 PRIVATE KEY block")
	}

	// Reused: the same certificate, nothing made, whatever names are asked.
	if _, _, err := ensureSelfSigned(dir, []string{"other"}, now.Add(time.Hour), log); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, certPath), certPEM) {
		t.Error("a second start made a new certificate")
	}
	if out := logs.take(); out != "" {
		t.Errorf("a second start logged:\n%s", out)
	}

	// A damaged key: made again, and said loudly.
	if err := os.WriteFile(keyPath, []byte("-----BEGIN PRIVATE KEY-----\ngarbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ensureSelfSigned(dir, names, now, log); err != nil {
		t.Fatal(err)
	}
	out := logs.take()
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "unusable; making a new one") || !strings.Contains(out, "self-signed https certificate made") {
		t.Errorf("log of the remaking:\n%s", out)
	}
	second := readFile(t, certPath)
	if bytes.Equal(second, certPEM) {
		t.Error("a damaged key did not make a new certificate")
	}
	if _, err := tls.LoadX509KeyPair(certPath, keyPath); err != nil {
		t.Errorf("the new pair does not load: %v", err)
	}
	if fi, err := os.Stat(keyPath); err != nil || fi.Mode() != 0o600 {
		t.Errorf("new key mode %v (%v), want 0600", fi.Mode(), err)
	}

	// A missing certificate: made again.
	if err := os.Remove(certPath); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ensureSelfSigned(dir, names, now, log); err != nil {
		t.Fatal(err)
	}
	if out := logs.take(); !strings.Contains(out, "making a self-signed https certificate") || strings.Contains(out, "level=WARN") {
		t.Errorf("log of making a missing certificate:\n%s", out)
	}
	third := readFile(t, certPath)
	if bytes.Equal(third, second) {
		t.Error("a missing certificate was not made again")
	}

	// Expired: made again.
	if _, _, err := ensureSelfSigned(dir, names, now.AddDate(11, 0, 0), log); err != nil {
		t.Fatal(err)
	}
	if out := logs.take(); !strings.Contains(out, "expired") {
		t.Errorf("log of remaking an expired certificate:\n%s", out)
	}
	if bytes.Equal(readFile(t, certPath), third) {
		t.Error("an expired certificate was not made again")
	}

	// No temporary file is left behind.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		files = append(files, e.Name())
	}
	if !slices.Equal(files, []string{"cert.pem", "key.pem"}) {
		t.Errorf("files in %s: %q", dir, files)
	}
}

func parseCertPEM(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		t.Fatalf("no CERTIFICATE block in %q", data)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The HTTPS listener's TLS: 1.2 or later, HTTP/2 offered.
func TestHTTPSConfig(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	certPath, keyPath, err := ensureSelfSigned(dir, []string{"localhost", "127.0.0.1"}, time.Now(), log)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := certfile.LoadPair(certfile.File{Path: certPath, Label: "cert"}, certfile.File{Path: keyPath, Label: "key"}, log)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", httpsConfig(pair))
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
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(readFile(t, certPath))
	dial := func(conf *tls.Config) (tls.ConnectionState, error) {
		conf.RootCAs, conf.ServerName = pool, "127.0.0.1"
		c, err := tls.Dial("tcp", ln.Addr().String(), conf)
		if err != nil {
			return tls.ConnectionState{}, err
		}
		defer c.Close()
		return c.ConnectionState(), nil
	}
	st, err := dial(&tls.Config{NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != tls.VersionTLS13 || st.NegotiatedProtocol != "h2" {
		t.Errorf("version %x, protocol %q; want TLS 1.3 and h2", st.Version, st.NegotiatedProtocol)
	}
	if _, err := dial(&tls.Config{MaxVersion: tls.VersionTLS12}); err != nil {
		t.Errorf("TLS 1.2 refused: %v", err)
	}
	if _, err := dial(&tls.Config{MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Error("TLS 1.1 accepted")
	}
}
