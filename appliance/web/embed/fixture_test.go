package embed

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/calls"
	"github.com/outpost-voice/outpost/appliance/store"
)

// What the package needs is what the node has.
var (
	_ Backend   = (*calls.B2BUA)(nil)
	_ Directory = (*store.Reader)(nil)
)

const (
	realm      = "acme.example"
	allowed    = "https://crm.example.com"
	adminToken = "admin-token"
	evilName   = "<script>alert(1)</script>"
)

// fakeClock is a settable clock.
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

// fakeDirectory is the configuration in force.
type fakeDirectory struct {
	mu      sync.Mutex
	origins []string
	users   []account.User
	err     error
}

func (d *fakeDirectory) Account(context.Context) (account.Account, error) {
	return account.Account{ID: "acme", Name: "Acme", SIPRealm: realm}, d.failure()
}

func (d *fakeDirectory) Embed(context.Context) (account.Embed, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return account.Embed{AllowedOrigins: append([]string(nil), d.origins...)}, d.err
}

func (d *fakeDirectory) failure() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

func (d *fakeDirectory) find(match func(account.User) bool, key string) (account.User, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return account.User{}, d.err
	}
	for _, u := range d.users {
		if match(u) {
			return u, nil
		}
	}
	return account.User{}, fmt.Errorf("user %q: %w", key, store.ErrNotFound)
}

func (d *fakeDirectory) UserByUsername(_ context.Context, name string) (account.User, error) {
	return d.find(func(u account.User) bool { return u.SIP.Username == name }, name)
}

func (d *fakeDirectory) UserByID(_ context.Context, id string) (account.User, error) {
	return d.find(func(u account.User) bool { return u.ID == id }, id)
}

// setPassword gives username a new SIP password (a new HA1).
func (d *fakeDirectory) setPassword(username, pw string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, u := range d.users {
		if u.SIP.Username == username {
			d.users[i].SIP.HA1MD5 = account.HA1(account.DigestMD5, username, realm, pw)
			d.users[i].SIP.HA1SHA256 = account.HA1(account.DigestSHA256, username, realm, pw)
		}
	}
}

func (d *fakeDirectory) remove(username string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var keep []account.User
	for _, u := range d.users {
		if u.SIP.Username != username {
			keep = append(keep, u)
		}
	}
	d.users = keep
}

func user(id, username, name, ext string) account.User {
	return account.User{ID: id, Name: name, Extension: ext, SIP: account.SIPCredentials{Username: username,
		HA1MD5:    account.HA1(account.DigestMD5, username, realm, "pw-"+username),
		HA1SHA256: account.HA1(account.DigestSHA256, username, realm, "pw-"+username)}}
}

// backendCall is one call to the fake backend.
type backendCall struct {
	Method, User, ID, Dest string
	On, Warm               bool
	Digit                  byte
	Status                 int
}

// fakeBackend is the B2BUA: engagements per user, a subscription the
// test feeds, and a record of what was asked.
type fakeBackend struct {
	mu          sync.Mutex
	engagements map[string][]calls.Engagement
	agent       map[string]int
	subs        map[string][]chan calls.EngagementEvent
	unsubscribe int
	calls       []backendCall
	err         error // returned by every action
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{engagements: map[string][]calls.Engagement{}, agent: map[string]int{}, subs: map[string][]chan calls.EngagementEvent{}}
}

func (b *fakeBackend) record(c backendCall) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, c)
	return b.err
}

func (b *fakeBackend) recorded() []backendCall {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]backendCall(nil), b.calls...)
}

func (b *fakeBackend) Subscribe(username string) (<-chan calls.EngagementEvent, func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ch := make(chan calls.EngagementEvent, 64)
	b.subs[username] = append(b.subs[username], ch)
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.unsubscribe++
		})
	}
}

// send hands ev to username's subscribers.
func (b *fakeBackend) send(username string, ev calls.EngagementEvent) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, ch := range b.subs[username] {
		ch <- ev
	}
}

func (b *fakeBackend) subscribers(username string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs[username])
}

func (b *fakeBackend) Engagements(username string) []calls.Engagement {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]calls.Engagement(nil), b.engagements[username]...)
}

func (b *fakeBackend) ClickToCall(_ context.Context, username, dest string) (calls.Engagement, error) {
	if err := b.record(backendCall{Method: "ClickToCall", User: username, Dest: dest}); err != nil {
		return calls.Engagement{}, err
	}
	return calls.Engagement{ID: "e-new", Direction: "outbound", From: username, To: dest, State: calls.EngRinging}, nil
}

func (b *fakeBackend) Accept(_ context.Context, username, id string) error {
	return b.record(backendCall{Method: "Accept", User: username, ID: id})
}

func (b *fakeBackend) Reject(_ context.Context, username, id string) error {
	return b.record(backendCall{Method: "Reject", User: username, ID: id})
}

func (b *fakeBackend) Hangup(_ context.Context, username, id string) error {
	return b.record(backendCall{Method: "Hangup", User: username, ID: id})
}

