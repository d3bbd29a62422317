package registrar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/emiago/sipgo/siptest"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/store"
)

// The demo account (scripts/run-demo.sh): realm acme.example, alice and bob
// at the HQ site; carol, added here, at the branch.
const (
	bobUser      = "bob"
	bobPassword  = "pw-bob"
	bobHA1MD5    = "9a5cd1ce46e5c9c33bf4822ef6bf3457"
	carolUser    = "carol"
	siteHQ       = "site-hq"
	siteBranch   = "site-branch"
	aliceAOR     = "alice@acme.example"
	aliceContact = "<sip:alice@192.0.2.10:5060>"
	aliceSource  = "192.0.2.10:5060"
	regNodeID    = "node-a"
	regUA        = "Yealink SIP-T54W 96.86.0.70"
	regCNonce    = "f00dcafe"
	regURI       = "sip:acme.example"
	// testMaxFailures is the throttle's limit in these tests (the node
	// allows 20 a minute).
	testMaxFailures = 3
)

// regSecret is the 32-byte cluster secret of the registrar tests.
var regSecret = []byte("outpost-registrar-test-secret-32")

var testLog = slog.New(slog.DiscardHandler)

// fakeDirectory is a Directory over the demo account. Set its fields to
// make it fail or change mode.
type fakeDirectory struct {
	mu      sync.Mutex
	acct    account.Account
	acctErr error
	users   map[string]account.User
	userErr error // returned by every UserByUsername when set
	mode    string
	modeErr error
}

func newFakeDirectory() *fakeDirectory {
	user := func(id, site, username, ha1MD5, password, ext, did string) account.User {
		return account.User{
			ID: id, Site: site, Name: username, Extension: ext, Numbers: []string{did},
			SIP: account.SIPCredentials{
				Username:  username,
				HA1MD5:    ha1MD5,
				HA1SHA256: account.HA1(account.DigestSHA256, username, aliceRealm, password),
			},
		}
	}
	return &fakeDirectory{
		acct: account.Account{ID: "acct-acme", Name: "Acme", SIPRealm: aliceRealm},
		users: map[string]account.User{
			aliceUser: user("u-alice", siteHQ, aliceUser, aliceHA1MD5, alicePassword, "1001", "+16505550101"),
			bobUser:   user("u-bob", siteHQ, bobUser, bobHA1MD5, bobPassword, "1002", "+16505550102"),
			carolUser: user("u-carol", siteBranch, carolUser,
				account.HA1(account.DigestMD5, carolUser, aliceRealm, "pw-carol"), "pw-carol", "2001", "+16505550201"),
		},
		mode: store.ModeNormal,
	}
}

func (d *fakeDirectory) Account(context.Context) (account.Account, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.acct, d.acctErr
}

func (d *fakeDirectory) UserByUsername(_ context.Context, username string) (account.User, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.userErr != nil {
		return account.User{}, d.userErr
	}
	u, ok := d.users[username]
	if !ok {
		return account.User{}, fmt.Errorf("user %q: %w", username, store.ErrNotFound)
	}
	return u, nil
}

func (d *fakeDirectory) Mode(context.Context) (string, time.Time, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.mode, time.Time{}, d.modeErr
}

func (d *fakeDirectory) setMode(mode string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.mode = mode
}

// batchRecorder is a Location persist func that records its batches; it
// fails the next failNext calls with failErr (default: a transient error).
type batchRecorder struct {
	mu       sync.Mutex
	batches  [][]store.Binding
	calls    int
	failNext int
	failErr  error
}

func (r *batchRecorder) persist(b []store.Binding) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.failNext > 0 {
		r.failNext--
		if r.failErr != nil {
			return r.failErr
		}
		return errors.New("database is locked")
	}
	r.batches = append(r.batches, slices.Clone(b))
	return nil
}

func (r *batchRecorder) snapshot() [][]store.Binding {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.batches)
}

// all is every persisted binding, in order.
func (r *batchRecorder) all() []store.Binding {
	var out []store.Binding
	for _, b := range r.snapshot() {
		out = append(out, b...)
	}
	return out
}

// flushLocation drives l.Run with a context that has already ended: Run
// persists what is pending and returns.
func flushLocation(t testing.TB, l *Location) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan struct{})
	go func() {
		l.Run(ctx)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Location.Run did not return after its context ended")
	}
}

var branchSeq atomic.Uint64

// regMsg is a REGISTER (or another request) to build as raw SIP text.
type regMsg struct {
	method   string   // default REGISTER
	to       string   // To (and From) URI; default sip:alice@acme.example
	callID   string   // default reg-1@192.0.2.10
	cseq     uint32   // default 1
	via      string   // Via sent-by, the source; default 192.0.2.10:5060
	contacts []string // one Contact header each
	expires  string   // Expires value; none when ""
	auth     string   // Authorization value; none when ""
	extra    []string // more header lines
}

func (m regMsg) String() string {
	if m.method == "" {
		m.method = "REGISTER"
	}
	if m.to == "" {
		m.to = "sip:alice@acme.example"
	}
	if m.callID == "" {
		m.callID = "reg-1@192.0.2.10"
	}
	if m.cseq == 0 {
		m.cseq = 1
	}
	if m.via == "" {
		m.via = aliceSource
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", m.method, regURI)
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s;branch=z9hG4bK-%d\r\n", m.via, branchSeq.Add(1))
	b.WriteString("Max-Forwards: 70\r\n")
	fmt.Fprintf(&b, "From: <%s>;tag=f-1\r\n", m.to)
	fmt.Fprintf(&b, "To: <%s>\r\n", m.to)
	fmt.Fprintf(&b, "Call-ID: %s\r\n", m.callID)
	fmt.Fprintf(&b, "CSeq: %d %s\r\n", m.cseq, m.method)
	for _, c := range m.contacts {
		fmt.Fprintf(&b, "Contact: %s\r\n", c)
	}
	if m.expires != "" {
		fmt.Fprintf(&b, "Expires: %s\r\n", m.expires)
	}
	if m.auth != "" {
		fmt.Fprintf(&b, "Authorization: %s\r\n", m.auth)
	}
	fmt.Fprintf(&b, "User-Agent: %s\r\n", regUA)
	for _, e := range m.extra {
		b.WriteString(e + "\r\n")
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.String()
}

func (m regMsg) request(t testing.TB) *sip.Request {
	t.Helper()
	return parseRequest(t, m.String())
}

func parseRequest(t testing.TB, raw string) *sip.Request {
	t.Helper()
	msg, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		t.Fatalf("parse %q: %v", raw, err)
	}
	req, ok := msg.(*sip.Request)
	if !ok {
		t.Fatalf("parse %q: got a %T, want a request", raw, msg)
	}
	return req
}

// login is who signs a request, with which algorithm.
type login struct{ user, password, alg string }

var (
	aliceMD5    = login{aliceUser, alicePassword, account.DigestMD5}
	aliceSHA256 = login{aliceUser, alicePassword, account.DigestSHA256}
	bobMD5      = login{bobUser, bobPassword, account.DigestMD5}
	bobSHA256   = login{bobUser, bobPassword, account.DigestSHA256}
	carolMD5    = login{carolUser, "pw-carol", account.DigestMD5}
)

// authorization is the Authorization value a phone computes for a REGISTER
// from the nonce of a challenge: qop=auth, nc and a cnonce.
func (l login) authorization(nonce, nc string) string {
	ha1 := account.HA1(l.alg, l.user, aliceRealm, l.password)
	resp := handResponse(l.alg, ha1, nonce, nc, regCNonce, "auth", "REGISTER", regURI)
	return fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=%s, qop=auth, nc=%s, cnonce="%s"`,
		l.user, aliceRealm, nonce, regURI, resp, l.alg, nc, regCNonce)
}

// regHarness is a registrar over the demo directory with an injected clock,
// a real Digest and Throttle, and a Location that records what it persists.
type regHarness struct {
	clock    *authClock
	dir      *fakeDirectory
	digest   *Digest
	throttle *Throttle
	persist  *batchRecorder
	loc      *Location
	reg      *Registrar
}

// newRegHarness builds a registrar; edit, when not nil, changes its Options
// (which start with only NodeID and Now set, so the defaults apply).
func newRegHarness(t testing.TB, edit func(*Options)) *regHarness {
	t.Helper()
	clock := newAuthClock()
	h := &regHarness{clock: clock, dir: newFakeDirectory(), persist: &batchRecorder{}}
	h.digest = NewDigest(regSecret, digestTTL, clock.Now)
	h.throttle = NewThrottle(testMaxFailures, time.Minute, clock.Now)
	h.loc = NewLocation(h.persist.persist, testLog)
	opt := Options{NodeID: regNodeID, Now: clock.Now}
	if edit != nil {
		edit(&opt)
	}
	h.reg = New(h.dir, h.digest, h.throttle, h.loc, opt, testLog)
	return h
}

// serve runs handler on req through a server transaction recorder and
// returns the one response it sent.
func serve(t testing.TB, handler func(*sip.Request, sip.ServerTransaction), req *sip.Request) *sip.Response {
	t.Helper()
	tx := siptest.NewServerTxRecorder(req)
	defer tx.Terminate()
	handler(req, tx)
	res := tx.Result()
	if len(res) != 1 {
		t.Fatalf("%s: handler sent %d responses, want 1", req.StartLine(), len(res))
	}
	return res[0]
}

func (h *regHarness) send(t testing.TB, m regMsg) *sip.Response {
	t.Helper()
	return serve(t, h.reg.OnRegister, m.request(t))
}

// nonce sends m without credentials and returns the nonce of the 401.
func (h *regHarness) nonce(t testing.TB, m regMsg) string {
	t.Helper()
	m.auth = ""
	res := h.send(t, m)
	if res.StatusCode != 401 {
		t.Fatalf("unauthenticated REGISTER: got %d %s, want 401", res.StatusCode, res.Reason)
	}
	return nonceOf(t, res)
}

// exchange is a phone's REGISTER: m without credentials, then, if
// challenged, m signed by who with the challenge's nonce and nc=00000001.
// It returns the last response.
func (h *regHarness) exchange(t testing.TB, m regMsg, who login) *sip.Response {
	t.Helper()
	m.auth = ""
	res := h.send(t, m)
	if res.StatusCode != 401 {
		return res
	}
	m.auth = who.authorization(nonceOf(t, res), "00000001")
	return h.send(t, m)
}

// mustRegister is exchange that insists on a 200.
func (h *regHarness) mustRegister(t testing.TB, m regMsg, who login) *sip.Response {
	t.Helper()
	res := h.exchange(t, m, who)
	if res.StatusCode != 200 {
		t.Fatalf("REGISTER %v: got %d %s, want 200", m.contacts, res.StatusCode, res.Reason)
	}
	return res
}

// contactsOf returns the URIs and expires of the bindings in h's Location
// for aor, in order, as "uri;expires=N" relative to the clock.
func (h *regHarness) contactsOf(aor string) []string {
	now := h.clock.Now()
	var out []string
	for _, b := range h.loc.Lookup(aor, now) {
		out = append(out, fmt.Sprintf("<%s>;expires=%d", b.Contact, int(b.Expires.Sub(now)/time.Second)))
	}
	return out
}

var nonceParam = regexp.MustCompile(`nonce="([^"]*)"`)

