package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/appliance/web"
)

// outpostBin and cloudBin are the binaries under test, built once by
// TestMain.
var outpostBin, cloudBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "outpost-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	outpostBin = filepath.Join(dir, "outpost")
	cloudBin = filepath.Join(dir, "outpost-cloud")
	for bin, pkg := range map[string]string{outpostBin: "../cmd/outpost", cloudBin: "../../cloudsync/cmd/outpost-cloud"} {
		args := []string{"build", "-o", bin}
		if raceEnabled {
			args = append(args, "-race")
		}
		build := exec.Command("go", append(args, pkg)...)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build", pkg+":", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const testToken = "e2e-admin-token-0123456789"

// node is one `outpost serve` process.
type node struct {
	t        testing.TB
	id       string
	dir      string
	cfgPath  string
	httpAddr string
	raftAddr string
	sipUDP   string // bound SIP UDP address
	sipTCP   string // bound SIP TCP address
	sipTLS   string // bound SIP TLS address, when configured

	env   []string
	netns string // the network namespace it runs in (`ip netns exec`), if any
	cmd   *exec.Cmd
	done  chan struct{}
	err   error

	mu   sync.Mutex
	logs bytes.Buffer
}

type nodeOpts struct {
	site string
	join []string
	// fixed addresses for a restart; empty binds port 0
	httpListen, raftListen string
	bootstrapSnapshot      string
	env                    []string // extra environment, e.g. NOTIFY_SOCKET
	tlsCert, tlsKey        string   // SIP TLS on a free port when both are set
	logLevel               string   // default debug; benchmarks use info
	cloud                  string   // the cloud: section of the configuration (YAML, indented), if any
	cloudCredentials       []byte   // written to <data_dir>/cloud.json (0600) before the start
	extra                  string   // more sections of the configuration (YAML), e.g. media:
	// netns runs the node in that network namespace (`ip netns exec`);
	// host is then its address there, and it listens on fixed ports:
	// SIP 5060, HTTP 8080, Raft 7000 (see netns_test.go).
	netns, host string
	dataDir     string // data_dir; default <node dir>/data
}

var startedRE = regexp.MustCompile(`msg="node started".* http_addr=(\S+) raft_addr=(\S+) sip=(\S*)`)

// startNode writes a config file and starts `outpost serve`, waiting until
// it has bound its listeners.
func startNode(t testing.TB, id string, o nodeOpts) *node {
	t.Helper()
	dir := filepath.Join(t.TempDir(), id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, id: id, dir: dir, env: o.env, netns: o.netns}
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(testToken), 0o600); err != nil {
		t.Fatal(err)
	}
	if o.site == "" {
		o.site = "hq"
	}
	sipListen := "127.0.0.1:0"
	if o.host != "" {
		sipListen = o.host + ":5060"
		if o.httpListen == "" {
			o.httpListen = o.host + ":8080"
		}
		if o.raftListen == "" {
			o.raftListen = o.host + ":7000"
		}
	}
	if o.dataDir == "" {
		o.dataDir = filepath.Join(dir, "data")
	}
	if o.httpListen == "" {
		o.httpListen = "127.0.0.1:0"
	}
	if o.logLevel == "" {
		o.logLevel = "debug"
	}
	if o.raftListen == "" {
		o.raftListen = "127.0.0.1:0"
	}
	join, _ := json.Marshal(o.join)
	cfg := fmt.Sprintf(`node_id: %s
site: %s
data_dir: %s
sip:
  udp: %s
  tcp: %s
%s
http:
  listen: %s
  admin_token_file: %s
raft:
  listen: %s
  bootstrap: %v
  join: %s
  heartbeat_timeout: 500ms
  election_timeout: 500ms
log:
  level: %s
bootstrap_snapshot: %q
%s`, id, o.site, o.dataDir, sipListen, sipListen, sipTLSConfig(o), o.httpListen, tokenFile, o.raftListen, len(o.join) == 0, join, o.logLevel, o.bootstrapSnapshot, o.cloud+o.extra)
	if o.cloudCredentials != nil {
		if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(o.dataDir, "cloud.json"), o.cloudCredentials, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	n.cfgPath = filepath.Join(dir, "outpost.yaml")
	if err := os.WriteFile(n.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	n.start()
	t.Cleanup(n.kill)
	return n
}

func (n *node) start() {
	n.t.Helper()
	n.cmd = exec.Command(outpostBin, "serve", "--config", n.cfgPath)
	if n.netns != "" {
		// ip execs the binary in the namespace: the same process, so
		// signals reach the node itself.
		n.cmd = exec.Command("ip", "netns", "exec", n.netns, outpostBin, "serve", "--config", n.cfgPath)
	}
	n.cmd.Env = append(cleanEnv(), n.env...)
	stderr, err := n.cmd.StderrPipe()
	if err != nil {
		n.t.Fatal(err)
	}
	n.done = make(chan struct{})
	bound := make(chan [3]string, 1)
	if err := n.cmd.Start(); err != nil {
		n.t.Fatalf("start %s: %v", n.id, err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			n.mu.Lock()
			n.logs.WriteString(line + "\n")
			n.mu.Unlock()
			if m := startedRE.FindStringSubmatch(line); m != nil {
				select {
				case bound <- [3]string{m[1], m[2], m[3]}:
				default:
				}
			}
		}
	}()
	go func() {
		n.err = n.cmd.Wait()
		close(n.done)
	}()
	select {
	case a := <-bound:
		n.httpAddr, n.raftAddr = a[0], a[1]
		for _, s := range strings.Split(a[2], ",") {
			proto, addr, _ := strings.Cut(s, "/")
			switch proto {
			case "udp":
				n.sipUDP = addr
			case "tcp":
				n.sipTCP = addr
			case "tls":
				n.sipTLS = addr
			}
		}
	case <-n.done:
		n.t.Fatalf("%s exited at start: %v\n%s", n.id, n.err, n.log())
	case <-time.After(60 * time.Second):
		n.t.Fatalf("%s did not bind its listeners in 60s\n%s", n.id, n.log())
	}
}

func sipTLSConfig(o nodeOpts) string {
	if o.tlsCert == "" {
		return `  tls: ""`
	}
	return fmt.Sprintf("  tls: 127.0.0.1:0\n  tls_cert: %s\n  tls_key: %s", o.tlsCert, o.tlsKey)
}

// cleanEnv drops OUTPOST_ variables of the caller so only the config file counts.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OUTPOST_") {
			env = append(env, kv)
		}
	}
	return env
}

