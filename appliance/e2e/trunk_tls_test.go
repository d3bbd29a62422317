package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/outpost-voice/outpost/internal/testpki"
)

// The TLS trunk test's SBC: Kamailio on its own loopback address, mutual
// TLS on two ports (one per trunk), and the PSTN behind it (a SIPp).
const (
	tlsSBCIP       = "127.0.0.7"
	tlsSBCPort     = 5061 // trunk sbc-hq-1: Outpost trusts the SBC's CA
	tlsSBCBadPort  = 5062 // trunk sbc-hq-2: its tls_dir CA is another one
	tlsSBCUDPPort  = 5060 // Kamailio toward the PSTN
	tlsPSTNPort    = 5070 // the SIPp behind it
	tlsClientName  = "outpost-hq"
	tlsSBCHostName = "sbc-tls.test"
)

// tlsTrunkSnapshot points the HQ trunks at the TLS SBC.
func tlsTrunkSnapshot(t *testing.T) []byte {
	return withRevision(t, demoSnapshot(t), 1, func(m map[string]any) {
		for i, tr := range m["trunks"].([]any) {
			tr := tr.(map[string]any)
			tr["host"] = tlsSBCIP
			tr["port"] = []int{tlsSBCPort, tlsSBCBadPort}[i]
			tr["transport"] = "tls"
			tr["options_interval_s"] = 1
		}
	})
}

// startTLSSBC starts Kamailio as the SBC: its certificate from sbcCA
// (names sbc-tls.test and its address), client certificates required and
// checked against clientCA.
func startTLSSBC(t *testing.T, sbcCA, clientCA *testpki.CA) {
	t.Helper()
	bin, err := kamailioBin()
	if err != nil {
		t.Fatalf("kamailio is not installed (make deps installs it): %v", err)
	}
	dir := t.TempDir()
	cert, key := sbcCA.Issue(t, testpki.Leaf{Hosts: []string{tlsSBCHostName, tlsSBCIP}}).WriteFiles(t, dir, "sbc")
	clientCAFile := filepath.Join(dir, "clients-ca.pem")
	testpki.Write(t, clientCAFile, clientCA.CertPEM)
	tlsCfg := filepath.Join(dir, "tls.cfg")
	testpki.Write(t, tlsCfg, []byte(fmt.Sprintf(`[server:default]
method = TLSv1.2+
verify_certificate = yes
require_certificate = yes
private_key = %s
certificate = %s
ca_list = %s

[client:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
`, key, cert, clientCAFile)))
	tmpl, err := template.ParseFiles(filepath.Join("testdata", "kamailio", "sbc-tls.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg bytes.Buffer
	err = tmpl.Execute(&cfg, struct {
		TLSListen                       []string
		UDPListen, PSTN, TLSConfig, Dir string
	}{
		TLSListen: []string{fmt.Sprintf("%s:%d", tlsSBCIP, tlsSBCPort), fmt.Sprintf("%s:%d", tlsSBCIP, tlsSBCBadPort)},
		UDPListen: fmt.Sprintf("%s:%d", tlsSBCIP, tlsSBCUDPPort),
		PSTN:      fmt.Sprintf("%s:%d", tlsSBCIP, tlsPSTNPort),
		TLSConfig: tlsCfg, Dir: dir,
	})
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "kamailio.cfg")
	testpki.Write(t, cfgPath, cfg.Bytes())
	_, done, logs := runKamailio(t, bin, "-DD", "-E", "-f", cfgPath, "-P", filepath.Join(dir, "kamailio.pid"))
	eventually(t, 20*time.Second, "kamailio listening on TLS", func(context.Context) error {
		select {
		case <-done:
			return fmt.Errorf("kamailio exited:\n%s", logs)
		default:
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("%s:%d", tlsSBCIP, tlsSBCPort), time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// TestTrunkTLS calls out through an SBC reached over mutual TLS: the SBC
// checks Outpost's client certificate, Outpost checks the SBC's against
// the trunk's CA (and refuses a trunk whose CA does not vouch for it).
func TestTrunkTLS(t *testing.T) {
	sbcCA, clientCA, otherCA := testpki.NewCA(t, "sbc ca"), testpki.NewCA(t, "outpost ca"), testpki.NewCA(t, "other ca")
	startTLSSBC(t, sbcCA, clientCA)
	pstn := startSBCOn(t, tlsSBCIP, tlsPSTNPort, "sbc-answer.xml")

	dir := t.TempDir()
	clientCert, clientKey := clientCA.Issue(t, testpki.Leaf{Hosts: []string{tlsClientName}, Client: true}).WriteFiles(t, dir, "client")
	sbcCAFile := filepath.Join(dir, "sbc-ca.pem")
	testpki.Write(t, sbcCAFile, sbcCA.CertPEM)
	trunkDir := filepath.Join(dir, "trunks", "sbc-hq-2")
	if err := os.MkdirAll(trunkDir, 0o700); err != nil {
		t.Fatal(err)
	}
	testpki.Write(t, filepath.Join(trunkDir, "ca.pem"), otherCA.CertPEM)
	listenCert, listenKey := testpki.SelfSigned(t, "127.0.0.1").WriteFiles(t, dir, "sip")

	n := startNode(t, "tls-trunk", nodeOpts{
		bootstrapSnapshot: writeFile(t, "account.json", tlsTrunkSnapshot(t)),
		tlsCert:           listenCert, tlsKey: listenKey,
		extra: fmt.Sprintf("\nsbc:\n  tls_cert: %s\n  tls_key: %s\n  tls_ca: %s\n  tls_dir: %s\n",
			clientCert, clientKey, sbcCAFile, filepath.Dir(trunkDir)),
	})
	waitRevision(t, []*node{n}, 1)
	waitTrunk(t, n, "sbc-hq-1", "up")
	eventually(t, 15*time.Second, "trunk sbc-hq-2 down for the SBC's unknown CA", func(ctx context.Context) error {
		st, err := n.status(ctx)
		if err != nil {
			return err
		}
		for _, tr := range st.Trunks {
			if tr.ID == "sbc-hq-2" && tr.State == "down" && strings.Contains(tr.LastError, "unknown authority") {
				return nil
			}
		}
		return fmt.Errorf("trunks %+v", st.Trunks)
	})

	res := callPSTN(t, n, "alice", pstnDialled)
	if res.exit != 0 {
		t.Fatalf("alice's call over the TLS trunk: SIPp exit %d\n%s", res.exit, res.stdout)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node log:\n%s", n.log())
		}
	})
	pstn.waitFor(t, "BYE sip:", 1)
	invite := firstMessage(pstn.trace(t), "INVITE ")
	for _, want := range []string{"INVITE sip:" + pstnE164 + "@", "X-TLS-Client: " + tlsClientName, "<sip:+16505550101@"} {
		if !strings.Contains(invite, want) {
			t.Errorf("the INVITE behind the SBC lacks %q:\n%s", want, invite)
		}
	}
}