// nonceOf returns the nonce shared by the WWW-Authenticate headers of res.
func nonceOf(t testing.TB, res *sip.Response) string {
	t.Helper()
	var nonce string
	for i, v := range headerValues(res, "WWW-Authenticate") {
		m := nonceParam.FindStringSubmatch(v)
		if m == nil {
			t.Fatalf("no nonce in WWW-Authenticate %q", v)
		}
		if i > 0 && m[1] != nonce {
			t.Fatalf("challenges carry different nonces %q and %q", nonce, m[1])
		}
		nonce = m[1]
	}
	if nonce == "" {
		t.Fatalf("%d %s has no WWW-Authenticate", res.StatusCode, res.Reason)
	}
	return nonce
}

// withoutNonces replaces every nonce in vs by NONCE.
func withoutNonces(vs []string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = nonceParam.ReplaceAllString(v, `nonce="NONCE"`)
	}
	return out
}

func headerValues(res *sip.Response, name string) []string {
	var out []string
	for _, h := range res.GetHeaders(name) {
		out = append(out, h.Value())
	}
	return out
}

func resHeader(res *sip.Response, name string) string {
	if h := res.GetHeader(name); h != nil {
		return h.Value()
	}
	return ""
}

func headerNames(res *sip.Response) []string {
	var out []string
	for _, h := range res.Headers() {
		out = append(out, h.Name())
	}
	return out
}

// wantRes is the part of a response a test pins: status, reason, the Contact
// values (checked when contacts is not nil; use []string{} for none) and
// other headers' values.
type wantRes struct {
	code     int
	reason   string
	contacts []string
	hdrs     map[string]string
}

func checkResponse(t testing.TB, res *sip.Response, w wantRes) {
	t.Helper()
	if res.StatusCode != w.code || res.Reason != w.reason {
		t.Errorf("response %d %q, want %d %q", res.StatusCode, res.Reason, w.code, w.reason)
	}
	if w.contacts != nil {
		if got := headerValues(res, "Contact"); !slices.Equal(got, w.contacts) {
			t.Errorf("Contact = %q, want %q", got, w.contacts)
		}
	}
	for name, v := range w.hdrs {
		if got := headerValues(res, name); len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want [%q]", name, got, v)
		}
	}
}

const (
	reasonOK           = "OK"
	reasonUnauthorized = "Unauthorized"
	reasonOutOfOrder   = "Server Internal Error: out-of-order REGISTER"
	reasonNotOwner     = "Forbidden: the authenticated user does not own this address"
	reasonThrottled    = "Forbidden: too many failed attempts; wait and retry"
	reasonNotServed    = "Not Found: domain not served here"
	reasonWildcardExp  = "Bad Request: Contact * needs Expires: 0"
	reasonBadExpires   = "Bad Request: Expires is not a number of seconds"
	reasonAtCapacity   = "Service Unavailable: site at capacity"
	dateAtStart        = "Sat, 01 Mar 2025 12:00:00 GMT" // newAuthClock's start
)

func TestDemoBobHA1(t *testing.T) {
	if got := account.HA1(account.DigestMD5, bobUser, aliceRealm, bobPassword); got != bobHA1MD5 {
		t.Errorf("HA1(MD5, bob) = %s, want %s", got, bobHA1MD5)
	}
}

