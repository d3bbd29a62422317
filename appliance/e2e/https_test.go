package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

const hstsValue = "max-age=31536000"

// HTTPS on the node (http.tls_listen with no certificate given): the node
// makes a self-signed certificate in its data directory and serves the
// API, the UI and the widget over TLS 1.2+ beside plain HTTP; responses
// over HTTPS carry HSTS, plain ones do not; the UI's cookies are Secure
// over HTTPS; a restart keeps the certificate.
func TestHTTPSSelfSigned(t *testing.T) {
	n := startNode(t, "https", nodeOpts{
		bootstrapSnapshot: writeFile(t, "demo.json", demoSnapshot(t)),
		env:               []string{"OUTPOST_HTTP_TLS_LISTEN=127.0.0.1:0"},
	})
	waitRevision(t, []*node{n}, 1)
	httpsAddr := httpsAddrOf(t, n)

	tlsDir := filepath.Join(n.dir, "data", "http-tls")
	certPEM, err := os.ReadFile(filepath.Join(tlsDir, "cert.pem"))
	if err != nil {
		t.Fatalf("the self-signed certificate: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(tlsDir, "key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key.pem: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	if !strings.Contains(n.log(), "self-signed https certificate made") {
		t.Errorf("the first start did not log making the certificate:\n%s", n.log())
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(certPEM) {
		t.Fatalf("cert.pem holds no certificate:\n%s", certPEM)
	}
	c := httpsClient(pool, nil)
	base := "https://" + httpsAddr

	// /readyz over HTTPS, HTTP/2, with HSTS; over plain HTTP without.
	resp := get(t, c, base+"/readyz")
	if resp.StatusCode != http.StatusOK || resp.TLS == nil {
		t.Fatalf("GET %s/readyz: %d, TLS %v", base, resp.StatusCode, resp.TLS != nil)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("GET /readyz over HTTPS: %s, want HTTP/2", resp.Proto)
	}
	if got := resp.Header.Get("Strict-Transport-Security"); got != hstsValue {
		t.Errorf("HSTS over HTTPS = %q, want %q", got, hstsValue)
	}
	plain := get(t, http.DefaultClient, "http://"+n.httpAddr+"/readyz")
	if plain.StatusCode != http.StatusOK {
		t.Errorf("GET /readyz over plain HTTP: %d", plain.StatusCode)
	}
	if got := plain.Header.Get("Strict-Transport-Security"); got != "" {
		t.Errorf("HSTS over plain HTTP = %q, want none", got)
	}
	// The API too (a path of the UI has it as well: one middleware).
	if resp := get(t, c, base+"/login"); resp.Header.Get("Strict-Transport-Security") != hstsValue {
		t.Errorf("GET /login over HTTPS: HSTS %q", resp.Header.Get("Strict-Transport-Security"))
	}

	// TLS 1.1 and older are refused, at the handshake and through HTTP.
	old := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
	if conn, err := tls.Dial("tcp", httpsAddr, old); err == nil {
		conn.Close()
		t.Error("a TLS 1.1 handshake succeeded")
	}
	if resp, err := httpsClient(pool, old).Get(base + "/readyz"); err == nil {
		resp.Body.Close()
		t.Error("GET /readyz with TLS 1.1 at most succeeded")
	}
	// An untrusting client refuses the self-signed certificate.
	if resp, err := httpsClient(x509.NewCertPool(), nil).Get(base + "/readyz"); err == nil {
		resp.Body.Close()
		t.Error("a client not trusting the self-signed certificate got through")
	}

	// Sign in to the UI over HTTPS: the cookies are Secure, HttpOnly and
	// SameSite=Strict.
	session := signInHTTPS(t, n, pool, base)
	if !session.Secure || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode {
		t.Errorf("session cookie over HTTPS: Secure %v, HttpOnly %v, SameSite %v; want all three (Strict)",
			session.Secure, session.HttpOnly, session.SameSite)
	}
	// Over plain HTTP the same form's cookie is not Secure (the browser
	// would drop it).
	if ck := cookieNamed(get(t, http.DefaultClient, "http://"+n.httpAddr+"/login"), "outpost_login"); ck == nil || ck.Secure {
		t.Errorf("sign-in form cookie over plain HTTP: %+v, want one, not Secure", ck)
	}

	// A restart keeps the certificate and serves it again.
	if err := n.stop(); err != nil {
		t.Fatalf("stop: %v\n%s", err, n.log())
	}
	n.restart()
	httpsAddr = httpsAddrOf(t, n)
	if again, _ := os.ReadFile(filepath.Join(tlsDir, "cert.pem")); !bytes.Equal(again, certPEM) {
		t.Error("the restart made a new certificate")
	}
	if strings.Contains(n.log(), "self-signed https certificate made") {
		t.Errorf("the restart logged making a certificate:\n%s", n.log())
	}
	eventually(t, 30*time.Second, "ready over HTTPS after the restart", func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+httpsAddr+"/readyz", nil)
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
}

// httpsAddrOf is the node's HTTPS address from its status (https_addr).
func httpsAddrOf(t *testing.T, n *node) string {
	t.Helper()
	var addr string
	eventually(t, 30*time.Second, "status.https_addr", func(ctx context.Context) error {
		st, err := n.status(ctx)
		if err != nil {
			return err
		}
		if st.HTTPSAddr == "" {
			return fmt.Errorf("no https_addr in the status")
		}
		addr = st.HTTPSAddr
		return nil
	})
	return addr
}

// httpsClient trusts pool; conf, when given, is its TLS configuration.
func httpsClient(pool *x509.CertPool, conf *tls.Config) *http.Client {
	if conf == nil {
		conf = &tls.Config{RootCAs: pool}
	}
	return &http.Client{
		Timeout:   20 * time.Second,
		Transport: &http.Transport{TLSClientConfig: conf, ForceAttemptHTTP2: true},
	}
}

// get answers GET url, its body read and closed.
func get(t *testing.T, c *http.Client, url string) *http.Response {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func cookieNamed(resp *http.Response, name string) *http.Cookie {
	for _, ck := range resp.Cookies() {
		if ck.Name == name {
			return ck
		}
	}
	return nil
}

// signInHTTPS signs the demo admin in at base over HTTPS, as a browser
// does (the form, its token, the cookie), and returns the session cookie
// as the node set it.
func signInHTTPS(t *testing.T, n *node, pool *x509.CertPool, base string) *http.Cookie {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := httpsClient(pool, nil)
	c.Jar = jar
	resp, err := c.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if ck := cookieNamed(resp, "outpost_login"); ck == nil || !ck.Secure || !ck.HttpOnly {
		t.Errorf("sign-in form cookie over HTTPS: %+v, want Secure and HttpOnly", ck)
	}
	m := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("no form token in the sign-in page:\n%s", page)
	}
	// The answer to the form itself, to see the cookie it sets.
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err = c.PostForm(base+"/login", url.Values{"username": {demoAdmin}, "password": {demoAdminPW}, "csrf_token": {string(m[1])}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in over HTTPS: %d, want 303\nnode log:\n%s", resp.StatusCode, n.log())
	}
	session := cookieNamed(resp, "outpost_session")
	if session == nil {
		t.Fatalf("sign-in over HTTPS set no outpost_session cookie: %q", resp.Header.Values("Set-Cookie"))
	}
	// The browser then shows the signed-in page.
	c.CheckRedirect = nil
	resp, err = c.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(page, []byte(`id="signed-in-as">`+demoAdmin+`<`)) {
		t.Fatalf("the status page after sign-in over HTTPS: %d\n%s", resp.StatusCode, page)
	}
	return session
}