func (b *fakeBackend) Hold(_ context.Context, username, id string, on bool) error {
	return b.record(backendCall{Method: "Hold", User: username, ID: id, On: on})
}

func (b *fakeBackend) Mute(_ context.Context, username, id string, on bool) error {
	return b.record(backendCall{Method: "Mute", User: username, ID: id, On: on})
}

func (b *fakeBackend) SendDTMF(_ context.Context, username, id string, digit byte) error {
	return b.record(backendCall{Method: "SendDTMF", User: username, ID: id, Digit: digit})
}

func (b *fakeBackend) Transfer(_ context.Context, username, id, dest string, warm bool) error {
	return b.record(backendCall{Method: "Transfer", User: username, ID: id, Dest: dest, Warm: warm})
}

func (b *fakeBackend) AddCall(_ context.Context, username, id, dest string) (calls.Engagement, error) {
	if err := b.record(backendCall{Method: "AddCall", User: username, ID: id, Dest: dest}); err != nil {
		return calls.Engagement{}, err
	}
	return calls.Engagement{ID: "e-consult"}, nil
}

func (b *fakeBackend) CancelConsult(_ context.Context, username, id string) error {
	return b.record(backendCall{Method: "CancelConsult", User: username, ID: id})
}

func (b *fakeBackend) CompleteTransfer(_ context.Context, username, id string) error {
	return b.record(backendCall{Method: "CompleteTransfer", User: username, ID: id})
}

func (b *fakeBackend) MergeConsult(_ context.Context, username, id string) error {
	return b.record(backendCall{Method: "MergeConsult", User: username, ID: id})
}

func (b *fakeBackend) AgentStatus(username string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s, ok := b.agent[username]; ok {
		return s
	}
	return calls.AgentReady
}

func (b *fakeBackend) SetAgentStatus(username string, status int) error {
	if err := b.record(backendCall{Method: "SetAgentStatus", User: username, Status: status}); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.agent[username] = status
	return nil
}

// fixture is a mounted widget with a fake node behind it.
type fixture struct {
	t       *testing.T
	w       *Widget
	h       http.Handler
	clock   *fakeClock
	logs    *lockedBuffer
	dir     *fakeDirectory
	backend *fakeBackend
}

func newFixture(t *testing.T, mod func(*Deps)) *fixture {
	t.Helper()
	gin.SetMode(gin.ReleaseMode)
	f := &fixture{t: t, clock: &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}, logs: &lockedBuffer{}, backend: newFakeBackend()}
	f.dir = &fakeDirectory{origins: []string{allowed, "http://localhost:8081"}, users: []account.User{
		user("u-alice", "alice", "Alice Adams", "1001"),
		user("u-bob", "bob", "Bob Baker", "1002"),
		user("u-mallory", "mallory", evilName, "1666"),
	}}
	d := Deps{
		Calls: f.backend, Directory: f.dir, Key: []byte("0123456789abcdef0123456789abcdef"),
		RequireAdmin: func(c *gin.Context) {
			if c.GetHeader("Authorization") != "Bearer "+adminToken {
				c.AbortWithStatusJSON(http.StatusUnauthorized, newErrorBody("missing or wrong bearer token"))
				return
			}
			c.Next()
		},
		Log: slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now: f.clock.Now,
	}
	if mod != nil {
		mod(&d)
	}
	e := gin.New()
	f.w = Mount(e, d)
	f.h = e
	t.Cleanup(f.w.Close)
	return f
}

// do sends a request from ip; hdr are header name, value pairs.
func (f *fixture) do(method, path, body, ip string, hdr ...string) *httptest.ResponseRecorder {
	f.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, "http://node.test"+path, r)
	req.RemoteAddr = ip + ":40000"
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return rec
}

// signIn signs username in with their password and returns the session token.
func (f *fixture) signIn(username string) string {
	f.t.Helper()
	rec := f.do("POST", "/embed/api/session", fmt.Sprintf(`{"username":%q,"password":%q}`, username, "pw-"+username), "192.0.2.1")
	if rec.Code != http.StatusOK {
		f.t.Fatalf("sign in %s: %d %s", username, rec.Code, rec.Body)
	}
	var s Session
	if err := json.Unmarshal(rec.Body.Bytes(), &s); err != nil || s.Token == "" {
		f.t.Fatalf("sign in %s: %v %s", username, err, rec.Body)
	}
	return s.Token
}

// act posts a host request with a session token.
func (f *fixture) act(tok, body string) (int, ActionResponse) {
	f.t.Helper()
	rec := f.do("POST", "/embed/api/action", body, "192.0.2.1", "Authorization", "Bearer "+tok)
	var res ActionResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
		f.t.Fatalf("action %s: %d, body not JSON: %s", body, rec.Code, rec.Body)
	}
	return rec.Code, res
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not JSON: %v: %s", err, b)
	}
	return m
}