func TestRegisterChallenge(t *testing.T) {
	tests := []struct {
		name string
		algs []string // nil: the default
		want []string
	}{
		{"default MD5 then SHA-256", nil, []string{
			`Digest realm="acme.example", nonce="NONCE", algorithm=MD5, qop="auth"`,
			`Digest realm="acme.example", nonce="NONCE", algorithm=SHA-256, qop="auth"`,
		}},
		{"SHA-256 first", []string{account.DigestSHA256, account.DigestMD5}, []string{
			`Digest realm="acme.example", nonce="NONCE", algorithm=SHA-256, qop="auth"`,
			`Digest realm="acme.example", nonce="NONCE", algorithm=MD5, qop="auth"`,
		}},
		{"SHA-256 only", []string{account.DigestSHA256}, []string{
			`Digest realm="acme.example", nonce="NONCE", algorithm=SHA-256, qop="auth"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newRegHarness(t, nil)
			if tt.algs != nil {
				if err := h.digest.SetAlgorithms(tt.algs); err != nil {
					t.Fatal(err)
				}
			}
			res := h.send(t, regMsg{contacts: []string{aliceContact}})
			checkResponse(t, res, wantRes{code: 401, reason: reasonUnauthorized, contacts: []string{}})
			www := headerValues(res, "WWW-Authenticate")
			if got := withoutNonces(www); !slices.Equal(got, tt.want) {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tt.want)
			}
			nonce := nonceOf(t, res) // also checks the nonces are the same
			if _, _, ok := openNonce(h.digest.nonceKey, aliceRealm, nonce); !ok {
				t.Errorf("nonce %q was not minted by the registrar's digest", nonce)
			}
			if got := h.loc.Lookup(aliceAOR, h.clock.Now()); len(got) != 0 {
				t.Errorf("a challenged REGISTER bound %v", got)
			}
			if again := nonceOf(t, h.send(t, regMsg{contacts: []string{aliceContact}})); again == nonce {
				t.Errorf("two challenges share nonce %q", nonce)
			}
		})
	}
}

func TestRegisterAuthenticated(t *testing.T) {
	tests := []struct {
		name     string
		who      login
		to       string
		contact  string
		wantUser account.User
	}{
		{"alice MD5", aliceMD5, "sip:alice@acme.example", aliceContact, newFakeDirectory().users[aliceUser]},
		{"alice SHA-256", aliceSHA256, "sip:alice@acme.example", aliceContact, newFakeDirectory().users[aliceUser]},
		{"bob MD5", bobMD5, "sip:bob@acme.example", "<sip:bob@192.0.2.10:5060>", newFakeDirectory().users[bobUser]},
		{"bob SHA-256", bobSHA256, "sip:bob@acme.example", "<sip:bob@192.0.2.10:5060>", newFakeDirectory().users[bobUser]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newRegHarness(t, nil)
			m := regMsg{to: tt.to, callID: "c-42@192.0.2.10", cseq: 7, contacts: []string{tt.contact}}
			res := h.exchange(t, m, tt.who)
			checkResponse(t, res, wantRes{code: 200, reason: reasonOK,
				contacts: []string{tt.contact + ";expires=3600"},
				hdrs:     map[string]string{"Date": dateAtStart, "Supported": "path, outbound, replaces, timer"}})

			aor := tt.wantUser.SIP.Username + "@" + aliceRealm
			got := h.loc.Lookup(aor, h.clock.Now())
			if len(got) != 1 {
				t.Fatalf("Lookup(%s) = %d bindings, want 1", aor, len(got))
			}
			now := h.clock.Now()
			wantB := store.Binding{
				ID: got[0].ID, AOR: aor, UserID: tt.wantUser.ID, Username: tt.wantUser.SIP.Username,
				Site: tt.wantUser.Site, Contact: strings.Trim(tt.contact, "<>"),
				CallID: "c-42@192.0.2.10", CSeq: 7, Transport: "udp", Source: aliceSource,
				Node: regNodeID, UserAgent: regUA, Expires: now.Add(time.Hour), UpdatedAt: now,
			}
			if got[0] != wantB {
				t.Errorf("binding\n got %+v\nwant %+v", got[0], wantB)
			}
			if ok, _ := regexp.MatchString(`^[0-9a-f]{32}$`, got[0].ID); !ok {
				t.Errorf("binding id %q, want 32 hex digits", got[0].ID)
			}
			if len(h.persist.snapshot()) != 0 {
				t.Errorf("persisted before Run")
			}
			flushLocation(t, h.loc)
			if p := h.persist.all(); len(p) != 1 || p[0] != wantB {
				t.Errorf("persisted %+v, want [%+v]", p, wantB)
			}
			if total, perSite := h.loc.Count(); total != 1 || perSite[tt.wantUser.Site] != 1 {
				t.Errorf("Count = %d, %v; want 1 at %s", total, perSite, tt.wantUser.Site)
			}
		})
	}
}

// TestRegisterRejectedCredentials sends each kind of bad credentials
// testMaxFailures+1 times from one source, then checks whether they were
// counted as failures: a counted kind gets the source blocked.
func TestRegisterRejectedCredentials(t *testing.T) {
	m := regMsg{contacts: []string{aliceContact}}
	signed := func(who login) func(*testing.T, *regHarness) string {
		return func(t *testing.T, h *regHarness) string { return who.authorization(h.nonce(t, m), "00000001") }
	}
	edited := func(edit func(string) string) func(*testing.T, *regHarness) string {
		return func(t *testing.T, h *regHarness) string {
			return edit(aliceMD5.authorization(h.nonce(t, m), "00000001"))
		}
	}
	tests := []struct {
		name        string
		auth        func(*testing.T, *regHarness) string
		wantCode    int
		wantReason  string
		wantStale   bool
		wantCounted bool
	}{
		{"wrong password MD5", signed(login{aliceUser, "guess", account.DigestMD5}), 401, reasonUnauthorized, false, true},
		{"wrong password SHA-256", signed(login{aliceUser, "guess", account.DigestSHA256}), 401, reasonUnauthorized, false, true},
		{"unknown user MD5", signed(login{"mallory", alicePassword, account.DigestMD5}), 401, reasonUnauthorized, false, true},
		{"unknown user SHA-256", signed(login{"mallory", alicePassword, account.DigestSHA256}), 401, reasonUnauthorized, false, true},
		{"bob's password for alice", signed(login{aliceUser, bobPassword, account.DigestMD5}), 401, reasonUnauthorized, false, true},
		{"unsupported algorithm", edited(func(a string) string {
			return strings.Replace(a, "algorithm=MD5", "algorithm=SHA-512-256", 1)
		}), 401, reasonUnauthorized, false, true},
		{"other realm", edited(func(a string) string {
			return strings.Replace(a, `realm="acme.example"`, `realm="other.example"`, 1)
		}), 401, reasonUnauthorized, false, true},
		{"forged nonce", func(t *testing.T, h *regHarness) string {
			foreign := NewDigest(otherDigestSecret, digestTTL, h.clock.Now)
			return aliceMD5.authorization(freshNonce(t, foreign, aliceRealm), "00000001")
		}, 401, reasonUnauthorized, false, true},
		{"qop auth-int", edited(func(a string) string { return strings.Replace(a, "qop=auth", "qop=auth-int", 1) }),
			401, reasonUnauthorized, false, true},
		{"missing response", edited(func(a string) string { return regexp.MustCompile(`response="[^"]*", `).ReplaceAllString(a, "") }),
			400, "Bad Request: malformed digest credentials: missing response", false, true},
		{"basic scheme", func(*testing.T, *regHarness) string { return "Basic YWxpY2U6cHctYWxpY2U=" },
			400, `Bad Request: malformed digest credentials: scheme "Basic", want Digest`, false, true},
		{"stale nonce", func(t *testing.T, h *regHarness) string {
			past := NewDigest(regSecret, digestTTL, func() time.Time { return h.clock.Now().Add(-digestTTL - time.Second) })
			return aliceMD5.authorization(freshNonce(t, past, aliceRealm), "00000001")
		}, 401, reasonUnauthorized, true, false},
		{"stale nonce wrong password", func(t *testing.T, h *regHarness) string {
			past := NewDigest(regSecret, digestTTL, func() time.Time { return h.clock.Now().Add(-digestTTL - time.Second) })
			return login{aliceUser, "guess", account.DigestMD5}.authorization(freshNonce(t, past, aliceRealm), "00000001")
		}, 401, reasonUnauthorized, true, false},
	}
	var first *sip.Response // the first case's answer: every 401 must look like it
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newRegHarness(t, nil)
			for i := 0; i <= testMaxFailures; i++ {
				m := m
				m.cseq = uint32(i + 1)
				m.auth = tt.auth(t, h)
				res := h.send(t, m)
				checkResponse(t, res, wantRes{code: tt.wantCode, reason: tt.wantReason, contacts: []string{}})
				for _, v := range headerValues(res, "WWW-Authenticate") {
					if got := strings.HasSuffix(v, ", stale=true"); got != tt.wantStale {
						t.Errorf("attempt %d: WWW-Authenticate %q, want stale=%v", i, v, tt.wantStale)
					}
				}
				if tt.wantCode == 401 && !tt.wantStale {
					if first == nil {
						first = res
					}
					if got, want := headerNames(res), headerNames(first); !slices.Equal(got, want) {
						t.Errorf("header names %q, want %q as for a wrong password", got, want)
					}
					if got, want := withoutNonces(headerValues(res, "WWW-Authenticate")),
						withoutNonces(headerValues(first, "WWW-Authenticate")); !slices.Equal(got, want) {
						t.Errorf("WWW-Authenticate %q, want %q as for a wrong password", got, want)
					}
				}
			}
			res := h.send(t, m)
			wantCode := 401
			if tt.wantCounted {
				wantCode = 403
			}
			if res.StatusCode != wantCode {
				t.Errorf("after %d attempts: %d %s, want %d (counted as failures: %v)",
					testMaxFailures+1, res.StatusCode, res.Reason, wantCode, tt.wantCounted)
			}
			if got := h.loc.Lookup(aliceAOR, h.clock.Now()); len(got) != 0 {
				t.Errorf("bad credentials bound %v", got)
			}
		})
	}
}

func TestRegisterThrottle(t *testing.T) {
	const attacker, neighbour = "198.51.100.66:5060", "198.51.100.67:5060"
	type auth int
	const (
		none auth = iota
		good
		wrong
		malformed
	)
	steps := []struct {
		name    string
		advance time.Duration
		via     string
		auth    auth
		want    int
	}{
		{"challenge is free", 0, attacker, none, 401},
		{"failure 1", 0, attacker, wrong, 401},
		{"failure 2", time.Second, attacker, malformed, 400},
		{"failure 3", time.Second, attacker, wrong, 401},
		{"failure 4 blocks", time.Second, attacker, wrong, 401},
		{"blocked: no challenge", 0, attacker, none, 403},
		{"blocked: even the password", time.Second, attacker, good, 403},
		{"another source", 0, neighbour, good, 200},
		{"still blocked", 55 * time.Second, attacker, good, 403},
		{"a minute after the block", 5 * time.Second, attacker, good, 200},
		{"counting afresh", 0, attacker, wrong, 401},
		{"success forgets failures 1", 0, attacker, wrong, 401},
		{"success forgets failures 2", 0, attacker, good, 200},
		{"after success 1", 0, attacker, wrong, 401},
		{"after success 2", 0, attacker, wrong, 401},
		{"after success 3", 0, attacker, wrong, 401},
		{"after success 4", 0, attacker, wrong, 401},
		{"blocked again", 0, attacker, good, 403},
	}
	h := newRegHarness(t, nil)
	for i, s := range steps {
		h.clock.Advance(s.advance)
		// The nonce comes from a challenge to the neighbour: nonces are not
		// tied to a source, and the attacker may be blocked.
		nonce := h.nonce(t, regMsg{via: neighbour})
		m := regMsg{via: s.via, cseq: uint32(i + 1), contacts: []string{aliceContact}}
		switch s.auth {
		case good:
			m.auth = aliceMD5.authorization(nonce, "00000001")
		case wrong:
			m.auth = login{aliceUser, fmt.Sprint("guess-", i), account.DigestMD5}.authorization(nonce, "00000001")
		case malformed:
			m.auth = `Digest username="alice", realm="acme.example"`
		}
		res := h.send(t, m)
		if res.StatusCode != s.want {
			t.Errorf("step %d %s: %d %s, want %d", i, s.name, res.StatusCode, res.Reason, s.want)
		}
		if s.want == 403 {
			checkResponse(t, res, wantRes{code: 403, reason: reasonThrottled, contacts: []string{}})
			if got := res.GetHeaders("WWW-Authenticate"); len(got) != 0 {
				t.Errorf("step %d %s: a blocked source got a challenge %v", i, s.name, got)
			}
		}
	}
}

