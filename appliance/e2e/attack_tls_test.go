package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/internal/testpki"
)

// testssl runs Debian's testssl.sh (protocols and cipher categories)
// against addr and returns its findings by id (SSLv3, TLS1_1,
// cipherlist_NULL...).
func testssl(t *testing.T, addr string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, "testssl.json")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "testssl", "--quiet", "--color", "0", "--warnings", "off", "-p", "-s", "--jsonfile", out, addr)
	cmd.Dir = dir
	log, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("testssl %s did not end within 3 minutes:\n%s", addr, log)
	}
	data, rerr := os.ReadFile(out)
	if rerr != nil {
		t.Fatalf("testssl %s wrote no findings (%v, %v):\n%s", addr, err, rerr, log)
	}
	var findings []struct{ ID, Finding string }
	if err := json.Unmarshal(data, &findings); err != nil {
		t.Fatalf("testssl findings: %v\n%s", err, data)
	}
	got := map[string]string{}
	for _, f := range findings {
		got[f.ID] = f.Finding
	}
	return got
}

// legacySBC is a TLS server on addr that speaks at most maxVersion and
// records how each handshake went.
type legacySBC struct {
	mu      sync.Mutex
	results []string // per connection: the version agreed, or the handshake error
}

func startTLSServer(t *testing.T, addr string, cert tls.Certificate, minVersion, maxVersion uint16) *legacySBC {
	t.Helper()
	ln, err := tls.Listen("tcp", addr, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: minVersion, MaxVersion: maxVersion})
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &legacySBC{}
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
				res := ""
				if err := tc.Handshake(); err != nil {
					res = "error: " + err.Error()
				} else {
					res = tls.VersionName(tc.ConnectionState().Version)
				}
				s.mu.Lock()
				s.results = append(s.results, res)
				s.mu.Unlock()
			}()
		}
	}()
	return s
}

func (s *legacySBC) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.results...)
}

// TLS 1.2 or later everywhere the node speaks TLS:
//   - testssl.sh (Debian) finds SSLv2, SSLv3, TLS 1.0 and 1.1 not offered
//     on SIP TLS and on HTTPS (the self-signed certificate the node makes
//     at first start), TLS 1.2 (and 1.3) offered, and no NULL, anonymous,
//     export, LOW, 3DES or IDEA cipher;
//   - toward the trunks, an SBC that speaks only TLS 1.0–1.1 gets no
//     handshake (the trunk is down: "protocol version"), and one that
//     speaks TLS 1.2+ agrees on TLS 1.3.
func TestAttackTLS(t *testing.T) {
	ca := testpki.NewCA(t, "sbc ca")
	dir := t.TempDir()
	caFile := filepath.Join(dir, "sbc-ca.pem")
	testpki.Write(t, caFile, ca.CertPEM)
	const legacyIP, modernIP = "127.0.0.91", "127.0.0.92"
	legacy := startTLSServer(t, legacyIP+":5061", ca.Issue(t, testpki.Leaf{Hosts: []string{legacyIP}}).TLS, tls.VersionTLS10, tls.VersionTLS11)
	modern := startTLSServer(t, modernIP+":5061", ca.Issue(t, testpki.Leaf{Hosts: []string{modernIP}}).TLS, tls.VersionTLS12, 0)
	snap := withRevision(t, demoSnapshot(t), 1, func(m map[string]any) {
		for i, tr := range m["trunks"].([]any) {
			tr := tr.(map[string]any)
			tr["host"] = []string{legacyIP, modernIP}[i]
			tr["port"] = 5061
			tr["transport"] = "tls"
			tr["options_interval_s"] = 1
		}
	})
	cert, key := selfSigned(t)
	n := startNode(t, "tls", nodeOpts{
		bootstrapSnapshot: writeFile(t, "account.json", snap),
		tlsCert:           cert, tlsKey: key, logLevel: "info",
		env:   []string{"OUTPOST_HTTP_TLS_LISTEN=127.0.0.1:0"},
		extra: fmt.Sprintf("\nsbc:\n  tls_ca: %s\n", caFile),
	})
	waitRevision(t, []*node{n}, 1)
	var report []string

	// Toward the SBCs.
	eventually(t, 30*time.Second, "the TLS 1.1 SBC's trunk down for its protocol version", func(ctx context.Context) error {
		st, err := n.status(ctx)
		if err != nil {
			return err
		}
		for _, tr := range st.Trunks {
			if tr.ID == "sbc-hq-1" && tr.State == "down" && strings.Contains(tr.LastError, "protocol version") {
				return nil
			}
		}
		return fmt.Errorf("trunks %+v", st.Trunks)
	})
	for _, r := range legacy.seen() {
		if !strings.HasPrefix(r, "error: ") {
			t.Errorf("the TLS 1.1 SBC completed a handshake with the node: %s", r)
		}
	}
	eventually(t, 30*time.Second, "a handshake with the TLS 1.2+ SBC", func(context.Context) error {
		for _, r := range modern.seen() {
			if r == "TLS 1.3" || r == "TLS 1.2" {
				return nil
			}
		}
		return fmt.Errorf("handshakes: %v", modern.seen())
	})
	report = append(report, fmt.Sprintf("trunk to a TLS 1.0–1.1 SBC: %s", first(legacy.seen())),
		fmt.Sprintf("trunk to a TLS 1.2+ SBC: %s", first(modern.seen())))

	// The listeners, with testssl.sh.
	if _, err := exec.LookPath("testssl"); err != nil {
		t.Logf("TLS toward the SBCs:\n  %s", strings.Join(report, "\n  "))
		t.Skip("testssl.sh is not installed (make deps installs the Debian package testssl.sh): the listeners were not scanned")
	}
	for _, l := range []struct{ name, addr string }{{"SIP TLS", n.sipTLS}, {"HTTPS", httpsAddrOf(t, n)}} {
		f := testssl(t, l.addr)
		for _, id := range []string{"SSLv2", "SSLv3", "TLS1", "TLS1_1", "cipherlist_NULL", "cipherlist_aNULL",
			"cipherlist_EXPORT", "cipherlist_LOW", "cipherlist_3DES_IDEA", "cipherlist_AVERAGE"} {
			if f[id] != "not offered" {
				t.Errorf("%s (%s): testssl finds %s %q, want not offered", l.name, l.addr, id, f[id])
			}
		}
		if !strings.HasPrefix(f["TLS1_2"], "offered") {
			t.Errorf("%s: testssl finds TLS 1.2 %q, want offered", l.name, f["TLS1_2"])
		}
		report = append(report, fmt.Sprintf("%s: SSLv2 %s, SSLv3 %s, TLS 1.0 %s, TLS 1.1 %s, TLS 1.2 %s, TLS 1.3 %s; NULL/aNULL/EXPORT/LOW/3DES and obsolete CBC not offered; strong AEAD %s",
			l.name, f["SSLv2"], f["SSLv3"], f["TLS1"], f["TLS1_1"], f["TLS1_2"], f["TLS1_3"], f["cipherlist_STRONG"]))
	}
	t.Logf("TLS at %s:\n  %s", n.id, strings.Join(report, "\n  "))
}

func first(s []string) string {
	if len(s) == 0 {
		return "no connection"
	}
	return s[0]
}
