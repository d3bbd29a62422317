package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The web UI in a real browser: Debian's chromium, headless, driven by
// playwright-core (testdata/browser/ui.mjs; both installed by make deps)
// against a real node. Screenshots go to the test's artefact directory
// (go test -artifacts -outputdir DIR keeps them); with
// OUTPOST_UPDATE_SCREENSHOTS=1 the status page's and the other pages'
// also replace docs/images/<page>.png.

const (
	chromiumPath = "/usr/bin/chromium"
	browserDir   = "testdata/browser"
	demoAdmin    = "admin"
	demoAdminPW  = "outpost-admin"
)

// needBrowser skips the test when chromium, node or playwright-core is
// missing (make deps installs all three).
func needBrowser(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("chromium is not installed at %s (make deps installs it): %v", chromiumPath, err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skipf("node is not installed (make deps installs it): %v", err)
	}
	if _, err := os.Stat(filepath.Join(browserDir, "node_modules", "playwright-core")); err != nil {
		t.Skipf("playwright-core is not installed in %s (make deps runs npm ci there): %v", browserDir, err)
	}
}

// runBrowser runs ui.mjs scenario against n; onStep sees every step and
// may answer it (a line on the script's stdin). It returns the steps by
// name.
func runBrowser(t *testing.T, n *node, scenario, outDir string, onStep func(step string, w io.Writer)) map[string]map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "ui.mjs", scenario)
	cmd.Dir = browserDir
	cmd.Env = append(os.Environ(), "OUTPOST_URL=http://"+n.httpAddr, "OUT_DIR="+outDir, "CHROMIUM="+chromiumPath,
		"ADMIN_USER="+demoAdmin, "ADMIN_PASSWORD="+demoAdminPW)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	steps := map[string]map[string]any{}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Logf("ui.mjs: %s", sc.Text())
			continue
		}
		name, _ := m["step"].(string)
		steps[name] = m
		t.Logf("browser %s: %s (%.1fs)", scenario, sc.Text(), time.Since(start).Seconds())
		if onStep != nil {
			onStep(name, stdin)
		}
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("browser scenario %s: %v\n%s\nnode log:\n%s", scenario, err, stderr.String(), n.log())
	}
	if _, ok := steps["done"]; !ok {
		t.Fatalf("browser scenario %s did not finish: %s", scenario, stderr.String())
	}
	if errs, _ := steps["done"]["cspErrors"].([]any); len(errs) > 0 {
		t.Errorf("Content-Security-Policy violations in the browser: %v", errs)
	}
	return steps
}

// Sign in; the status page shows the mode; a SIPp phone registers and the
// count on the open page rises without a reload; every other page, from
// the navigation bar; a form without its CSRF token is refused; sign out.
func TestUIStatusInBrowser(t *testing.T) {
	needBrowser(t)
	n := startNode(t, "ui", nodeOpts{bootstrapSnapshot: writeFile(t, "demo.json", demoSnapshot(t))})
	waitRevision(t, []*node{n}, 1)
	shots := t.ArtifactDir()
	steps := runBrowser(t, n, "status", shots, func(step string, w io.Writer) {
		if step != "await-register" {
			return
		}
		res := runSIPp(t, "register.xml", n.sipUDP, 1, 20*time.Second,
			"-inf", writeUsersCSV(t, [][3]string{{"alice", "pw-alice", "acme.example"}}))
		if res.exit != 0 {
			t.Errorf("register alice: exit %d\n%s", res.exit, res.stdout)
		}
		fmt.Fprintln(w, "registered")
	})

	in := steps["signed-in"]
	if in["mode"] != "normal" {
		t.Errorf("status page shows mode %v, want normal", in["mode"])
	}
	reg := steps["registered"]
	if reg["registrations"].(float64) <= in["registrations"].(float64) {
		t.Errorf("registrations on the page: %v, then %v; want a rise", in["registrations"], reg["registrations"])
	}
	if reg["reloaded"] != false {
		t.Error("the page reloaded to show the registration; want a live update")
	}
	kb := steps["keyboard"]
	if kb["first"] != "Skip to content" || kb["afterSkip"] != "main" || kb["unlabelled"] != float64(0) {
		t.Errorf("keyboard: first Tab reached %q, the skip link focused %q, %v controls without a label", kb["first"], kb["afterSkip"], kb["unlabelled"])
	}
	csrf := steps["csrf"]
	if csrf["status"] != float64(http.StatusForbidden) || !strings.Contains(fmt.Sprint(csrf["message"]), "CSRF token") {
		t.Errorf("sign-out form without its CSRF token: %v %q, want 403 and why", csrf["status"], csrf["message"])
	}
	if csrf["stillSignedIn"] != true {
		t.Error("the refused form signed the user out")
	}
	if steps["signed-out"]["path"] != "/login" {
		t.Errorf("after sign-out the browser is at %v, want /login", steps["signed-out"]["path"])
	}
	pages, _ := steps["pages"]["phones"].(map[string]any)
	if pages == nil {
		t.Fatal("the browser did not visit the other pages")
	}
	for _, name := range []string{"phones", "calls", "sdgs", "cluster", "settings"} {
		p, _ := steps["pages"][name].(map[string]any)
		cur, _ := p["current"].([]any)
		if p["path"] != "/"+name || len(cur) != 1 || cur[0] != "/"+name || p["unlabelled"] != float64(0) {
			t.Errorf("page %s: at %v, navigation marks %v current, %v controls without a label", name, p["path"], cur, p["unlabelled"])
		}
		if (name == "calls" || name == "sdgs") && p["live"] != true {
			t.Errorf("page %s is not live", name)
		}
	}
	if cfg, _ := steps["pages"]["settings"].(map[string]any); cfg["config"] != true {
		t.Log("the Settings page shows no configuration: the node does not pass web.Deps.Config")
	}
	if pages["searchEmpty"] != true {
		t.Error("a phone search for nobody still listed phones")
	}
	for _, name := range []string{"login", "status", "status-phone", "csrf-refused", "phones", "calls", "sdgs", "cluster", "settings"} {
		if fi, err := os.Stat(filepath.Join(shots, name+".png")); err != nil || fi.Size() == 0 {
			t.Errorf("screenshot %s: %v", name, err)
		}
	}
	if os.Getenv("OUTPOST_UPDATE_SCREENSHOTS") == "1" {
		for _, name := range []string{"status", "phones", "calls", "sdgs", "cluster", "settings"} {
			data, err := os.ReadFile(filepath.Join(shots, name+".png"))
			if err == nil {
				err = os.WriteFile("../../docs/images/"+name+".png", data, 0o644)
			}
			if err != nil {
				t.Errorf("update docs/images/%s.png: %v", name, err)
			}
		}
	}
}