func TestRegisterReplayedNonceCount(t *testing.T) {
	h := newRegHarness(t, nil)
	m := regMsg{contacts: []string{aliceContact}}
	nonce := h.nonce(t, m)
	steps := []struct {
		nc        string
		want      int
		wantStale bool
	}{
		{"00000001", 200, false},
		{"00000001", 401, true}, // replayed
		{"00000002", 200, false},
		{"00000002", 401, true},
		{"00000001", 401, true},
		{"00000002", 401, true},
		{"00000002", 401, true}, // more replays than the throttle's limit: not counted
		{"00000003", 200, false},
	}
	for i, s := range steps {
		m := m
		m.cseq = uint32(i + 1)
		m.auth = aliceMD5.authorization(nonce, s.nc)
		res := h.send(t, m)
		if res.StatusCode != s.want {
			t.Fatalf("step %d nc=%s: %d %s, want %d", i, s.nc, res.StatusCode, res.Reason, s.want)
		}
		if s.wantStale {
			www := headerValues(res, "WWW-Authenticate")
			for _, v := range www {
				if !strings.HasSuffix(v, ", stale=true") {
					t.Errorf("step %d: WWW-Authenticate %q, want stale=true", i, v)
				}
			}
			if n := nonceOf(t, res); n == nonce {
				t.Errorf("step %d: the stale challenge repeats the used nonce", i)
			}
		}
	}
}

func TestRegisterStaleNonce(t *testing.T) {
	h := newRegHarness(t, nil)
	m := regMsg{contacts: []string{aliceContact}}
	nonce := h.nonce(t, m)
	h.clock.Advance(digestTTL + time.Second)
	for i := 0; i <= testMaxFailures+1; i++ {
		m.cseq = uint32(i + 1)
		m.auth = aliceSHA256.authorization(nonce, fmt.Sprintf("%08x", i+1))
		res := h.send(t, m)
		checkResponse(t, res, wantRes{code: 401, reason: reasonUnauthorized, contacts: []string{}})
		want := []string{
			`Digest realm="acme.example", nonce="NONCE", algorithm=MD5, qop="auth", stale=true`,
			`Digest realm="acme.example", nonce="NONCE", algorithm=SHA-256, qop="auth", stale=true`,
		}
		if got := withoutNonces(headerValues(res, "WWW-Authenticate")); !slices.Equal(got, want) {
			t.Errorf("WWW-Authenticate = %q, want %q", got, want)
		}
		if fresh := nonceOf(t, res); fresh == nonce {
			t.Errorf("stale challenge repeats the stale nonce")
		}
	}
	// The retry with the fresh nonce succeeds: the stale answers were not
	// counted against the source.
	m.cseq++
	if res := h.exchange(t, m, aliceSHA256); res.StatusCode != 200 {
		t.Errorf("with a fresh nonce: %d %s, want 200", res.StatusCode, res.Reason)
	}
}

func TestRegisterToHost(t *testing.T) {
	tests := []struct {
		name  string
		to    string
		local []string // hosts LocalHost accepts
		want  wantRes
	}{
		{"realm", "sip:alice@acme.example", nil, wantRes{code: 200, reason: reasonOK}},
		{"realm in capitals", "sip:alice@ACME.Example", nil, wantRes{code: 200, reason: reasonOK}},
		{"other domain", "sip:alice@other.example", nil, wantRes{code: 404, reason: reasonNotServed}},
		{"realm suffix", "sip:alice@evil-acme.example", nil, wantRes{code: 404, reason: reasonNotServed}},
		{"node address not local", "sip:alice@192.0.2.1", nil, wantRes{code: 404, reason: reasonNotServed}},
		{"node address", "sip:alice@192.0.2.1", []string{"192.0.2.1"}, wantRes{code: 200, reason: reasonOK}},
		{"member name", "sip:alice@pbx-2.acme.internal", []string{"192.0.2.1", "pbx-2.acme.internal"}, wantRes{code: 200, reason: reasonOK}},
		{"member name in capitals", "sip:alice@PBX-2.acme.internal", []string{"pbx-2.acme.internal"}, wantRes{code: 200, reason: reasonOK}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newRegHarness(t, func(o *Options) {
				o.LocalHost = func(host string) bool { return slices.Contains(tt.local, host) }
			})
			m := regMsg{to: tt.to, contacts: []string{aliceContact}}
			if tt.want.code != 200 {
				// Refused before any challenge.
				checkResponse(t, h.send(t, m), tt.want)
				return
			}
			checkResponse(t, h.exchange(t, m, aliceMD5), tt.want)
			if got := h.contactsOf(aliceAOR); len(got) != 1 {
				t.Errorf("bindings of %s: %q, want 1", aliceAOR, got)
			}
		})
	}
}

func TestRegisterAOROwnership(t *testing.T) {
	tests := []struct {
		to   string
		who  login
		want wantRes
	}{
		{"sip:alice@acme.example", aliceMD5, wantRes{code: 200, reason: reasonOK}},
		{"sip:1001@acme.example", aliceMD5, wantRes{code: 200, reason: reasonOK}},
		{"sip:+16505550101@acme.example", aliceSHA256, wantRes{code: 200, reason: reasonOK}},
		{"sip:bob@acme.example", aliceMD5, wantRes{code: 403, reason: reasonNotOwner}},
		{"sip:1002@acme.example", aliceMD5, wantRes{code: 403, reason: reasonNotOwner}},
		{"sip:+16505550102@acme.example", aliceMD5, wantRes{code: 403, reason: reasonNotOwner}},
		{"sip:16505550101@acme.example", aliceMD5, wantRes{code: 403, reason: reasonNotOwner}},
		{"sip:Alice@acme.example", aliceMD5, wantRes{code: 403, reason: reasonNotOwner}},
		{"sip:acme.example", aliceMD5, wantRes{code: 403, reason: reasonNotOwner}},
		{"sip:alice@acme.example", bobMD5, wantRes{code: 403, reason: reasonNotOwner}},
		{"sip:1002@acme.example", bobMD5, wantRes{code: 200, reason: reasonOK}},
	}
	for _, tt := range tests {
		t.Run(tt.who.user+" as "+tt.to, func(t *testing.T) {
			h := newRegHarness(t, nil)
			res := h.exchange(t, regMsg{to: tt.to, contacts: []string{aliceContact}}, tt.who)
			checkResponse(t, res, tt.want)
			// The binding is always under the user's own AOR.
			aor := tt.who.user + "@" + aliceRealm
			wantN := 0
			if tt.want.code == 200 {
				wantN = 1
			}
			if got := h.loc.Lookup(aor, h.clock.Now()); len(got) != wantN {
				t.Errorf("bindings of %s: %d, want %d", aor, len(got), wantN)
			}
			if total, _ := h.loc.Count(); total != wantN {
				t.Errorf("Count = %d, want %d", total, wantN)
			}
		})
	}
}

