package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/internal/testpki"
)

// A cloud served over HTTPS by `outpost-cloud serve --tls-cert --tls-key`
// with a private CA: an appliance that trusts the CA (SSL_CERT_FILE) pairs
// and follows the cloud's revisions; one that does not fails to pair with
// a message naming the certificate problem, and, started with credentials
// paired elsewhere, keeps running and shows the problem as
// cloud.last_error.
func TestCloudTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newFileCA(t, dir, "cloud-ca")
	stranger := newFileCA(t, dir, "other-ca") // a CA that did not sign the cloud's certificate
	cert, key := ca.issue(t, dir, "cloud", "127.0.0.1")
	cloud := startCloudWith(t, demoSnapshot(t), cloudOpts{args: []string{"--tls-cert", cert, "--tls-key", key}, caFile: ca.file})
	if want := "url=https://" + cloud.addr; !strings.Contains(cloud.logs.String(), want) {
		t.Errorf("outpost-cloud's log does not say %s:\n%s", want, cloud.logs.String())
	}
	cloudYAML := fmt.Sprintf("cloud:\n  url: %s\n  probe_interval: 200ms\n  outage_after: 1s\n  recover_after: 1s\n", cloud.url())

	// Trusted: pairs, syncs the cloud's revision and an edit after it.
	creds := pairCluster(t, cloud, "acme-hq")
	n1 := startNode(t, "n1", nodeOpts{env: cloud.env, cloudCredentials: creds, cloud: cloudYAML})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rev, err := cloud.revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitAllAt(t, []*node{n1}, rev, 30*time.Second)
	doc, err := cloud.admin(ctx, http.MethodGet, "/v1/admin/snapshot", nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cloud.admin(ctx, http.MethodPut, "/v1/admin/snapshot", doc)
	if err != nil {
		t.Fatal(err)
	}
	var put struct {
		Revision int64 `json:"revision"`
	}
	if err := json.Unmarshal(out, &put); err != nil || put.Revision <= rev {
		t.Fatalf("PUT snapshot: %s, %v", out, err)
	}
	waitAllAt(t, []*node{n1}, put.Revision, 30*time.Second)
	eventually(t, 10*time.Second, "n1 sees the cloud over HTTPS", func(ctx context.Context) error {
		st, err := n1.status(ctx)
		if err == nil && (!st.Cloud.Reachable || st.Cloud.URL != cloud.url() || st.Cloud.LastError != "") {
			err = fmt.Errorf("cloud %+v", st.Cloud)
		}
		return err
	})

	// Not trusted: `outpost pair` fails, says why, writes nothing and
	// leaves the code unused.
	body, err := cloud.admin(ctx, http.MethodPost, "/v1/admin/pairing-codes", []byte(`{"appliance":"acme-lab"}`))
	if err != nil {
		t.Fatal(err)
	}
	var code struct {
		Code string `json:"code"`
	}
	if err := json.Unmarshal(body, &code); err != nil {
		t.Fatal(err)
	}
	pairDir := t.TempDir()
	pairCfg := filepath.Join(pairDir, "pair.yaml")
	if err := os.WriteFile(pairCfg, []byte("node_id: lab\ndata_dir: "+pairDir+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	untrusting := []string{"SSL_CERT_FILE=" + stranger.file}
	_, stderr, rc := cliEnv(t, untrusting, "pair", "--config", pairCfg, "--cloud", cloud.url(), "--code", code.Code)
	t.Logf("outpost pair: %s", stderr)
	if rc != 1 || !strings.Contains(stderr, "the cloud's certificate is not trusted: x509: certificate signed by unknown authority") ||
		!strings.Contains(stderr, "SSL_CERT_FILE") || strings.Count(strings.TrimRight(stderr, "\n"), "\n") != 0 {
		t.Errorf("outpost pair with a cloud it does not trust: exit %d, %q; want 1 and one line saying the certificate is not trusted", rc, stderr)
	}
	if _, err := os.Stat(filepath.Join(pairDir, "cloud.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed pairing wrote credentials (%v)", err)
	}
	_, stderr, rc = cliEnv(t, cloud.env, "pair", "--config", pairCfg, "--cloud", cloud.url(), "--code", code.Code)
	if rc != 0 {
		t.Fatalf("pairing with the code the failed attempt left: exit %d: %s", rc, stderr)
	}
	labCreds, err := os.ReadFile(filepath.Join(pairDir, "cloud.json"))
	if err != nil {
		t.Fatal(err)
	}

	// A node with those credentials that does not trust the CA keeps
	// running and says why it cannot reach the cloud.
	lab := startNode(t, "lab", nodeOpts{env: untrusting, cloudCredentials: labCreds, cloud: cloudYAML})
	var lastErr string
	eventually(t, 30*time.Second, "lab's cloud.last_error says the certificate is not trusted", func(ctx context.Context) error {
		st, err := lab.status(ctx)
		if err != nil {
			return err
		}
		lastErr = st.Cloud.LastError
		if st.Cloud.Reachable || !strings.Contains(lastErr, "the cloud's certificate is not trusted") {
			return fmt.Errorf("cloud %+v", st.Cloud)
		}
		return nil
	})
	t.Logf("lab's cloud.last_error: %s", lastErr)
	if !strings.Contains(lastErr, cloud.url()) || !strings.Contains(lastErr, "x509: certificate signed by unknown authority") {
		t.Errorf("cloud.last_error %q does not name the cloud and the x509 error", lastErr)
	}
	eventually(t, 10*time.Second, "outpost-cloud logs the refused handshakes", func(context.Context) error {
		if !strings.Contains(cloud.logs.String(), "TLS handshake error") {
			return errors.New("no TLS handshake error in its log")
		}
		return nil
	})
	select {
	case <-lab.done:
		t.Fatalf("lab exited: %v\n%s", lab.err, lab.log())
	default:
	}
	if _, err := lab.status(ctx); err != nil {
		t.Errorf("lab's status after the failures: %v", err)
	}
	if err := checkNoErrors([]*node{n1, lab}); err != nil {
		t.Error(err)
	}
}

// fileCA is a certificate authority made for a test, its certificate in
// a file (what SSL_CERT_FILE names).
type fileCA struct {
	*testpki.CA
	file string
}

func newFileCA(t *testing.T, dir, name string) *fileCA {
	t.Helper()
	ca := &fileCA{CA: testpki.NewCA(t, name), file: filepath.Join(dir, name+".pem")}
	testpki.Write(t, ca.file, ca.CertPEM)
	return ca
}

// issue writes a server certificate for ip and its key into dir, and
// returns their paths.
func (ca *fileCA) issue(t *testing.T, dir, name, ip string) (certFile, keyFile string) {
	t.Helper()
	return ca.Issue(t, testpki.Leaf{Hosts: []string{ip}}).WriteFiles(t, dir, name)
}
