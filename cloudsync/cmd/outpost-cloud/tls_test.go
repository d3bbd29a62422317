package main

import (
	"crypto/tls"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/internal/testpki"
)

// testCA is a certificate authority made for a test.
type testCA struct{ *testpki.CA }

func newTestCA(t *testing.T) *testCA { return &testCA{testpki.NewCA(t, "outpost-cloud test CA")} }

// issue makes a certificate for 127.0.0.1 with serial, and returns its
// PEM certificate and key.
func (ca *testCA) issue(t *testing.T, serial int64) (certPEM, keyPEM []byte) {
	i := ca.Issue(t, testpki.Leaf{Hosts: []string{"127.0.0.1"}, Serial: serial})
	return i.CertPEM, i.KeyPEM
}

// writeAt writes a file and dates it at: a renewal comes later than the
// first issue, whatever the file system's time granularity.
func writeAt(t *testing.T, path string, data []byte, at time.Time) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, at, at); err != nil {
		t.Fatal(err)
	}
}

// servedSerial opens a new TLS connection trusting ca only and returns
// the serial number of the certificate served.
func servedSerial(t *testing.T, addr string, ca *testCA) int64 {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool})
	if err != nil {
		t.Fatalf("TLS to %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

func TestServeTLSFlagErrors(t *testing.T) {
	dir := t.TempDir()
	token := writeFile(t, dir, "token", "secret\n")
	ca := newTestCA(t)
	certPEM, keyPEM := ca.issue(t, 2)
	_, otherKey := ca.issue(t, 3)
	cert := writeFile(t, dir, "cert.pem", string(certPEM))
	key := writeFile(t, dir, "key.pem", string(keyPEM))
	base := func(db string, extra ...string) []string {
		return append([]string{"serve", "--listen", "127.0.0.1:0", "--db", filepath.Join(dir, db), "--admin-token-file", token}, extra...)
	}
	for _, args := range [][]string{base("a.db", "--tls-cert", cert), base("b.db", "--tls-key", key)} {
		_, stderr, code := runCLI(t, args...)
		if code != 2 || !strings.Contains(stderr, "--tls-cert and --tls-key go together") {
			t.Errorf("%q: exit %d, stderr %q; want 2 saying both go together", args, code, stderr)
		}
	}
	for _, tt := range []struct {
		args []string
		want string // the file named
	}{
		{base("c.db", "--tls-cert", filepath.Join(dir, "none.pem"), "--tls-key", key), "--tls-cert: stat " + filepath.Join(dir, "none.pem") + ": no such file"},
		{base("d.db", "--tls-cert", cert, "--tls-key", filepath.Join(dir, "none.key")), "--tls-key: stat " + filepath.Join(dir, "none.key") + ": no such file"},
		{base("e.db", "--tls-cert", key, "--tls-key", key), "--tls-cert " + key + ": no PEM CERTIFICATE block"},
		{base("f.db", "--tls-cert", writeFile(t, dir, "junk.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), "--tls-key", key),
			"--tls-cert " + filepath.Join(dir, "junk.pem") + ": x509: "},
		{base("g.db", "--tls-cert", cert, "--tls-key", writeFile(t, dir, "other.key", string(otherKey))),
			"--tls-key " + filepath.Join(dir, "other.key") + " (for --tls-cert " + cert + "): tls: private key does not match public key"},
		{base("h.db", "--tls-cert", cert, "--tls-key", cert), "--tls-key " + cert},
	} {
		_, stderr, code := runCLI(t, tt.args...)
		if code != 1 || strings.Count(strings.TrimRight(stderr, "\n"), "\n") != 0 || !strings.Contains(stderr, tt.want) {
			t.Errorf("%q: exit %d, stderr %q; want 1 and one line with %q", tt.args, code, stderr, tt.want)
		}
	}
}

// With --tls-cert and --tls-key, serve speaks HTTPS only, TLS 1.2 or
// later; a renewed certificate is served from the next handshake on; a
// renewal half written keeps the certificate before; SIGTERM still stops
// it cleanly.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	token := writeFile(t, dir, "token", "tok-123\n")
	ca := newTestCA(t)
	certPEM, keyPEM := ca.issue(t, 100)
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	t0 := time.Now().Add(-time.Hour)
	writeAt(t, cert, certPEM, t0)
	writeAt(t, key, keyPEM, t0)

	addr, stop := startServe(t, "--db", filepath.Join(dir, "cloud.db"), "--admin-token-file", token,
		"--tls-cert", cert, "--tls-key", key, "--log-format", "json")
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool}}}
	resp, err := hc.Get("https://" + addr + "/livez")
	if err != nil {
		t.Fatalf("livez over HTTPS: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
		t.Errorf("livez over HTTPS: %d, %+v", resp.StatusCode, resp.TLS)
	}
	hc.CloseIdleConnections()
	if resp, err := http.Get("http://" + addr + "/livez"); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("plain HTTP to the HTTPS listener: %v, %v; want 400", resp, err)
	} else {
		resp.Body.Close()
	}
	if conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool, MaxVersion: tls.VersionTLS11}); err == nil {
		conn.Close()
		t.Error("a TLS 1.1 handshake succeeded")
	}
	if got := servedSerial(t, addr, ca); got != 100 {
		t.Fatalf("serial %d served, want 100", got)
	}

	// A renewal half written (the new certificate, the old key) is not
	// served; once the key follows, the new certificate is.
	newCert, newKey := ca.issue(t, 101)
	writeAt(t, cert, newCert, t0.Add(time.Minute))
	for range 2 {
		if got := servedSerial(t, addr, ca); got != 100 {
			t.Errorf("serial %d served with a mismatched key, want 100 still", got)
		}
	}
	writeAt(t, key, newKey, t0.Add(time.Minute))
	if got := servedSerial(t, addr, ca); got != 101 {
		t.Errorf("serial %d served after the renewal, want 101", got)
	}
	// Files gone (a renewal tool between removing and writing) leave the
	// certificate loaded being served.
	if err := os.Remove(key); err != nil {
		t.Fatal(err)
	}
	if got := servedSerial(t, addr, ca); got != 101 {
		t.Errorf("serial %d served with the key file gone, want 101", got)
	}

	exit, log := stop()
	for _, want := range []string{`"url":"https://` + addr + `"`, `"msg":"tls certificate loaded"`,
		`"msg":"tls certificate files changed but do not load; using the one loaded before"`,
		`"msg":"tls certificate reloaded"`, `"msg":"tls certificate files unreadable; using the one loaded before"`, `"msg":"stopped"`, `"level":"WARN","msg":"http: TLS handshake error`} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s", want)
		}
	}
	if n := strings.Count(log, "do not load"); n != 1 {
		t.Errorf("the half-written renewal logged %d times, want once", n)
	}
	if exit != 0 {
		t.Errorf("serve: exit %d, log:\n%s", exit, log)
	}
}
