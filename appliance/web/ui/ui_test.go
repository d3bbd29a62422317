package ui

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/crypto/bcrypt"

	"github.com/outpost-voice/outpost/account"
)

const (
	adminUser = "admin"
	adminPass = "outpost-admin"
	evilName  = "<script>alert(1)</script>"
)

func TestMain(m *testing.M) {
	// bcrypt at its production cost is slow under the race detector.
	dummyCost, breakGlassCost = bcrypt.MinCost, bcrypt.MinCost
	os.Exit(m.Run())
}

// fakeClock is a settable clock for the session and lockout timers.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fixture is a mounted UI with a fake node behind it.
type fixture struct {
	t      *testing.T
	ui     *UI
	h      http.Handler
	clock  *fakeClock
	logs   *lockedBuffer
	mu     sync.Mutex
	status Status
	admins []account.Admin
}

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

func hash(t testing.TB, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func newFixture(t *testing.T, mod func(*Deps)) *fixture {
	t.Helper()
	gin.SetMode(gin.ReleaseMode)
	since := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	f := &fixture{t: t, clock: &fakeClock{t: since.Add(90 * time.Second)}, logs: &lockedBuffer{}}
	f.status = Status{
		NodeID: "n1", Site: "hq", Mode: "survivability", ModeSince: &since, Ready: true, Revision: 3,
		CloudURL: "https://cloud.example", CloudError: "dial tcp: connection refused",
		Leader: "n1", Quorum: true, Members: []Member{{ID: "n1", Site: "hq", RaftAddr: "127.0.0.1:7000", Healthy: true, Leader: true}},
		Registrations: 2, RegistrationsPerSite: map[string]int{"hq": 2},
		Trunks: []Trunk{{ID: "t1", Healthy: true, State: "up", RTTMs: new(12.5)}},
	}
	f.admins = []account.Admin{{Username: adminUser, Role: account.RoleAdmin, Bcrypt: hash(t, adminPass)}}
	d := Deps{
		NodeID: "n1",
		Status: func(context.Context) (Status, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			s := f.status
			return s, nil
		},
		Account: func(context.Context) (Account, error) {
			return Account{Sites: []Site{{ID: "hq", Name: "Headquarters", Capacity: 4}}, TrunkNames: map[string]string{"t1": "Carrier A"}}, nil
		},
		Admins: func(context.Context) ([]account.Admin, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.admins, nil
		},
		Log:  slog.New(slog.NewTextHandler(f.logs, nil)),
		Now:  f.clock.Now,
		Tick: 20 * time.Millisecond,
	}
	if mod != nil {
		mod(&d)
	}
	e := gin.New()
	f.ui = Mount(e, d)
	// A machine endpoint registered after Mount, as the API is.
	e.POST("/api/v1/thing", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"ok": true}) })
	f.h = e
	t.Cleanup(f.ui.Close)
	return f
}

func (f *fixture) setStatus(fn func(*Status)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.status)
}

// browser is one client with its cookies and address.
type browser struct {
	f    *fixture
	ip   string
	tls  bool
	jar  map[string]*http.Cookie
	last *http.Response
}

func (f *fixture) browser(ip string) *browser {
	return &browser{f: f, ip: ip, jar: map[string]*http.Cookie{}}
}

// do sends a request; hdr are extra headers.
func (b *browser) do(method, path string, form url.Values, hdr ...string) (*http.Response, string) {
	b.f.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, "http://node.test"+path, body)
	req.RemoteAddr = b.ip + ":40000"
	if b.tls {
		req.TLS = &tls.ConnectionState{}
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	for _, c := range b.jar {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	b.f.h.ServeHTTP(rec, req)
	resp := rec.Result()
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 {
			delete(b.jar, c.Name)
		} else {
			b.jar[c.Name] = c
		}
	}
	data, _ := io.ReadAll(resp.Body)
	b.last = resp
	return resp, string(data)
}

