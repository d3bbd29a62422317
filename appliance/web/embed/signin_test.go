package embed

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestSignInWithThePassword(t *testing.T) {
	f := newFixture(t, nil)
	rec := f.do("POST", "/embed/api/session", `{"username":"alice","password":"pw-alice"}`, "192.0.2.1")
	if rec.Code != http.StatusOK {
		t.Fatalf("right password: %d %s", rec.Code, rec.Body)
	}
	var s Session
	if err := json.Unmarshal(rec.Body.Bytes(), &s); err != nil {
		t.Fatal(err)
	}
	if s.User != (UserInfo{Username: "alice", Name: "Alice Adams", Extension: "1001"}) || !s.ExpiresAt.Equal(f.clock.Now().Add(SessionTTL)) {
		t.Errorf("session %+v", s)
	}
	if len(rec.Result().Cookies()) != 0 || rec.Header().Get("Set-Cookie") != "" {
		t.Error("the sign-in set a cookie")
	}
	if rec.Header().Get("Cache-Control") != "no-store" {
		t.Error("the token may be cached")
	}
	for _, body := range []string{
		`{"username":"alice","password":"pw-bob"}`,
		`{"username":"nobody","password":"pw-nobody"}`,
		`{"username":"alice","password":"` + strings.Repeat("x", 200) + `"}`,
	} {
		rec := f.do("POST", "/embed/api/session", body, "192.0.2.2")
		if rec.Code != http.StatusUnauthorized || decode(t, rec.Body.Bytes())["error"] != msgWrong {
			t.Errorf("%s: %d %s; want 401 %q (an unknown user told like a wrong password)", body, rec.Code, rec.Body, msgWrong)
		}
	}
	for body, want := range map[string]int{
		`{"username":"alice"}`:                            http.StatusBadRequest,
		`{"username":"alice","password":"x","token":"y"}`: http.StatusBadRequest,
		`{"user":"alice","password":"pw-alice"}`:          http.StatusBadRequest,
		`{"username":"alice","password":"pw-alice"} {}`:   http.StatusBadRequest,
		`[]`: http.StatusBadRequest,
	} {
		if rec := f.do("POST", "/embed/api/session", body, "192.0.2.3"); rec.Code != want {
			t.Errorf("%s: %d, want %d", body, rec.Code, want)
		}
	}
	// A form post (no JSON) is refused: a page elsewhere cannot send JSON
	// here without a preflight this API never answers.
	rec = f.do("POST", "/embed/api/session", "", "192.0.2.3")
	if rec.Code != http.StatusUnsupportedMediaType {
		t.Errorf("no JSON content type: %d, want 415", rec.Code)
	}
	if strings.Contains(f.logs.String(), "pw-") {
		t.Error("a password is in the log")
	}
}

// Five failures for a username lock it, from any address, right password
// or not, for 15 minutes; five from one address lock the address.
func TestSignInLockout(t *testing.T) {
	f := newFixture(t, nil)
	for i := 1; i <= MaxFailures; i++ {
		rec := f.do("POST", "/embed/api/session", fmt.Sprintf(`{"username":"alice","password":"wrong-%d"}`, i), fmt.Sprintf("192.0.2.%d", i))
		want := http.StatusUnauthorized
		if i == MaxFailures {
			want = http.StatusTooManyRequests
		}
		if rec.Code != want {
			t.Fatalf("failure %d: %d, want %d", i, rec.Code, want)
		}
	}
	rec := f.do("POST", "/embed/api/session", `{"username":"alice","password":"pw-alice"}`, "198.51.100.7")
	if rec.Code != http.StatusTooManyRequests || !strings.Contains(rec.Body.String(), "Try again in 15 minutes") || rec.Header().Get("Retry-After") != "900" {
		t.Fatalf("right password while locked: %d %s (Retry-After %q)", rec.Code, rec.Body, rec.Header().Get("Retry-After"))
	}
	if rec := f.do("POST", "/embed/api/session", `{"username":"bob","password":"pw-bob"}`, "198.51.100.7"); rec.Code != http.StatusOK {
		t.Errorf("another user while alice is locked: %d", rec.Code)
	}
	f.clock.Add(LockoutFor)
	if rec := f.do("POST", "/embed/api/session", `{"username":"alice","password":"pw-alice"}`, "198.51.100.7"); rec.Code != http.StatusOK {
		t.Errorf("after the lockout: %d %s", rec.Code, rec.Body)
	}

	// One address trying many usernames.
	for i := 1; i <= MaxFailures; i++ {
		f.do("POST", "/embed/api/session", fmt.Sprintf(`{"username":"user%d","password":"x"}`, i), "203.0.113.9")
	}
	if rec := f.do("POST", "/embed/api/session", `{"username":"bob","password":"pw-bob"}`, "203.0.113.9"); rec.Code != http.StatusTooManyRequests {
		t.Errorf("a locked address: %d, want 429", rec.Code)
	}
	// Bad widget tokens count against the address too.
	for i := 1; i <= MaxFailures; i++ {
		f.do("POST", "/embed/api/session", fmt.Sprintf(`{"token":"ow1.bad%d.x"}`, i), "203.0.113.10")
	}
	if rec := f.do("POST", "/embed/api/session", `{"username":"bob","password":"pw-bob"}`, "203.0.113.10"); rec.Code != http.StatusTooManyRequests {
		t.Errorf("an address that tried bad tokens: %d, want 429", rec.Code)
	}
	if got := strings.Count(f.logs.String(), "embed: sign-in failed"); got != 3*MaxFailures {
		t.Errorf("%d failures logged, want %d", got, 3*MaxFailures)
	}
}