func TestRegisterExpires(t *testing.T) {
	const c = aliceContact
	tooBrief := wantRes{code: 423, reason: "Interval Too Brief", contacts: []string{}, hdrs: map[string]string{"Min-Expires": "60"}}
	tests := []struct {
		name     string
		mode     string
		opt      func(*Options)
		contacts []string
		expires  string
		want     wantRes
	}{
		{name: "default", contacts: []string{c}, want: wantRes{code: 200, reason: reasonOK, contacts: []string{c + ";expires=3600"}}},
		{name: "header", contacts: []string{c}, expires: "600",
			want: wantRes{code: 200, reason: reasonOK, contacts: []string{c + ";expires=600"}}},
		{name: "contact param wins over header", contacts: []string{c + ";expires=300"}, expires: "600",
			want: wantRes{code: 200, reason: reasonOK, contacts: []string{c + ";expires=300"}}},
		{name: "contact param wins over header 0", contacts: []string{c + ";expires=300"}, expires: "0",
			want: wantRes{code: 200, reason: reasonOK, contacts: []string{c + ";expires=300"}}},
		{name: "contact param 0 wins over header", contacts: []string{c + ";expires=0"}, expires: "600",
			want: wantRes{code: 200, reason: reasonOK, contacts: []string{}}},
		{name: "exactly MinExpires", contacts: []string{c}, expires: "60",
			want: wantRes{code: 200, reason: reasonOK, contacts: []string{c + ";expires=60"}}},
		{name: "header below MinExpires", contacts: []string{c}, expires: "59", want: tooBrief},
		{name: "contact param below MinExpires", contacts: []string{c + ";expires=1"}, expires: "600", want: tooBrief},
		{name: "one of two below MinExpires", contacts: []string{c, "<sip:alice@192.0.2.11:5060>;expires=30"}, want: tooBrief},
		{name: "custom MinExpires", opt: func(o *Options) { o.MinExpires = 5 * time.Minute }, contacts: []string{c}, expires: "299",
			want: wantRes{code: 423, reason: "Interval Too Brief", contacts: []string{}, hdrs: map[string]string{"Min-Expires": "300"}}},
		{name: "above MaxExpires", contacts: []string{c}, expires: "7200",
			want: wantRes{code: 200, reason: reasonOK, contacts: []string{c + ";expires=3600"}}},
		{name: "largest", contacts: []string{c}, expires: "4294967295",
			want: wantRes{code: 200, reason: reasonOK, contacts: []string{c + ";expires=3600"}}},
		{name: "custom MaxExpires", opt: func(o *Options) { o.MaxExpires = 900 * time.Second }, contacts: []string{c}, expires: "1800",
			want: wantRes{code: 200, reason: reasonOK, contacts: []string{c + ";expires=900"}}},
		{name: "custom DefaultExpires", opt: func(o *Options) { o.DefaultExpires = 1800 * time.Second }, contacts: []string{c},
			want: wantRes{code: 200, reason: reasonOK, contacts: []string{c + ";expires=1800"}}},
		{name: "survivability caps", mode: store.ModeSurvivability, contacts: []string{c}, expires: "600",
			want: wantRes{code: 200, reason: reasonOK, contacts: []string{c + ";expires=120"}}},
		{name: "survivability caps the default", mode: store.ModeSurvivability, contacts: []string{c},
			want: wantRes{code: 200, reason: reasonOK, contacts: []string{c + ";expires=120"}}},
		{name: "survivability keeps shorter", mode: store.ModeSurvivability, contacts: []string{c}, expires: "90",
			want: wantRes{code: 200, reason: reasonOK, contacts: []string{c + ";expires=90"}}},
		{name: "survivability custom cap", mode: store.ModeSurvivability, opt: func(o *Options) { o.SurvivabilityExpires = 300 * time.Second },
			contacts: []string{c}, expires: "3600", want: wantRes{code: 200, reason: reasonOK, contacts: []string{c + ";expires=300"}}},
		{name: "normal mode does not cap", mode: store.ModeNormal, contacts: []string{c}, expires: "600",
			want: wantRes{code: 200, reason: reasonOK, contacts: []string{c + ";expires=600"}}},
		{name: "zero removes nothing bound", contacts: []string{c}, expires: "0",
			want: wantRes{code: 200, reason: reasonOK, contacts: []string{}}},
		{name: "not a number", contacts: []string{c}, expires: "soon", want: wantRes{code: 400, reason: reasonBadExpires, contacts: []string{}}},
		{name: "negative", contacts: []string{c}, expires: "-1", want: wantRes{code: 400, reason: reasonBadExpires, contacts: []string{}}},
		{name: "fraction", contacts: []string{c}, expires: "60.5", want: wantRes{code: 400, reason: reasonBadExpires, contacts: []string{}}},
		{name: "beyond 32 bits", contacts: []string{c}, expires: "4294967296", want: wantRes{code: 400, reason: reasonBadExpires, contacts: []string{}}},
		{name: "contact param not a number", contacts: []string{c + ";expires=soon"},
			want: wantRes{code: 400, reason: `Bad Request: contact "<sip:alice@192.0.2.10:5060>;expires=soon": expires "soon" is not a number of seconds`, contacts: []string{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newRegHarness(t, tt.opt)
			if tt.mode != "" {
				h.dir.setMode(tt.mode)
			}
			res := h.exchange(t, regMsg{contacts: tt.contacts, expires: tt.expires}, aliceMD5)
			checkResponse(t, res, tt.want)
			// What the 200 lists is what is bound, with the same expiry.
			if got := h.contactsOf(aliceAOR); !slices.Equal(got, tt.want.contacts) {
				t.Errorf("bound %q, want %q", got, tt.want.contacts)
			}
		})
	}
}

// The Mode the directory cannot tell is taken as normal.
func TestRegisterModeError(t *testing.T) {
	h := newRegHarness(t, nil)
	h.dir.mode, h.dir.modeErr = store.ModeSurvivability, errors.New("database is locked")
	res := h.exchange(t, regMsg{contacts: []string{aliceContact}, expires: "600"}, aliceMD5)
	checkResponse(t, res, wantRes{code: 200, reason: reasonOK, contacts: []string{aliceContact + ";expires=600"}})
}

// The mode is read at every REGISTER: a phone refreshing after the node went
// into survivability gets the shorter interval.
func TestRegisterEntersSurvivability(t *testing.T) {
	h := newRegHarness(t, nil)
	m := regMsg{contacts: []string{aliceContact}, expires: "600"}
	h.mustRegister(t, m, aliceMD5)
	h.dir.setMode(store.ModeSurvivability)
	m.cseq = 2
	res := h.mustRegister(t, m, aliceMD5)
	checkResponse(t, res, wantRes{code: 200, reason: reasonOK, contacts: []string{aliceContact + ";expires=120"}})
}

func TestRegisterRemove(t *testing.T) {
	const (
		a = "<sip:alice@192.0.2.10:5060>"
		b = "<sip:alice@192.0.2.10:5062>"
	)
	tests := []struct {
		name        string
		advance     time.Duration
		m           regMsg
		want        wantRes
		wantBound   []string
		wantRemoved []string // tombstones persisted
	}{
		{name: "Expires 0 removes one", m: regMsg{contacts: []string{a}, expires: "0"},
			want:      wantRes{code: 200, reason: reasonOK, contacts: []string{b + ";expires=3600"}},
			wantBound: []string{b + ";expires=3600"}, wantRemoved: []string{a}},
		{name: "expires=0 removes one", m: regMsg{contacts: []string{b + ";expires=0"}, expires: "600"},
			want:      wantRes{code: 200, reason: reasonOK, contacts: []string{a + ";expires=600"}},
			wantBound: []string{a + ";expires=600"}, wantRemoved: []string{b}},
		{name: "Expires 0 removes both", m: regMsg{contacts: []string{a, b}, expires: "0"},
			want:      wantRes{code: 200, reason: reasonOK, contacts: []string{}},
			wantBound: []string{}, wantRemoved: []string{a, b}},
		{name: "Expires 0 for an unknown contact", m: regMsg{contacts: []string{"<sip:alice@192.0.2.99>"}, expires: "0"},
			want:      wantRes{code: 200, reason: reasonOK, contacts: []string{a + ";expires=600", b + ";expires=3600"}},
			wantBound: []string{a + ";expires=600", b + ";expires=3600"}},
		{name: "wildcard removes all", m: regMsg{contacts: []string{"*"}, expires: "0"},
			want:      wantRes{code: 200, reason: reasonOK, contacts: []string{}},
			wantBound: []string{}, wantRemoved: []string{a, b}},
		{name: "wildcard in a new Call-ID", m: regMsg{callID: "other@192.0.2.10", contacts: []string{"*"}, expires: "0"},
			want:      wantRes{code: 200, reason: reasonOK, contacts: []string{}},
			wantBound: []string{}, wantRemoved: []string{a, b}},
		{name: "wildcard without Expires", m: regMsg{contacts: []string{"*"}},
			want:      wantRes{code: 400, reason: reasonWildcardExp, contacts: []string{}},
			wantBound: []string{a + ";expires=600", b + ";expires=3600"}},
		{name: "wildcard with Expires 60", m: regMsg{contacts: []string{"*"}, expires: "60"},
			want:      wantRes{code: 400, reason: reasonWildcardExp, contacts: []string{}},
			wantBound: []string{a + ";expires=600", b + ";expires=3600"}},
		{name: "wildcard and another contact", m: regMsg{contacts: []string{"*", a}, expires: "0"},
			want:      wantRes{code: 400, reason: "Bad Request: contact * must be the only contact", contacts: []string{}},
			wantBound: []string{a + ";expires=600", b + ";expires=3600"}},
		{name: "another contact and wildcard", m: regMsg{contacts: []string{b, "*"}, expires: "0"},
			want:      wantRes{code: 400, reason: "Bad Request: contact * must be the only contact", contacts: []string{}},
			wantBound: []string{a + ";expires=600", b + ";expires=3600"}},
		{name: "query", advance: 100 * time.Second, m: regMsg{},
			want:      wantRes{code: 200, reason: reasonOK, contacts: []string{a + ";expires=500", b + ";expires=3500"}},
			wantBound: []string{a + ";expires=500", b + ";expires=3500"}},
		{name: "query with Expires 0", m: regMsg{expires: "0"},
			want:      wantRes{code: 200, reason: reasonOK, contacts: []string{a + ";expires=600", b + ";expires=3600"}},
			wantBound: []string{a + ";expires=600", b + ";expires=3600"}},
		{name: "query after one expired", advance: 600 * time.Second, m: regMsg{},
			want:      wantRes{code: 200, reason: reasonOK, contacts: []string{b + ";expires=3000"}},
			wantBound: []string{b + ";expires=3000"}}, // an expired binding leaves no tombstone
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newRegHarness(t, nil)
			h.mustRegister(t, regMsg{contacts: []string{a}, expires: "600"}, aliceMD5)
			h.mustRegister(t, regMsg{cseq: 2, contacts: []string{b}}, aliceMD5)
			flushLocation(t, h.loc)
			before := len(h.persist.all())
			version := map[string]time.Time{} // binding id: UpdatedAt last persisted
			for _, p := range h.persist.all() {
				version[p.ID] = p.UpdatedAt
			}

			h.clock.Advance(tt.advance)
			m := tt.m
			m.cseq = 3
			res := h.exchange(t, m, aliceMD5)
			checkResponse(t, res, tt.want)
			if got := h.contactsOf(aliceAOR); !slices.Equal(got, tt.wantBound) {
				t.Errorf("bound %q, want %q", got, tt.wantBound)
			}
			flushLocation(t, h.loc)
			var removed []string
			for _, p := range h.persist.all()[before:] {
				if p.Deleted {
					removed = append(removed, "<"+p.Contact+">")
					// The tombstone must win over the binding it removes
					// in the store, which keeps the newest UpdatedAt.
					if !p.UpdatedAt.After(version[p.ID]) || p.UpdatedAt.Before(h.clock.Now()) {
						t.Errorf("tombstone of %s updated at %v, want after %v and not before now %v",
							p.Contact, p.UpdatedAt, version[p.ID], h.clock.Now())
					}
				}
			}
			if !slices.Equal(removed, tt.wantRemoved) {
				t.Errorf("tombstones %q, want %q", removed, tt.wantRemoved)
			}
		})
	}
}

