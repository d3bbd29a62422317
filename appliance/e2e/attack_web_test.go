package e2e

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

// webClient is an HTTP client from a loopback source address of its own
// (the UI's sign-in lockout counts per address), with a cookie jar, that
// does not follow redirects.
func webClient(src string) *http.Client {
	jar, _ := cookiejar.New(nil)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	return &http.Client{
		Jar: jar, Timeout: 20 * time.Second,
		Transport:     &http.Transport{DialContext: d.DialContext},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// do sends a request and returns the status and body.
func do(t testing.TB, c *http.Client, method, u string, body []byte, header http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, string(b)
}

// mutatingOperations lists every POST, PUT, PATCH and DELETE of the node's
// API description (served at /api/v1/openapi.yaml; a unit test keeps it
// equal to the routes), path parameters filled in.
func mutatingOperations(t *testing.T, n *node) [][2]string {
	t.Helper()
	status, doc := do(t, http.DefaultClient, http.MethodGet, "http://"+n.httpAddr+"/api/v1/openapi.yaml", nil, nil)
	if status != http.StatusOK {
		t.Fatalf("GET /api/v1/openapi.yaml: %d", status)
	}
	var spec struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal([]byte(doc), &spec); err != nil {
		t.Fatal(err)
	}
	param := regexp.MustCompile(`\{[^}]+\}`)
	var ops [][2]string
	for path, methods := range spec.Paths {
		for m := range methods {
			switch m {
			case "post", "put", "patch", "delete":
				ops = append(ops, [2]string{strings.ToUpper(m), param.ReplaceAllString(path, "x1")})
			}
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i][1]+ops[i][0] < ops[j][1]+ops[j][0] })
	return ops
}

// The node's web side under attack:
//   - every state-changing operation of the API and the UI (all POST, PUT,
//     PATCH and DELETE of the API description) refuses a request without
//     credentials, with a wrong bearer token, and with a session cookie
//     that is not one, and nothing changes (revision, mode);
//   - the UI's forms need the session's CSRF token and the same origin
//     (403 without the token, with another's, or from another Origin);
//   - 5 wrong passwords lock the sign-in out (the right one is refused
//     then);
//   - cloud pushes (POST /api/v1/cloud/push) with a bad signature, a stale
//     or future timestamp, a replayed id or no headers are refused (401),
//     and a good one is taken (202).
func TestAttackWeb(t *testing.T) {
	pushKey := []byte("attack-suite-push-key-0123456789")
	creds := fmt.Sprintf(`{"url":"http://127.0.0.1:9","appliance_id":"attack","secret":"appliance-secret","push_key":"%s","paired_at":"2026-01-01T00:00:00Z"}`,
		hex.EncodeToString(pushKey))
	n := startNode(t, "web", nodeOpts{
		bootstrapSnapshot: writeFile(t, "demo.json", demoSnapshot(t)),
		logLevel:          "info",
		cloudCredentials:  []byte(creds),
		cloud:             "cloud:\n  url: http://127.0.0.1:9\n",
	})
	waitRevision(t, []*node{n}, 1)
	base := "http://" + n.httpAddr
	before, err := n.status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var report []string

	// Every state-changing operation, without credentials.
	anon := webClient("127.0.0.81")
	ops := mutatingOperations(t, n)
	refused, statuses := 0, map[int]int{}
	for _, op := range ops {
		method, path := op[0], op[1]
		for _, cred := range []struct {
			what   string
			header http.Header
		}{
			{"no credentials", nil},
			{"a wrong bearer token", http.Header{"Authorization": {"Bearer not-the-token"}}},
			{"a forged session cookie", http.Header{"Cookie": {"outpost_session=forged; outpost_csrf=forged"}}},
		} {
			h := http.Header{"Content-Type": {"application/json"}}
			for k, v := range cred.header {
				h[k] = v
			}
			status, body := do(t, anon, method, base+path, []byte(`{"revision":99,"mode":"normal"}`), h)
			ok := status == http.StatusUnauthorized || status == http.StatusForbidden ||
				status == http.StatusNotFound && path == "/api/v1/cloud/push" ||
				status == http.StatusSeeOther && !strings.HasPrefix(path, "/api/")
			if path == "/login" || path == "/embed/api/session" {
				// The sign-ins themselves: they must not sign anyone in.
				ok = status >= 400 || status == http.StatusSeeOther && !strings.Contains(body, "signed-in")
			}
			if !ok {
				t.Errorf("%s %s with %s: %d, want it refused (401, 403, or a redirect to sign in)\n%.300s", method, path, cred.what, status, body)
			} else {
				refused++
				statuses[status]++
			}
		}
	}
	after, err := n.status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if after.Revision != before.Revision || after.Mode != before.Mode {
		t.Errorf("revision %d → %d, mode %s → %s: an unauthenticated request changed the node", before.Revision, after.Revision, before.Mode, after.Mode)
	}
	report = append(report, fmt.Sprintf("%d state-changing operations × 3 kinds of missing or false credentials: %d refused (by status: %v)", len(ops), refused, statuses))

	// CSRF: a signed-in admin's browser, tricked into posting a form.
	admin := webClient("127.0.0.82")
	csrf := signIn(t, admin, base)
	form := func(token, origin string) int {
		h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
		if origin != "" {
			h.Set("Origin", origin)
		}
		v := url.Values{"user": {"u-alice"}, "ttl_days": {"1"}}
		if token != "" {
			v.Set("csrf_token", token)
		}
		status, _ := do(t, admin, http.MethodPost, base+"/phones/widget-token", []byte(v.Encode()), h)
		return status
	}
	for _, tc := range []struct {
		what, token, origin string
	}{
		{"no CSRF token", "", ""},
		{"another session's token", "0123456789abcdef0123456789abcdef", ""},
		{"the right token from another origin", csrf, "https://evil.example"},
		{"the right token from origin null", csrf, "null"},
	} {
		if got := form(tc.token, tc.origin); got != http.StatusForbidden {
			t.Errorf("a signed-in form post with %s: %d, want 403", tc.what, got)
		}
	}
	if got := form(csrf, base); got >= 400 {
		t.Errorf("the same form with the session's token from the node's origin: %d, want it taken", got)
	}
	report = append(report, "CSRF: without the token, with another, from another origin or origin null: 403; with the token from the node's origin: taken")

	// Sign-in lockout.
	guesser := webClient("127.0.0.83")
	for i := range 5 {
		if ok := trySignIn(t, guesser, base, "admin", fmt.Sprintf("guess-%d", i)); ok {
			t.Fatalf("a wrong password signed in")
		}
	}
	if trySignIn(t, guesser, base, "admin", demoAdminPW) {
		t.Errorf("the right password was taken after 5 wrong ones: the sign-in should be locked out")
	}
	report = append(report, "sign-in: after 5 wrong passwords the right one is refused (locked out)")

	// Cloud pushes.
	push := func(id string, ts int64, sig string, body []byte) int {
		h := http.Header{"Content-Type": {"application/json"}}
		if id != "" {
			h.Set(protocol.HeaderPushID, id)
			h.Set(protocol.HeaderPushTimestamp, strconv.FormatInt(ts, 10))
			h.Set(protocol.HeaderPushSignature, sig)
		}
		status, _ := do(t, anon, http.MethodPost, base+"/api/v1/cloud/push", body, h)
		return status
	}
	body := []byte(`{"revision":2}`)
	signed := func(id string, ts int64) int { return push(id, ts, protocol.SignPush(pushKey, id, ts, body), body) }
	first := fmt.Sprintf("push-%d", time.Now().UnixNano())
	eventually(t, 20*time.Second, "the node takes a signed push", func(context.Context) error {
		first = fmt.Sprintf("push-%d", time.Now().UnixNano())
		if got := signed(first, time.Now().Unix()); got != http.StatusAccepted {
			return fmt.Errorf("%d", got)
		}
		return nil
	})
	now := time.Now().Unix()
	for _, tc := range []struct {
		what   string
		status int
	}{
		{"replayed (same id, same signature)", signed(first, now)},
		{"a bad signature", push("push-bad", now, protocol.SignPush([]byte("not-the-key"), "push-bad", now, body), body)},
		{"a body changed after signing", push("push-body", now, protocol.SignPush(pushKey, "push-body", now, body), []byte(`{"revision":3}`))},
		{"a timestamp 10 minutes old", signed("push-old", now-600)},
		{"a timestamp 10 minutes ahead", signed("push-ahead", now+600)},
		{"no push headers", push("", 0, "", body)},
	} {
		if tc.status != http.StatusUnauthorized {
			t.Errorf("a push with %s: %d, want 401", tc.what, tc.status)
		}
	}
	report = append(report, "cloud pushes: signed 202; replayed, bad signature, altered body, stale, future, unsigned: 401")
	t.Logf("web attacks against %s:\n  %s", n.id, strings.Join(report, "\n  "))
}

var csrfFieldRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// trySignIn posts the sign-in form as a browser does and reports whether
// it signed in.
func trySignIn(t *testing.T, c *http.Client, base, user, password string) bool {
	t.Helper()
	_, page := do(t, c, http.MethodGet, base+"/login", nil, nil)
	m := csrfFieldRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no form token in the sign-in page:\n%.500s", page)
	}
	v := url.Values{"username": {user}, "password": {password}, "csrf_token": {m[1]}}
	req, _ := http.NewRequest(http.MethodPost, base+"/login", strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusSeeOther && cookieNamed(resp, "outpost_session") != nil
}

// signIn signs the demo admin in and returns the CSRF token of its
// session (from the status page's forms).
func signIn(t *testing.T, c *http.Client, base string) string {
	t.Helper()
	if !trySignIn(t, c, base, demoAdmin, demoAdminPW) {
		t.Fatal("the demo admin could not sign in")
	}
	_, page := do(t, c, http.MethodGet, base+"/phones", nil, nil)
	m := csrfFieldRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in the signed-in page:\n%.500s", page)
	}
	return m[1]
}