// issue asks the admin API for a token for user.
func (f *fixture) issue(user string, days int) IssuedToken {
	f.t.Helper()
	body := fmt.Sprintf(`{"user":%q}`, user)
	if days != 0 {
		body = fmt.Sprintf(`{"user":%q,"ttl_days":%d}`, user, days)
	}
	rec := f.do("POST", "/api/v1/embed/tokens", body, "192.0.2.1", "Authorization", "Bearer "+adminToken)
	if rec.Code != http.StatusOK {
		f.t.Fatalf("issue a token for %s: %d %s", user, rec.Code, rec.Body)
	}
	var it IssuedToken
	if err := json.Unmarshal(rec.Body.Bytes(), &it); err != nil {
		f.t.Fatal(err)
	}
	return it
}

// Sessions: valid 12 hours, only with their signature, only while their
// user is in the account with the same password.
func TestSessionTokens(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.signIn("alice")
	ok := func(tok string) int {
		t.Helper()
		code, _ := f.act(tok, `{"type":"zcc-agent-status-get-request"}`)
		return code
	}
	if code := ok(tok); code != http.StatusOK {
		t.Fatalf("a fresh session: %d", code)
	}
	// Tampered: another user in the claims, the signature kept.
	payload, sig, _ := strings.Cut(strings.TrimPrefix(tok, tokenPrefix), ".")
	claims, _ := base64.RawURLEncoding.DecodeString(payload)
	forged := tokenPrefix + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(claims), `"alice"`, `"bob"`, 1))) + "." + sig
	for name, bad := range map[string]string{
		"forged claims": forged, "no signature": tokenPrefix + payload, "flipped signature": tok[:len(tok)-2] + "AA",
		"garbage": "hello", "empty signature": tokenPrefix + payload + ".",
	} {
		if code := ok(bad); code != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", name, code)
		}
	}
	// Another key (another cluster) does not verify it.
	other := newFixture(t, func(d *Deps) { d.Key = []byte("another key, another cluster....") })
	if code, _ := other.act(tok, `{"type":"zcc-agent-status-get-request"}`); code != http.StatusUnauthorized {
		t.Errorf("a token from another key: %d, want 401", code)
	}
	// Expiry.
	f.clock.Add(SessionTTL - time.Second)
	if code := ok(tok); code != http.StatusOK {
		t.Errorf("a second before expiry: %d", code)
	}
	f.clock.Add(time.Second)
	rec := f.do("POST", "/embed/api/action", `{"type":"zcc-agent-status-get-request"}`, "192.0.2.1", "Authorization", "Bearer "+tok)
	if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "expired") || !strings.Contains(rec.Header().Get("WWW-Authenticate"), "invalid_token") {
		t.Errorf("expired: %d %s", rec.Code, rec.Body)
	}
	// A new password revokes it.
	tok = f.signIn("alice")
	f.dir.setPassword("alice", "a new password")
	if rec := f.do("POST", "/embed/api/action", `{"type":"zcc-agent-status-get-request"}`, "192.0.2.1", "Authorization", "Bearer "+tok); rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "revoked") {
		t.Errorf("after a password change: %d %s", rec.Code, rec.Body)
	}
	// A user no longer in the account.
	tok = f.signIn("bob")
	f.dir.remove("bob")
	if rec := f.do("POST", "/embed/api/action", `{"type":"zcc-agent-status-get-request"}`, "192.0.2.1", "Authorization", "Bearer "+tok); rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "no longer") {
		t.Errorf("a user removed from the account: %d %s", rec.Code, rec.Body)
	}
}

// Every API route but the sign-in needs a session token.
func TestAPINeedsABearer(t *testing.T) {
	f := newFixture(t, nil)
	issued := f.issue("alice", 0).Token
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/embed/api/events", ""},
		{"POST", "/embed/api/action", `{"type":"zcc-agent-status-get-request"}`},
		{"POST", "/embed/api/action", `{"type":"onclicktoact","data":{"phone":"1002"}}`},
	} {
		for name, hdr := range map[string][]string{
			"none": nil, "empty": {"Authorization", "Bearer "}, "basic": {"Authorization", "Basic YWxpY2U6cHctYWxpY2U="},
			"wrong": {"Authorization", "Bearer ow1.x.y"}, "an admin-issued token": {"Authorization", "Bearer " + issued},
			"the admin token": {"Authorization", "Bearer " + adminToken},
		} {
			rec := f.do(r.method, r.path, r.body, "192.0.2.1", hdr...)
			if rec.Code != http.StatusUnauthorized || rec.Header().Get("WWW-Authenticate") == "" || decode(t, rec.Body.Bytes())["error"] == "" {
				t.Errorf("%s %s with %s: %d %s, want 401 and why", r.method, r.path, name, rec.Code, rec.Body)
			}
		}
	}
	if got := f.backend.recorded(); len(got) != 0 {
		t.Errorf("the backend was asked %+v", got)
	}
}