var hiddenToken = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// formToken is the CSRF token of the last page's form.
func formToken(t *testing.T, page string) string {
	t.Helper()
	m := hiddenToken.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf_token field in the page:\n%s", page)
	}
	return m[1]
}

// signIn signs in through the form and returns the status page.
func (b *browser) signIn(user, pass string) (*http.Response, string) {
	b.f.t.Helper()
	_, page := b.do("GET", "/login", nil)
	resp, body := b.do("POST", "/login", url.Values{"username": {user}, "password": {pass}, CSRFField: {formToken(b.f.t, page)}})
	if resp.StatusCode != http.StatusSeeOther {
		return resp, body
	}
	return b.do("GET", resp.Header.Get("Location"), nil)
}

func TestSignInShowsStatusAndSignOutEndsIt(t *testing.T) {
	f := newFixture(t, nil)
	b := f.browser("192.0.2.1")
	if resp, _ := b.do("GET", "/", nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("GET / signed out: %d %q, want 303 to /login", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, page := b.signIn(adminUser, adminPass)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status page after sign-in: %d\n%s", resp.StatusCode, page)
	}
	for _, want := range []string{`id="mode">survivability<`, `id="mode-age">1m 30s<`, `id="registrations">2<`,
		"Headquarters", "Carrier A", "12.5 ms", "dial tcp: connection refused", `id="signed-in-as">admin<`} {
		if !strings.Contains(page, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	if f.ui.Sessions() != 1 {
		t.Errorf("%d sessions, want 1", f.ui.Sessions())
	}
	resp, _ = b.do("POST", "/logout", url.Values{CSRFField: {formToken(t, page)}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("sign out: %d %q, want 303 to /login", resp.StatusCode, resp.Header.Get("Location"))
	}
	if f.ui.Sessions() != 0 {
		t.Errorf("%d sessions after sign-out, want 0", f.ui.Sessions())
	}
	if resp, _ := b.do("GET", "/", nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("GET / after sign-out: %d, want 303", resp.StatusCode)
	}
}

func TestSignInWithHTMXRedirectsWholePage(t *testing.T) {
	f := newFixture(t, nil)
	b := f.browser("192.0.2.1")
	_, page := b.do("GET", "/login", nil)
	resp, _ := b.do("POST", "/login", url.Values{"username": {adminUser}, "password": {adminPass}, CSRFField: {formToken(t, page)}}, "HX-Request", "true")
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("HX-Redirect") != "/" {
		t.Errorf("htmx sign-in: %d HX-Redirect %q, want 204 and /", resp.StatusCode, resp.Header.Get("HX-Redirect"))
	}
}

func TestSessionCookieFlags(t *testing.T) {
	for _, overTLS := range []bool{false, true} {
		f := newFixture(t, nil)
		b := f.browser("192.0.2.1")
		b.tls = overTLS
		_, page := b.do("GET", "/login", nil)
		resp, _ := b.do("POST", "/login", url.Values{"username": {adminUser}, "password": {adminPass}, CSRFField: {formToken(t, page)}})
		var sess *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == SessionCookie {
				sess = c
			}
		}
		if sess == nil {
			t.Fatalf("tls=%v: no %s cookie in %v", overTLS, SessionCookie, resp.Header["Set-Cookie"])
		}
		raw := strings.Join(resp.Header["Set-Cookie"], "\n")
		if !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode || sess.Secure != overTLS || sess.Path != "/" {
			t.Errorf("tls=%v: cookie %s; want HttpOnly, SameSite=Strict, Path=/, Secure=%v", overTLS, raw, overTLS)
		}
		if n := len(sess.Value); n < 43 { // 256 bits in base64url
			t.Errorf("session id of %d characters, want 43", n)
		}
	}
}

func TestSessionIDsAreRandom(t *testing.T) {
	s := newSessions(time.Now)
	seen := map[string]bool{}
	for range 1000 {
		sess := s.create("a", account.RoleAdmin)
		if seen[sess.id] || seen[sess.csrf] || sess.id == sess.csrf {
			t.Fatal("repeated token")
		}
		seen[sess.id], seen[sess.csrf] = true, true
	}
}

func TestSessionTimeouts(t *testing.T) {
	f := newFixture(t, nil)
	b := f.browser("192.0.2.1")
	if resp, _ := b.signIn(adminUser, adminPass); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign in: %d", resp.StatusCode)
	}
	// Activity every 29 minutes keeps it for up to 12 hours.
	for elapsed := time.Duration(0); elapsed+29*time.Minute < AbsoluteTimeout; elapsed += 29 * time.Minute {
		f.clock.Add(29 * time.Minute)
		if resp, _ := b.do("GET", "/", nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("active session ended after %s: %d", elapsed+29*time.Minute, resp.StatusCode)
		}
	}
	f.clock.Add(29 * time.Minute) // past 12 h
	if resp, _ := b.do("GET", "/", nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("session older than %s: %d, want 303 to /login", AbsoluteTimeout, resp.StatusCode)
	}

	b = f.browser("192.0.2.2")
	b.signIn(adminUser, adminPass)
	f.clock.Add(IdleTimeout)
	if resp, _ := b.do("GET", "/", nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("session idle for %s: %d, want 303 to /login", IdleTimeout, resp.StatusCode)
	}
}

func TestSecurityHeadersOnEveryUIResponse(t *testing.T) {
	f := newFixture(t, nil)
	b := f.browser("192.0.2.1")
	check := func(what string, resp *http.Response) {
		t.Helper()
		h := resp.Header
		if got := h.Get("Content-Security-Policy"); got != ContentSecurityPolicy {
			t.Errorf("%s: CSP %q", what, got)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "same-origin" {
			t.Errorf("%s: nosniff %q, referrer %q", what, h.Get("X-Content-Type-Options"), h.Get("Referrer-Policy"))
		}
	}
	resp, _ := b.do("GET", "/login", nil)
	check("GET /login", resp)
	resp, _ = b.do("GET", "/", nil)
	check("GET / signed out", resp)
	resp, _ = b.do("POST", "/login", url.Values{"username": {"x"}})
	check("POST /login without token", resp)
	resp, _ = b.do("GET", "/static/style.css", nil)
	check("style.css", resp)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/css") {
		t.Errorf("style.css: Content-Type %q", ct)
	}
	resp, page := b.signIn(adminUser, adminPass)
	check("status page", resp)
	if strings.Contains(page, "<style") || strings.Contains(page, " style=") || regexp.MustCompile(`<script>|<script [^>]*>[^<]`).MatchString(page) {
		t.Errorf("status page has inline style or script:\n%s", page)
	}
	resp, _ = b.do("POST", "/logout", url.Values{})
	check("refused sign-out", resp)
}

func TestCSRF(t *testing.T) {
	f := newFixture(t, nil)
	b := f.browser("192.0.2.1")
	_, page := b.signIn(adminUser, adminPass)
	token := formToken(t, page)

	resp, body := b.do("POST", "/logout", url.Values{})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "CSRF token") || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("form without token: %d %q\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	resp, _ = b.do("POST", "/logout", url.Values{CSRFField: {token + "x"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("wrong token: %d, want 403", resp.StatusCode)
	}
	resp, _ = b.do("POST", "/logout", url.Values{CSRFField: {token}}, "Origin", "https://evil.example")
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("right token from another origin: %d, want 403", resp.StatusCode)
	}
	// A script's request gets JSON.
	resp, body = b.do("POST", "/api/v1/thing", nil, "Accept", "application/json")
	if resp.StatusCode != http.StatusForbidden || !strings.HasPrefix(body, `{"error":`) {
		t.Errorf("API call with the session cookie, no token: %d %s", resp.StatusCode, body)
	}
	resp, _ = b.do("POST", "/api/v1/thing", nil, CSRFHeader, token)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("API call with the session cookie and the token header: %d, want 200", resp.StatusCode)
	}
	// Machines with a bearer token are not asked for one.
	resp, _ = b.do("POST", "/api/v1/thing", nil, "Authorization", "Bearer x")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("bearer call with a session cookie: %d, want 200", resp.StatusCode)
	}
	if !strings.Contains(f.logs.String(), "bad or missing CSRF token") {
		t.Error("refusals not logged")
	}
	if f.ui.Sessions() != 1 {
		t.Fatal("a refused sign-out ended the session")
	}
	if resp, _ := b.do("POST", "/logout", url.Values{CSRFField: {token}}, "Origin", "http://node.test"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("sign-out with the token: %d, want 303", resp.StatusCode)
	}
}

