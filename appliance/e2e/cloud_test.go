package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"
)

// cloudServer is one `outpost-cloud serve` process.
type cloudServer struct {
	t      testing.TB
	addr   string // host:port it listens on
	token  string
	cmd    *exec.Cmd
	logs   lockedBuffer
	args   []string
	scheme string       // http, or https with cloudOpts.caFile
	hc     *http.Client // the admin API's client
	env    []string     // what `outpost pair` needs to trust it (SSL_CERT_FILE)
}

// cloudOpts tunes startCloudWith; the zero value is startCloud's.
type cloudOpts struct {
	args []string // more `serve` flags: --tls-cert and --tls-key
	// caFile (PEM), with TLS: the CA of its certificate, which the admin
	// client and pairCluster's `outpost pair` (SSL_CERT_FILE) trust.
	caFile string
}

// startCloud starts outpost-cloud with seed as its first snapshot.
func startCloud(t testing.TB, seed []byte) *cloudServer {
	t.Helper()
	return startCloudWith(t, seed, cloudOpts{})
}

// startCloudWith is startCloud with o's flags and trust.
func startCloudWith(t testing.TB, seed []byte, o cloudOpts) *cloudServer {
	t.Helper()
	dir := t.TempDir()
	c := &cloudServer{t: t, token: "e2e-cloud-admin-token-0123456789", scheme: "http", hc: http.DefaultClient}
	if o.caFile != "" {
		pem, err := os.ReadFile(o.caFile)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			t.Fatalf("no certificate in %s", o.caFile)
		}
		c.scheme, c.env = "https", []string{"SSL_CERT_FILE=" + o.caFile}
		c.hc = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		t.Cleanup(c.hc.CloseIdleConnections)
	}
	tokenFile := filepath.Join(dir, "admin-token")
	if err := os.WriteFile(tokenFile, []byte(c.token), 0o600); err != nil {
		t.Fatal(err)
	}
	seedFile := filepath.Join(dir, "seed.json")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	c.args = append([]string{"serve", "--listen", "127.0.0.1:0", "--db", filepath.Join(dir, "cloud.db"),
		"--admin-token-file", tokenFile, "--seed", seedFile}, o.args...)
	c.start()
	c.args[2] = c.addr // a restart binds the same port
	t.Cleanup(c.stop)
	return c
}

var cloudListeningRE = regexp.MustCompile(`msg="outpost-cloud listening".* addr=(\S+)`)

// start starts the process and reads the address it bound from its log.
func (c *cloudServer) start() {
	c.t.Helper()
	from := len(c.logs.String())
	c.cmd = exec.Command(cloudBin, c.args...)
	c.cmd.Stdout, c.cmd.Stderr = &c.logs, &c.logs
	if err := c.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	eventually(c.t, 20*time.Second, "outpost-cloud listening", func(context.Context) error {
		m := cloudListeningRE.FindStringSubmatch(c.logs.String()[from:])
		if m == nil {
			return fmt.Errorf("no listening line in its log:\n%s", c.logs.String()[from:])
		}
		c.addr = m[1]
		return nil
	})
	eventually(c.t, 20*time.Second, "outpost-cloud up", func(ctx context.Context) error {
		_, err := c.admin(ctx, http.MethodGet, "/v1/admin/snapshot", nil)
		return err
	})
}

func (c *cloudServer) stop() {
	if c.cmd != nil && c.cmd.Process != nil {
		_ = c.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = c.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = c.cmd.Process.Kill()
		}
	}
}

func (c *cloudServer) url() string { return c.scheme + "://" + c.addr }

// admin calls the admin API and returns the body of a 2xx answer.
func (c *cloudServer) admin(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.url()+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	if res.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, out)
	}
	return out, nil
}

// revision is the cloud's current revision.
func (c *cloudServer) revision(ctx context.Context) (int64, error) {
	body, err := c.admin(ctx, http.MethodGet, "/v1/admin/snapshot", nil)
	if err != nil {
		return 0, err
	}
	var s struct {
		Revision int64 `json:"revision"`
	}
	return s.Revision, json.Unmarshal(body, &s)
}

// wan is a TCP proxy standing for the WAN between the appliance and the
// cloud: cut, the appliance cannot reach the cloud (the cloud itself runs
// on, and its admins edit); healed, it can again.
type wan struct {
	t        testing.TB
	addr     string
	upstream string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
}

func startWAN(t testing.TB, upstream string) *wan {
	t.Helper()
	w := &wan{t: t, addr: freeTCPAddr(t), upstream: upstream, conns: map[net.Conn]bool{}}
	w.heal()
	t.Cleanup(w.cut)
	return w
}