// An admin-issued token signs in (once exchanged for a session), for as
// long as it lasts, its user and password unchanged.
func TestIssuedTokens(t *testing.T) {
	f := newFixture(t, nil)
	for name, hdr := range map[string][]string{"none": nil, "wrong": {"Authorization", "Bearer nope"}} {
		rec := f.do("POST", "/api/v1/embed/tokens", `{"user":"alice"}`, "192.0.2.1", hdr...)
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("issue with %s admin token: %d, want 401", name, rec.Code)
		}
	}
	byID := f.issue("u-alice", 0)
	if byID.User != "u-alice" || byID.Username != "alice" || !byID.ExpiresAt.Equal(f.clock.Now().Add(DefaultIssuedDays*24*time.Hour)) {
		t.Errorf("issued %+v", byID)
	}
	byName := f.issue("bob", 7)
	if byName.User != "u-bob" || !byName.ExpiresAt.Equal(f.clock.Now().Add(7*24*time.Hour)) {
		t.Errorf("issued %+v", byName)
	}
	for body, want := range map[string]int{
		`{"user":"nobody"}`:                 http.StatusNotFound,
		`{"user":""}`:                       http.StatusBadRequest,
		`{}`:                                http.StatusBadRequest,
		`{"user":"alice","ttl_days":0}`:     http.StatusBadRequest,
		`{"user":"alice","ttl_days":366}`:   http.StatusBadRequest,
		`{"user":"alice","ttl_days":-1}`:    http.StatusBadRequest,
		`{"user":"alice","ttl_days":"one"}`: http.StatusBadRequest,
		`{"user":"alice","extra":1}`:        http.StatusBadRequest,
	} {
		if rec := f.do("POST", "/api/v1/embed/tokens", body, "192.0.2.1", "Authorization", "Bearer "+adminToken); rec.Code != want {
			t.Errorf("%s: %d %s, want %d", body, rec.Code, rec.Body, want)
		}
	}
	signIn := func(tok string) (int, Session) {
		rec := f.do("POST", "/embed/api/session", fmt.Sprintf(`{"token":%q}`, tok), "192.0.2.50")
		var s Session
		_ = json.Unmarshal(rec.Body.Bytes(), &s)
		return rec.Code, s
	}
	code, s := signIn(byID.Token)
	if code != http.StatusOK || s.User.Username != "alice" || s.Token == byID.Token || !s.ExpiresAt.Equal(f.clock.Now().Add(SessionTTL)) {
		t.Fatalf("sign in with an issued token: %d %+v", code, s)
	}
	if code, _ := f.act(s.Token, `{"type":"zcc-agent-status-get-request"}`); code != http.StatusOK {
		t.Errorf("the session from an issued token: %d", code)
	}
	if code, _ := signIn(s.Token); code != http.StatusUnauthorized {
		t.Errorf("a session token used to sign in: %d, want 401", code)
	}
	f.clock.Add(7 * 24 * time.Hour)
	if code, _ := signIn(byName.Token); code != http.StatusUnauthorized {
		t.Errorf("an expired issued token: %d, want 401", code)
	}
	f.dir.setPassword("alice", "changed")
	if code, _ := signIn(byID.Token); code != http.StatusUnauthorized {
		t.Errorf("an issued token after a password change: %d, want 401", code)
	}
	if !strings.Contains(f.logs.String(), "embed: widget token issued") || strings.Contains(f.logs.String(), byID.Token) {
		t.Error("issuing is not logged, or the token is")
	}
}

// Names reach the widget as JSON, which escapes markup.
func TestNamesAreEscapedInJSON(t *testing.T) {
	f := newFixture(t, nil)
	rec := f.do("POST", "/embed/api/session", `{"username":"mallory","password":"pw-mallory"}`, "192.0.2.1")
	if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), "<script>") || !strings.Contains(rec.Body.String(), `\u003cscript\u003e`) {
		t.Errorf("%d %s", rec.Code, rec.Body)
	}
	rec = f.do("POST", "/api/v1/embed/tokens", `{"user":"mallory"}`, "192.0.2.1", "Authorization", "Bearer "+adminToken)
	if strings.Contains(rec.Body.String(), "<script>") {
		t.Errorf("%s", rec.Body)
	}
}

// Without a key the widget signs with a random one, and says so.
func TestRandomKeyWithoutOne(t *testing.T) {
	f := newFixture(t, func(d *Deps) { d.Key = nil })
	if code, _ := f.act(f.signIn("alice"), `{"type":"zcc-agent-status-get-request"}`); code != http.StatusOK {
		t.Errorf("%d", code)
	}
	if !strings.Contains(f.logs.String(), "random key") {
		t.Error("no warning")
	}
}