func TestSignInFormNeedsItsToken(t *testing.T) {
	f := newFixture(t, nil)
	b := f.browser("192.0.2.1")
	b.do("GET", "/login", nil)
	resp, body := b.do("POST", "/login", url.Values{"username": {adminUser}, "password": {adminPass}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "stale") {
		t.Errorf("sign-in without the form token: %d\n%s", resp.StatusCode, body)
	}
	other := f.browser("192.0.2.1") // another browser's token, not its cookie
	_, page := other.do("GET", "/login", nil)
	resp, _ = b.do("POST", "/login", url.Values{"username": {adminUser}, "password": {adminPass}, CSRFField: {formToken(t, page)}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-in with another form's token: %d, want 403", resp.StatusCode)
	}
}

var alertRE = regexp.MustCompile(`(?s)role="alert"[^>]*>(.*?)</p>`)

func alertOf(page string) string {
	if m := alertRE.FindStringSubmatch(page); m != nil {
		return m[1]
	}
	return ""
}

func TestLockoutPerUsername(t *testing.T) {
	f := newFixture(t, nil)
	var msgs []string
	for i := range MaxFailures {
		b := f.browser("192.0.2." + string(rune('1'+i))) // another address each time
		resp, page := b.signIn(adminUser, "wrong-"+string(rune('a'+i)))
		want := http.StatusUnauthorized
		if i == MaxFailures-1 {
			want = http.StatusTooManyRequests
		}
		if resp.StatusCode != want {
			t.Fatalf("failure %d: %d, want %d", i+1, resp.StatusCode, want)
		}
		msgs = append(msgs, alertOf(page))
	}
	if msgs[0] != msgWrong {
		t.Errorf("wrong password told %q, want %q", msgs[0], msgWrong)
	}
	b := f.browser("198.51.100.9")
	resp, page := b.signIn(adminUser, adminPass)
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(alertOf(page), "Try again in 15 minutes") {
		t.Fatalf("6th attempt with the right password: %d %q, want 429 and the lockout", resp.StatusCode, alertOf(page))
	}
	// Another admin is not locked out.
	f.mu.Lock()
	f.admins = append(f.admins, account.Admin{Username: "ops", Role: account.RoleViewer, Bcrypt: hash(t, "ops-password")})
	f.mu.Unlock()
	if resp, _ := f.browser("198.51.100.10").signIn("ops", "ops-password"); resp.StatusCode != http.StatusOK {
		t.Errorf("another username during the lockout: %d, want 200", resp.StatusCode)
	}
	f.clock.Add(LockoutFor)
	if resp, _ := b.signIn(adminUser, adminPass); resp.StatusCode != http.StatusOK {
		t.Errorf("after %s: %d, want 200", LockoutFor, resp.StatusCode)
	}
	logs := f.logs.String()
	if strings.Count(logs, "ui: sign-in failed") != MaxFailures || !strings.Contains(logs, "ui: sign-in refused: locked out") {
		t.Errorf("failures not logged:\n%s", logs)
	}
	for _, secret := range []string{adminPass, "wrong-a", "wrong-e"} {
		if strings.Contains(logs, secret) {
			t.Errorf("a password (%q) is in the log", secret)
		}
	}
}

func TestLockoutPerAddressAndNoEnumeration(t *testing.T) {
	f := newFixture(t, nil)
	b := f.browser("203.0.113.7")
	var unknown, wrong string
	for i := range MaxFailures {
		user := "nobody-" + string(rune('a'+i)) // unknown users, one attempt each
		_, page := b.signIn(user, "x")
		if i == 0 {
			unknown = alertOf(page)
		}
	}
	_, page := f.browser("203.0.113.8").signIn(adminUser, "x")
	wrong = alertOf(page)
	if unknown != wrong || unknown != msgWrong {
		t.Errorf("unknown user told %q, wrong password %q: want both %q", unknown, wrong, msgWrong)
	}
	resp, page := b.signIn(adminUser, adminPass)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("right password from a locked-out address: %d, want 429", resp.StatusCode)
	}
	// A locked-out unknown user is told what a locked-out admin is told.
	for range MaxFailures {
		f.browser("192.0.2.50").signIn("ghost", "x")
	}
	_, ghost := f.browser("192.0.2.51").signIn("ghost", "x")
	if alertOf(ghost) != alertOf(page) {
		t.Errorf("locked-out unknown user told %q, locked-out address %q", alertOf(ghost), alertOf(page))
	}
	if resp, _ := f.browser("203.0.113.9").signIn(adminUser, adminPass); resp.StatusCode != http.StatusOK {
		t.Errorf("same user from another address: %d, want 200", resp.StatusCode)
	}
}

func TestNamesAreEscaped(t *testing.T) {
	f := newFixture(t, func(d *Deps) {
		d.Account = func(context.Context) (Account, error) {
			return Account{Sites: []Site{{ID: "hq", Name: evilName, Capacity: 1}}, TrunkNames: map[string]string{"t1": evilName}}, nil
		}
	})
	f.admins = []account.Admin{{Username: evilName, Role: account.RoleAdmin, Bcrypt: hash(t, "pw-of-the-evil-admin")}}
	f.setStatus(func(s *Status) { s.CloudError = evilName })
	b := f.browser("192.0.2.1")
	resp, page := b.signIn(evilName, "pw-of-the-evil-admin")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign in: %d", resp.StatusCode)
	}
	if strings.Contains(page, "<script>alert") {
		t.Errorf("an unescaped name in the page:\n%s", page)
	}
	if n := strings.Count(page, "&lt;script&gt;alert(1)&lt;/script&gt;"); n < 4 {
		t.Errorf("%d escaped names, want 4 (user, site, trunk, error)", n)
	}
	// And in the live stream.
	ev := readEvents(t, f, b, 1)
	if strings.Contains(ev[0], "<script>alert") || !strings.Contains(ev[0], "&lt;script&gt;") {
		t.Errorf("stream not escaped:\n%s", ev[0])
	}
}

func TestStaticFiles(t *testing.T) {
	f := newFixture(t, nil)
	b := f.browser("192.0.2.1")
	for path, want := range map[string]int{
		"/static/style.css": 200, "/static/live.js": 200, "/static/": 404, "/static/vendor/": 404,
		"/static/vendor/README.md": 404, "/static/nope.js": 404,
	} {
		if resp, _ := b.do("GET", path, nil); resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	resp, _ := b.do("GET", "/static/vendor/htmx.min.js", nil)
	if want := map[bool]int{true: 200, false: 404}[f.ui.htmx]; resp.StatusCode != want {
		t.Errorf("htmx (vendored: %v): %d, want %d", f.ui.htmx, resp.StatusCode, want)
	}
	_, page := b.do("GET", "/login", nil)
	if got := strings.Contains(page, "/static/vendor/htmx.min.js"); got != f.ui.htmx {
		t.Errorf("page links htmx: %v, vendored: %v", got, f.ui.htmx)
	}
}