func (w *wan) url() string { return "http://" + w.addr }

func (w *wan) heal() {
	w.t.Helper()
	var ln net.Listener
	eventually(w.t, 10*time.Second, "WAN proxy listening", func(context.Context) error {
		var err error
		ln, err = net.Listen("tcp", w.addr)
		return err
	})
	w.mu.Lock()
	w.ln = ln
	w.mu.Unlock()
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", w.upstream)
			if err != nil {
				in.Close()
				continue
			}
			w.mu.Lock()
			w.conns[in], w.conns[out] = true, true
			w.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
}

// cut closes the listener and every connection through it.
func (w *wan) cut() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ln != nil {
		w.ln.Close()
		w.ln = nil
	}
	for c := range w.conns {
		c.Close()
	}
	w.conns = map[net.Conn]bool{}
}

// pairCluster makes a pairing code in the cloud, pairs with `outpost
// pair` (the real CLI) and returns the credentials file's content, which
// every node of the cluster gets.
func pairCluster(t testing.TB, cloud *cloudServer, name string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	body, err := cloud.admin(ctx, http.MethodPost, "/v1/admin/pairing-codes", []byte(`{"appliance":"`+name+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	var code struct {
		Code string `json:"code"`
	}
	if err := json.Unmarshal(body, &code); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "pair.yaml")
	if err := os.WriteFile(cfg, []byte("node_id: pairing\ndata_dir: "+dir+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, rc := cliEnv(t, cloud.env, "pair", "--config", cfg, "--cloud", cloud.url(), "--code", code.Code)
	if rc != 0 {
		t.Fatalf("outpost pair: exit %d: %s %s", rc, out, stderr)
	}
	info, err := os.Stat(filepath.Join(dir, "cloud.json"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("credentials file mode %v, want 0600", info.Mode().Perm())
	}
	// The code works once.
	if _, stderr, rc := cliEnv(t, cloud.env, "pair", "--config", cfg, "--cloud", cloud.url(), "--code", code.Code); rc == 0 {
		t.Errorf("a used pairing code paired again: %s", stderr)
	}
	creds, err := os.ReadFile(filepath.Join(dir, "cloud.json"))
	if err != nil {
		t.Fatal(err)
	}
	return creds
}

// renameUser renames a user in the cloud (GET, then PUT of the object: a
// new revision) and returns that revision.
func (c *cloudServer) renameUser(ctx context.Context, t testing.TB, id, name string) int64 {
	t.Helper()
	body, err := c.admin(ctx, http.MethodGet, "/v1/admin/users/"+id, nil)
	if err != nil {
		t.Fatal(err)
	}
	var u map[string]any
	if err := json.Unmarshal(body, &u); err != nil {
		t.Fatal(err)
	}
	u["name"] = name
	doc, _ := json.Marshal(u)
	out, err := c.admin(ctx, http.MethodPut, "/v1/admin/users/"+id, doc)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Revision int64 `json:"revision"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	return r.Revision
}

// waitAllAt waits until every node serves revision rev and returns how long
// that took.
func waitAllAt(t *testing.T, nodes []*node, rev int64, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	eventually(t, within, fmt.Sprintf("every node at revision %d", rev), func(ctx context.Context) error {
		for _, n := range nodes {
			st, err := n.status(ctx)
			if err != nil {
				return err
			}
			if st.Revision != rev {
				return fmt.Errorf("%s at revision %d", n.id, st.Revision)
			}
		}
		return nil
	})
	return time.Since(start)
}

func waitAllMode(t testing.TB, nodes []*node, mode string, within time.Duration) {
	t.Helper()
	eventually(t, within, "every node in mode "+mode, func(ctx context.Context) error {
		for _, n := range nodes {
			st, err := n.status(ctx)
			if err != nil {
				return err
			}
			if st.Mode != mode {
				return fmt.Errorf("%s in mode %s", n.id, st.Mode)
			}
		}
		return nil
	})
}

// A 3-node cluster paired with outpost-cloud follows the cloud: the seed
// snapshot reaches every node, an edit in the cloud is applied on all three
// within 2 s; when the WAN is cut every node turns to survivability, a call
// then is journalled, edits made in the cloud meanwhile are applied once it
// heals, the journal is uploaded once, and the mode goes back through
// recovering to normal.
func TestCloudSync(t *testing.T) {
	cloud := startCloud(t, demoSnapshot(t))
	link := startWAN(t, cloud.addr)
	creds := pairCluster(t, cloud, "acme-hq")
	nodes := formClusterWith(t, nodeOpts{
		cloudCredentials: creds,
		cloud: fmt.Sprintf("cloud:\n  url: %s\n  probe_interval: 200ms\n  outage_after: 1s\n  recover_after: 1s\n",
			link.url()),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rev, err := cloud.revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitAllAt(t, nodes, rev, 30*time.Second)

	// An edit in the cloud reaches every node within 2 s.
	rev = cloud.renameUser(ctx, t, "u-carol", "Carol Edited")
	if took := waitAllAt(t, nodes, rev, 10*time.Second); took > 2*time.Second {
		t.Errorf("an edit took %v to reach all three nodes, want under 2 s", took)
	}
	waitAllMode(t, nodes, "normal", 10*time.Second)
	waitAllCloud(t, nodes, true)

	// The WAN is cut: every node turns to survivability.
	link.cut()
	waitAllMode(t, nodes, "survivability", 20*time.Second)
	waitAllCloud(t, nodes, false)
	st, err := nodes[0].status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Cloud.URL != link.url() {
		t.Errorf("status cloud url %q, want %q", st.Cloud.URL, link.url())
	}
	// A call during the outage is journalled.
	uasDone := answerOn(t, nodes[0], "bob", freeUDPPort(t))
	callers := writeCallersCSV(t, [][4]string{{"alice", "pw-alice", "acme.example", "1002"}})
	if res := runSIPp(t, "uac-auth.xml", nodes[0].sipUDP, 1, 20*time.Second, "-inf", callers); res.exit != 0 {
		t.Fatalf("call during the outage: exit %d\n%s", res.exit, res.stdout)
	}
	if code := uasDone(); code != 0 {
		t.Fatalf("bob's SIPp exited %d", code)
	}
	eventually(t, 10*time.Second, "the call journalled and pending", func(ctx context.Context) error {
		st, err := nodes[0].status(ctx)
		if err == nil && st.JournalPending != 1 {
			err = fmt.Errorf("journal_pending %d", st.JournalPending)
		}
		return err
	})
	// The cloud's admins edit during the outage; the nodes cannot see it.
	rev = cloud.renameUser(ctx, t, "u-carol", "Carol During The Outage")
	for _, n := range nodes {
		if st, err := n.status(ctx); err != nil || st.Revision >= rev {
			t.Errorf("%s at revision %d during the outage (%v)", n.id, st.Revision, err)
		}
	}

	// The WAN heals: the edit is applied, the mode goes back to normal.
	link.heal()
	waitAllAt(t, nodes, rev, 30*time.Second)
	waitAllMode(t, nodes, "normal", 30*time.Second)
	// Recovery gave the journal back: the cloud holds the call once, and
	// no node has anything pending.
	body, err := cloud.admin(ctx, http.MethodGet, "/v1/admin/journal?appliance=acme-hq", nil)
	if err != nil {
		t.Fatal(err)
	}
	var journal struct {
		Records []struct {
			ID     string `json:"id"`
			Caller string `json:"caller"`
			Callee string `json:"callee"`
		} `json:"records"`
	}
	if err := json.Unmarshal(body, &journal); err != nil {
		t.Fatal(err)
	}
	if len(journal.Records) != 1 || journal.Records[0].Caller != "alice" || journal.Records[0].Callee != "bob" {
		t.Errorf("the cloud's journal: %s, want the alice -> bob call once", body)
	}
	for _, n := range nodes {
		if st, err := n.status(ctx); err != nil || st.JournalPending != 0 {
			t.Errorf("%s: journal_pending %d after recovery (%v)", n.id, st.JournalPending, err)
		}
	}
	if err := checkNoErrors(nodes); err != nil {
		t.Error(err)
	}
}

// waitAllCloud waits until every node's status shows the cloud reachable
// (or not, with the error): followers show the leader's view.
func waitAllCloud(t *testing.T, nodes []*node, reachable bool) {
	t.Helper()
	eventually(t, 10*time.Second, fmt.Sprintf("every node sees the cloud reachable=%v", reachable), func(ctx context.Context) error {
		for _, n := range nodes {
			st, err := n.status(ctx)
			if err != nil {
				return err
			}
			if st.Cloud.Reachable != reachable || (!reachable && st.Cloud.LastError == "") {
				return fmt.Errorf("%s: cloud %+v", n.id, st.Cloud)
			}
		}
		return nil
	})
}

// checkNoErrors fails on a node that logged an ERROR.
func checkNoErrors(nodes []*node) error {
	var errs []error
	for _, n := range nodes {
		if bytes.Contains([]byte(n.log()), []byte("level=ERROR")) {
			errs = append(errs, fmt.Errorf("%s logged an error:\n%s", n.id, n.log()))
		}
	}
	return errors.Join(errs...)
}