func TestRegisterSeveralContacts(t *testing.T) {
	tests := []struct {
		name     string
		contacts []string
		extra    []string
		want     []string
	}{
		{"one header", []string{"<sip:alice@192.0.2.10:5060>, <sip:alice@192.0.2.10:5062>;expires=600"}, nil,
			[]string{"<sip:alice@192.0.2.10:5060>;expires=3600", "<sip:alice@192.0.2.10:5062>;expires=600"}},
		{"several headers", []string{"<sip:alice@192.0.2.10:5060>", "<sip:alice@192.0.2.10:5062>;expires=600"}, nil,
			[]string{"<sip:alice@192.0.2.10:5060>;expires=3600", "<sip:alice@192.0.2.10:5062>;expires=600"}},
		{"compact form", []string{"<sip:alice@192.0.2.10:5060>"}, []string{"m: <sip:alice@192.0.2.10:5062>;expires=600"},
			[]string{"<sip:alice@192.0.2.10:5060>;expires=3600", "<sip:alice@192.0.2.10:5062>;expires=600"}},
		{"display names with commas", []string{`"Alice, desk" <sip:alice@192.0.2.10:5060>, "Alice, <mobile>" <sip:alice@198.51.100.4:5060>`}, nil,
			[]string{"<sip:alice@192.0.2.10:5060>;expires=3600", "<sip:alice@198.51.100.4:5060>;expires=3600"}},
		{"URI parameters", []string{"<sip:alice@192.0.2.10:5060;transport=tcp>;expires=600", "sip:alice@192.0.2.10:5062;expires=900"}, nil,
			[]string{"<sip:alice@192.0.2.10:5060;transport=tcp>;expires=600", "<sip:alice@192.0.2.10:5062>;expires=900"}},
		{"three", []string{"<sip:alice@192.0.2.10:5060>, <sip:alice@192.0.2.10:5062>", "<sips:alice@192.0.2.10:5061>"}, nil,
			[]string{"<sip:alice@192.0.2.10:5060>;expires=3600", "<sip:alice@192.0.2.10:5062>;expires=3600", "<sips:alice@192.0.2.10:5061>;expires=3600"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newRegHarness(t, nil)
			res := h.exchange(t, regMsg{contacts: tt.contacts, extra: tt.extra}, aliceMD5)
			checkResponse(t, res, wantRes{code: 200, reason: reasonOK, contacts: tt.want})
			if got := h.contactsOf(aliceAOR); !slices.Equal(got, tt.want) {
				t.Errorf("bound %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRegisterInstanceID(t *testing.T) {
	const inst = `;+sip.instance="<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"`
	steps := []struct {
		name    string
		callID  string
		contact string
		want    []string // bound contacts; the device with the instance-id first
	}{
		{"first", "c1", "<sip:alice@192.0.2.10:5060>" + inst + ";reg-id=1",
			[]string{"sip:alice@192.0.2.10:5060"}},
		{"new port, new Call-ID", "c2", "<sip:alice@192.0.2.10:41234>" + inst + ";reg-id=1",
			[]string{"sip:alice@192.0.2.10:41234"}},
		{"new address, same Call-ID", "c2", "<sip:alice@198.51.100.4:5060;transport=tcp>" + inst + ";reg-id=1",
			[]string{"sip:alice@198.51.100.4:5060;transport=tcp"}},
		{"second flow", "c3", "<sip:alice@192.0.2.10:5062>" + inst + ";reg-id=2",
			[]string{"sip:alice@198.51.100.4:5060;transport=tcp", "sip:alice@192.0.2.10:5062"}},
		{"no instance: by URI", "c4", "<sip:alice@192.0.2.10:5064>",
			[]string{"sip:alice@198.51.100.4:5060;transport=tcp", "sip:alice@192.0.2.10:5062", "sip:alice@192.0.2.10:5064"}},
		{"no instance: a new URI is a new binding", "c4", "<sip:alice@192.0.2.10:5066>",
			[]string{"sip:alice@198.51.100.4:5060;transport=tcp", "sip:alice@192.0.2.10:5062", "sip:alice@192.0.2.10:5064", "sip:alice@192.0.2.10:5066"}},
	}
	h := newRegHarness(t, nil)
	var firstID string
	for i, s := range steps {
		h.mustRegister(t, regMsg{callID: s.callID, cseq: uint32(i + 1), contacts: []string{s.contact}}, aliceMD5)
		got := h.loc.Lookup(aliceAOR, h.clock.Now())
		var uris []string
		for _, b := range got {
			uris = append(uris, b.Contact)
		}
		if !slices.Equal(uris, s.want) {
			t.Fatalf("step %d %s: bound %q, want %q", i, s.name, uris, s.want)
		}
		if i == 0 {
			firstID = got[0].ID
			if got[0].InstanceID != "urn:uuid:00000000-0000-1000-8000-000A95A0E128" || got[0].RegID != 1 {
				t.Errorf("instance %q reg-id %d", got[0].InstanceID, got[0].RegID)
			}
		}
		if got[0].ID != firstID {
			t.Errorf("step %d %s: the device's binding id changed from %s to %s", i, s.name, firstID, got[0].ID)
		}
		ids := map[string]bool{}
		for _, b := range got {
			ids[b.ID] = true
		}
		if len(ids) != len(got) {
			t.Errorf("step %d %s: binding ids repeat: %+v", i, s.name, got)
		}
	}
	flushLocation(t, h.loc)
	for _, p := range h.persist.all() {
		if p.Deleted {
			t.Errorf("a changed contact left a tombstone: %+v", p)
		}
	}
}

func TestRegisterCSeqOrder(t *testing.T) {
	const (
		call  = "reg-1@192.0.2.10"
		other = "reg-2@192.0.2.10"
		c2    = "<sip:alice@192.0.2.10:5062>"
		bound = "sip:alice@192.0.2.10:5060 reg-1@192.0.2.10 5 3600"
	)
	tests := []struct {
		name      string
		m         regMsg
		want      wantRes
		wantBound []string // "uri call-id cseq expires"
	}{
		{"same Call-ID lower CSeq", regMsg{callID: call, cseq: 4, contacts: []string{aliceContact}, expires: "600"},
			wantRes{code: 500, reason: reasonOutOfOrder, contacts: []string{}}, []string{bound}},
		{"same Call-ID much lower CSeq", regMsg{callID: call, cseq: 1, contacts: []string{aliceContact}},
			wantRes{code: 500, reason: reasonOutOfOrder, contacts: []string{}}, []string{bound}},
		{"retransmission", regMsg{callID: call, cseq: 5, contacts: []string{aliceContact}},
			wantRes{code: 200, reason: reasonOK, contacts: []string{aliceContact + ";expires=3600"}}, []string{bound}},
		{"same Call-ID higher CSeq", regMsg{callID: call, cseq: 6, contacts: []string{aliceContact}, expires: "600"},
			wantRes{code: 200, reason: reasonOK, contacts: []string{aliceContact + ";expires=600"}},
			[]string{"sip:alice@192.0.2.10:5060 reg-1@192.0.2.10 6 600"}},
		{"other Call-ID lower CSeq replaces", regMsg{callID: other, cseq: 1, contacts: []string{aliceContact}, expires: "600"},
			wantRes{code: 200, reason: reasonOK, contacts: []string{aliceContact + ";expires=600"}},
			[]string{"sip:alice@192.0.2.10:5060 reg-2@192.0.2.10 1 600"}},
		{"remove with lower CSeq", regMsg{callID: call, cseq: 4, contacts: []string{aliceContact}, expires: "0"},
			wantRes{code: 500, reason: reasonOutOfOrder, contacts: []string{}}, []string{bound}},
		{"remove with higher CSeq", regMsg{callID: call, cseq: 6, contacts: []string{aliceContact}, expires: "0"},
			wantRes{code: 200, reason: reasonOK, contacts: []string{}}, nil},
		{"remove with other Call-ID", regMsg{callID: other, cseq: 1, contacts: []string{aliceContact}, expires: "0"},
			wantRes{code: 200, reason: reasonOK, contacts: []string{}}, nil},
		{"wildcard with lower CSeq", regMsg{callID: call, cseq: 4, contacts: []string{"*"}, expires: "0"},
			wantRes{code: 500, reason: reasonOutOfOrder, contacts: []string{}}, []string{bound}},
		{"wildcard with higher CSeq", regMsg{callID: call, cseq: 6, contacts: []string{"*"}, expires: "0"},
			wantRes{code: 200, reason: reasonOK, contacts: []string{}}, nil},
		{"wildcard with other Call-ID", regMsg{callID: other, cseq: 1, contacts: []string{"*"}, expires: "0"},
			wantRes{code: 200, reason: reasonOK, contacts: []string{}}, nil},
		{"new contact with lower CSeq", regMsg{callID: call, cseq: 4, contacts: []string{c2}},
			wantRes{code: 200, reason: reasonOK, contacts: []string{aliceContact + ";expires=3600", c2 + ";expires=3600"}},
			[]string{bound, "sip:alice@192.0.2.10:5062 reg-1@192.0.2.10 4 3600"}},
		{"new and out-of-order contact together", regMsg{callID: call, cseq: 4, contacts: []string{c2, aliceContact}},
			wantRes{code: 500, reason: reasonOutOfOrder, contacts: []string{}}, []string{bound}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newRegHarness(t, nil)
			h.mustRegister(t, regMsg{callID: call, cseq: 5, contacts: []string{aliceContact}}, aliceMD5)
			checkResponse(t, h.exchange(t, tt.m, aliceMD5), tt.want)
			var got []string
			for _, b := range h.loc.Lookup(aliceAOR, h.clock.Now()) {
				got = append(got, fmt.Sprintf("%s %s %d %d", b.Contact, b.CallID, b.CSeq, b.Expires.Sub(h.clock.Now())/time.Second))
			}
			if !slices.Equal(got, tt.wantBound) {
				t.Errorf("bound %q, want %q", got, tt.wantBound)
			}
		})
	}
}

func TestRegisterSiteCapacity(t *testing.T) {
	full := wantRes{code: 503, reason: reasonAtCapacity, contacts: []string{}, hdrs: map[string]string{"Retry-After": "60"}}
	ok := wantRes{code: 200, reason: reasonOK}
	steps := []struct {
		name string
		who  login
		m    regMsg
		want wantRes
	}{
		{"alice first", aliceMD5, regMsg{to: "sip:alice@acme.example", contacts: []string{"<sip:alice@192.0.2.10:5060>"}}, ok},
		{"alice second", aliceMD5, regMsg{to: "sip:alice@acme.example", contacts: []string{"<sip:alice@192.0.2.10:5062>"}}, ok},
		{"alice third", aliceMD5, regMsg{to: "sip:alice@acme.example", contacts: []string{"<sip:alice@192.0.2.10:5064>"}}, full},
		{"bob at the same site", bobMD5, regMsg{to: "sip:bob@acme.example", contacts: []string{"<sip:bob@192.0.2.20:5060>"}}, full},
		{"carol at another site", carolMD5, regMsg{to: "sip:carol@acme.example", contacts: []string{"<sip:carol@192.0.2.30:5060>"}}, ok},
		{"alice refreshes", aliceMD5, regMsg{to: "sip:alice@acme.example", contacts: []string{"<sip:alice@192.0.2.10:5060>"}}, ok},
		{"alice queries", aliceMD5, regMsg{to: "sip:alice@acme.example"}, ok},
		{"alice removes one", aliceMD5, regMsg{to: "sip:alice@acme.example", contacts: []string{"<sip:alice@192.0.2.10:5060>"}, expires: "0"}, ok},
		{"bob now fits", bobMD5, regMsg{to: "sip:bob@acme.example", contacts: []string{"<sip:bob@192.0.2.20:5060>"}}, ok},
		{"alice cannot come back", aliceMD5, regMsg{to: "sip:alice@acme.example", contacts: []string{"<sip:alice@192.0.2.10:5060>"}}, full},
	}
	// Capacity 3 keeps 1 place for prioritized users: alice, bob and
	// carol (normal users) may hold 2 bindings per site.
	h := newRegHarness(t, func(o *Options) { o.SiteCapacity = 3 })
	for i, s := range steps {
		s.m.cseq = uint32(i + 1)
		res := h.exchange(t, s.m, s.who)
		if res.StatusCode != s.want.code {
			t.Fatalf("step %d %s: %d %s, want %d", i, s.name, res.StatusCode, res.Reason, s.want.code)
		}
		checkResponse(t, res, s.want)
	}
	total, perSite := h.loc.Count()
	if total != 3 || perSite[siteHQ] != 2 || perSite[siteBranch] != 1 {
		t.Errorf("Count = %d, %v; want 3: 2 at %s, 1 at %s", total, perSite, siteHQ, siteBranch)
	}
}

// TestRegisterSiteCapacityNetChange: SiteCapacity bounds the live bindings
// of a site, so a REGISTER that leaves the site at or under capacity passes
// even when it adds a binding.
func TestRegisterSiteCapacityNetChange(t *testing.T) {
	const (
		a = "<sip:alice@192.0.2.10:5060>"
		b = "<sip:alice@192.0.2.10:5062>"
		c = "<sip:alice@192.0.2.10:5064>"
	)
	tests := []struct {
		name     string
		capacity int
		setup    []regMsg
		advance  time.Duration
		m        regMsg
		want     []string
	}{
		// Capacities 3 and 2 keep 1 place for prioritized users: alice
		// (normal) may hold 2 and 1.
		{"swap one contact for another", 3,
			[]regMsg{{contacts: []string{a, b}}}, 0,
			regMsg{contacts: []string{a + ";expires=0", c}},
			[]string{b + ";expires=3600", c + ";expires=3600"}},
		{"come back after expiry", 2,
			[]regMsg{{contacts: []string{a}, expires: "60"}}, 61 * time.Second,
			regMsg{contacts: []string{a}, expires: "60"},
			[]string{a + ";expires=60"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newRegHarness(t, func(o *Options) { o.SiteCapacity = tt.capacity })
			for i, m := range tt.setup {
				m.cseq = uint32(i + 1)
				h.mustRegister(t, m, aliceMD5)
			}
			h.clock.Advance(tt.advance)
			m := tt.m
			m.cseq = 100
			res := h.exchange(t, m, aliceMD5)
			checkResponse(t, res, wantRes{code: 200, reason: reasonOK, contacts: tt.want})
			if total, _ := h.loc.Count(); total > tt.capacity-PriorityReserve(tt.capacity) {
				t.Errorf("Count = %d, above capacity %d less the reserve", total, tt.capacity)
			}
		})
	}
}

func TestRegisterContactErrors(t *testing.T) {
	tests := []struct {
		name     string
		contacts []string
		reason   string
	}{
		{"tel URI", []string{"<tel:+16505550101>"},
			`Bad Request: contact "<tel:+16505550101>": only sip and sips URIs can be registered`},
		{"http URI", []string{"<http://192.0.2.10/>"},
			`Bad Request: contact "<http://192.0.2.10/>": only sip and sips URIs can be registered`},
		{"tel among sip", []string{aliceContact, "<tel:+16505550101>"},
			`Bad Request: contact "<tel:+16505550101>": only sip and sips URIs can be registered`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newRegHarness(t, nil)
			res := h.exchange(t, regMsg{contacts: tt.contacts}, aliceMD5)
			checkResponse(t, res, wantRes{code: 400, reason: tt.reason, contacts: []string{}})
			if got := h.contactsOf(aliceAOR); len(got) != 0 {
				t.Errorf("bound %q", got)
			}
		})
	}
}

func TestRegisterDirectoryErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(*fakeDirectory)
		want  wantRes
	}{
		{"no account", func(d *fakeDirectory) { d.acctErr = fmt.Errorf("account: %w", store.ErrNotFound) },
			wantRes{code: 503, reason: "Service Unavailable: no account configuration yet", hdrs: map[string]string{"Retry-After": "30"}}},
		{"no realm", func(d *fakeDirectory) { d.acct.SIPRealm = "" },
			wantRes{code: 503, reason: "Service Unavailable: no account configuration yet", hdrs: map[string]string{"Retry-After": "30"}}},
		{"user lookup fails", func(d *fakeDirectory) { d.userErr = errors.New("database is locked") },
			wantRes{code: 503, reason: "Service Unavailable", hdrs: map[string]string{"Retry-After": "5"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newRegHarness(t, nil)
			tt.setup(h.dir)
			// Not the phone's fault: never counted against it.
			for i := 0; i <= testMaxFailures+1; i++ {
				res := h.exchange(t, regMsg{cseq: uint32(i + 1), contacts: []string{aliceContact}}, aliceMD5)
				checkResponse(t, res, tt.want)
			}
		})
	}
}

// respondRecorder is a ServerTransaction that only records responses, for
// requests the siptest recorder cannot key (no Via or CSeq).
type respondRecorder struct {
	sip.ServerTransaction
	mu  sync.Mutex
	res []*sip.Response
}

func (r *respondRecorder) Respond(res *sip.Response) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.res = append(r.res, res)
	return nil
}

func TestRegisterMissingHeaders(t *testing.T) {
	full := strings.Split(strings.TrimSuffix(regMsg{contacts: []string{aliceContact}}.String(), "\r\n\r\n"), "\r\n")
	for _, drop := range []string{"To", "Call-ID", "CSeq"} {
		t.Run(drop, func(t *testing.T) {
			var lines []string
			for _, l := range full {
				if !strings.HasPrefix(l, drop+":") {
					lines = append(lines, l)
				}
			}
			req := parseRequest(t, strings.Join(lines, "\r\n")+"\r\n\r\n")
			h := newRegHarness(t, nil)
			tx := &respondRecorder{}
			h.reg.OnRegister(req, tx)
			if len(tx.res) != 1 {
				t.Fatalf("%d responses, want 1", len(tx.res))
			}
			checkResponse(t, tx.res[0], wantRes{code: 400, reason: "Bad Request: To, Call-ID and CSeq are required"})
		})
	}
}

func TestOptions(t *testing.T) {
	tests := []struct {
		name string
		m    regMsg
	}{
		{"plain", regMsg{method: "OPTIONS"}},
		{"from a blocked source, with bad credentials", regMsg{method: "OPTIONS", via: "198.51.100.66:5060", auth: "Digest nonsense"}},
		{"to another domain", regMsg{method: "OPTIONS", to: "sip:bob@other.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newRegHarness(t, nil)
			for range testMaxFailures + 1 {
				h.send(t, regMsg{via: "198.51.100.66:5060", auth: "Digest nonsense"})
			}
			res := serve(t, h.reg.OnOptions, tt.m.request(t))
			checkResponse(t, res, wantRes{code: 200, reason: reasonOK, contacts: []string{}, hdrs: map[string]string{
				"Allow":     "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, REFER, UPDATE, INFO, SUBSCRIBE",
				"Accept":    "application/sdp",
				"Supported": "path, outbound, replaces, timer",
			}})
			if got := resHeader(res, "Call-ID"); got != "reg-1@192.0.2.10" {
				t.Errorf("Call-ID = %q", got)
			}
		})
	}
}

// TestRegisterConcurrent registers many phones at once (run it with -race).
func TestRegisterConcurrent(t *testing.T) {
	h := newRegHarness(t, func(o *Options) { o.SiteCapacity = 1000 })
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() {
		h.loc.Run(ctx)
		close(runDone)
	}()
	const n = 32
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			who, user := aliceMD5, aliceUser
			if i%2 == 1 {
				who, user = bobSHA256, bobUser
			}
			m := regMsg{to: "sip:" + user + "@acme.example", callID: fmt.Sprint("c-", i),
				contacts: []string{fmt.Sprintf("<sip:%s@192.0.2.10:%d>", user, 5000+i)}}
			if res := h.exchange(t, m, who); res.StatusCode != 200 {
				t.Errorf("phone %d: %d %s", i, res.StatusCode, res.Reason)
			}
		}()
	}
	wg.Wait()
	cancel()
	<-runDone
	if total, perSite := h.loc.Count(); total != n || perSite[siteHQ] != n {
		t.Errorf("Count = %d, %v; want %d at %s", total, perSite, n, siteHQ)
	}
	live := map[string]bool{}
	for _, b := range h.persist.all() {
		live[b.ID] = !b.Deleted
	}
	if len(live) != n || slices.Contains(slices.Collect(maps.Values(live)), false) {
		t.Errorf("persisted %v, want %d live bindings", live, n)
	}
}