// lockedBuffer is a process's output, safe to read while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (n *node) log() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.logs.String()
}

// kill -9s the process (a crash) and waits for it.
func (n *node) kill() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	select {
	case <-n.done:
		return
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
}

// stop sends SIGTERM and waits for a clean exit.
func (n *node) stop() error {
	n.t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-n.done:
		return n.err
	case <-time.After(30 * time.Second):
		n.kill()
		return fmt.Errorf("%s did not stop within 30s of SIGTERM", n.id)
	}
}

// restart starts the process again on the same addresses and data.
func (n *node) restart() {
	n.t.Helper()
	// A node in a namespace listens on fixed ports already.
	if n.netns == "" {
		n.pinAddrs()
	}
	n.mu.Lock()
	n.logs.Reset()
	n.mu.Unlock()
	n.start()
}

// pinAddrs drops the listen lines of the configuration (port 0 at the
// first start, the bound addresses after a restart) and pins the bound
// addresses.
func (n *node) pinAddrs() {
	n.t.Helper()
	cfg, err := os.ReadFile(n.cfgPath)
	if err != nil {
		n.t.Fatal(err)
	}
	cfg = regexp.MustCompile(`(?m)^  listen: 127\.0\.0\.1:\d+\n`).ReplaceAllLiteral(cfg, nil)
	s := string(cfg)
	s = strings.Replace(s, "http:\n", "http:\n  listen: "+n.httpAddr+"\n", 1)
	s = strings.Replace(s, "raft:\n", "raft:\n  listen: "+n.raftAddr+"\n", 1)
	if err := os.WriteFile(n.cfgPath, []byte(s), 0o600); err != nil {
		n.t.Fatal(err)
	}
}

func (n *node) client() *web.Client { return web.NewClient(n.httpAddr, testToken) }

func (n *node) status(ctx context.Context) (web.Status, error) {
	return n.client().Status(ctx)
}

// cli runs the real outpost CLI and returns its stdout, stderr and exit code.
func cli(t testing.TB, args ...string) (string, string, int) {
	t.Helper()
	return cliEnv(t, nil, args...)
}

// cliEnv is cli with more environment, e.g. SSL_CERT_FILE.
func cliEnv(t testing.TB, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(outpostBin, args...)
	cmd.Env = append(cleanEnv(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run outpost %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// eventually polls cond every 50ms until it returns nil or the deadline passes.
func eventually(t testing.TB, within time.Duration, what string, cond func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		last = cond(ctx)
		cancel()
		if last == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not true within %s: %v", what, within, last)
}

// post sends a raw request and returns the status code and body.
func post(t testing.TB, url, token string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

// demoSnapshot is shared/contract/demo-snapshot.json.
func demoSnapshot(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile("../../../shared/contract/demo-snapshot.json")
	if err != nil {
		t.Fatalf("read demo snapshot (shared/ must sit beside the repo): %v", err)
	}
	return data
}