// Five wrong passwords lock the username out: the sixth attempt is refused
// even with the right password.
func TestUILockoutInBrowser(t *testing.T) {
	needBrowser(t)
	n := startNode(t, "ui-lock", nodeOpts{bootstrapSnapshot: writeFile(t, "demo.json", demoSnapshot(t))})
	waitRevision(t, []*node{n}, 1)
	shots := t.ArtifactDir()
	steps := runBrowser(t, n, "lockout", shots, nil)
	lock := steps["lockout"]
	msgs, _ := lock["messages"].([]any)
	if len(msgs) != 5 {
		t.Fatalf("%d attempts reported, want 5", len(msgs))
	}
	for i, m := range msgs[:4] {
		mm := m.(map[string]any)
		if mm["status"] != float64(http.StatusUnauthorized) || mm["text"] != "Wrong username or password." {
			t.Errorf("attempt %d: %v %q", i+1, mm["status"], mm["text"])
		}
	}
	sixth := lock["sixth"].(map[string]any)
	if sixth["status"] != float64(http.StatusTooManyRequests) || sixth["signedIn"] != false ||
		!strings.Contains(fmt.Sprint(sixth["text"]), "Too many failed sign-ins") {
		t.Errorf("6th attempt with the right password: %v %q signed in %v; want 429 and the lockout", sixth["status"], sixth["text"], sixth["signedIn"])
	}
	if got := strings.Count(n.log(), "ui: sign-in failed"); got != 5 {
		t.Errorf("%d failed sign-ins logged, want 5", got)
	}
	if strings.Contains(n.log(), "wrong-password-") || strings.Contains(n.log(), demoAdminPW) {
		t.Error("a password is in the node's log")
	}
}

// The break-glass admin set with `outpost admin set-password` signs in to
// the running node, with no snapshot at all; the UI's pages carry the CSP.
func TestUIBreakGlassSignIn(t *testing.T) {
	n := startNode(t, "ui-bg", nodeOpts{})
	cmd := exec.Command(outpostBin, "admin", "set-password", "--config", n.cfgPath, "--user", "rescue")
	cmd.Env = cleanEnv()
	cmd.Stdin = strings.NewReader("a long break-glass password\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("outpost admin set-password: %v\n%s", err, out)
	}
	fi, err := os.Stat(filepath.Join(n.dir, "data", "breakglass.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("breakglass.json: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 20 * time.Second}
	base := "http://" + n.httpAddr
	resp, err := c.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got := resp.Header.Get("Content-Security-Policy"); !strings.Contains(got, "default-src 'self'") || !strings.Contains(got, "frame-ancestors 'none'") {
		t.Errorf("sign-in page CSP %q", got)
	}
	m := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("no form token in the sign-in page:\n%s", page)
	}
	resp, err = c.PostForm(base+"/login", url.Values{"username": {"rescue"}, "password": {"a long break-glass password"}, "csrf_token": {string(m[1])}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(page, []byte(`id="signed-in-as">rescue<`)) {
		t.Fatalf("break-glass sign-in: %d\n%s\nnode log:\n%s", resp.StatusCode, page, n.log())
	}
	var session *http.Cookie
	for _, ck := range jar.Cookies(resp.Request.URL) {
		if ck.Name == "outpost_session" {
			session = ck
		}
	}
	if session == nil {
		t.Fatal("no outpost_session cookie")
	}
}