// storeView applies persisted binding versions as the store does: a row is
// replaced only by a version with a newer UpdatedAt at millisecond precision.
func storeView(persisted []store.Binding) map[string]store.Binding {
	rows := map[string]store.Binding{}
	for _, b := range persisted {
		if old, ok := rows[b.ID]; ok && b.UpdatedAt.UnixMilli() <= old.UpdatedAt.UnixMilli() {
			continue
		}
		rows[b.ID] = b
	}
	return rows
}

// TestRegisterPersistedMatchesMemory replays what the Location persisted
// with the store's last-writer-wins rule after each REGISTER, and checks it
// gives the bindings the registrar holds in memory, even when REGISTERs
// follow each other within a millisecond.
func TestRegisterPersistedMatchesMemory(t *testing.T) {
	const (
		a = "<sip:alice@192.0.2.10:5060>"
		b = "<sip:alice@192.0.2.10:5062>"
	)
	steps := []struct {
		name    string
		advance time.Duration
		m       regMsg
	}{
		{"register a", 0, regMsg{contacts: []string{a}}},
		{"refresh a, same instant", 0, regMsg{contacts: []string{a}, expires: "600"}},
		{"refresh a, 1 s later", time.Second, regMsg{contacts: []string{a}, expires: "900"}},
		{"refresh a, 1 µs later", time.Microsecond, regMsg{contacts: []string{a}, expires: "1200"}},
		{"remove a, 1 µs later", time.Microsecond, regMsg{contacts: []string{a}, expires: "0"}},
		{"register a again, 1 µs later", time.Microsecond, regMsg{contacts: []string{a}}},
		{"add b, 2 s later", 2 * time.Second, regMsg{contacts: []string{b}}},
		{"remove all, same instant", 0, regMsg{contacts: []string{"*"}, expires: "0"}},
		{"register b again, same instant", 0, regMsg{contacts: []string{b}, expires: "300"}},
	}
	h := newRegHarness(t, nil)
	for i, s := range steps {
		h.clock.Advance(s.advance)
		m := s.m
		m.cseq = uint32(i + 1)
		h.mustRegister(t, m, aliceMD5)
		flushLocation(t, h.loc)
		now := h.clock.Now()
		var stored []string
		for _, row := range storeView(h.persist.all()) {
			if !row.Deleted && row.Expires.After(now) {
				stored = append(stored, fmt.Sprintf("%s cseq=%d expires=%v", row.Contact, row.CSeq, row.Expires.Sub(now)))
			}
		}
		var held []string
		for _, row := range h.loc.Lookup(aliceAOR, now) {
			held = append(held, fmt.Sprintf("%s cseq=%d expires=%v", row.Contact, row.CSeq, row.Expires.Sub(now)))
		}
		slices.Sort(stored)
		slices.Sort(held)
		if !slices.Equal(stored, held) {
			t.Errorf("step %d %s: the store would hold %q, the registrar %q", i, s.name, stored, held)
		}
	}
}

// A node with every REGISTER slot busy answers 503 with Retry-After at once
// rather than queueing; a slot freed serves again.
func TestRegisterShedsLoad(t *testing.T) {
	h := newRegHarness(t, func(o *Options) { o.MaxInFlight = 1 })
	h.reg.inFlight <- struct{}{} // the one slot is taken
	res := h.send(t, regMsg{})
	if res.StatusCode != 503 || res.GetHeader("Retry-After") == nil {
		t.Fatalf("with no slot: %d %s (Retry-After %v), want 503 with Retry-After", res.StatusCode, res.Reason, res.GetHeader("Retry-After"))
	}
	<-h.reg.inFlight
	if res := h.send(t, regMsg{}); res.StatusCode != 401 {
		t.Errorf("with the slot free: %d, want the 401 challenge", res.StatusCode)
	}
}
