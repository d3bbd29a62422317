package ui

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/account"
)

// pagesFixture is a UI whose node has a phone, a call, a record, an SDG
// and a configuration, every name of them evil.
func pagesFixture(t *testing.T, mod func(*Deps)) *fixture {
	return newFixture(t, func(d *Deps) {
		now := time.Date(2030, 1, 2, 3, 5, 35, 0, time.UTC)
		all := []Binding{
			{User: "alice", Name: evilName, Extension: "1001", Site: "hq", Contact: "sip:alice@192.0.2.10:5060", Transport: "udp", UserAgent: "Yealink T54W", Node: "n1", Expires: now.Add(time.Hour), AfterRecovery: true},
			{User: "bob", Name: "Bob Brown", Extension: "1002", Site: "hq", Contact: "sip:bob@192.0.2.11:5060", Transport: "tcp", UserAgent: evilName, Node: "n2", Expires: now.Add(time.Minute)},
		}
		d.Bindings = func(_ context.Context, q string) ([]Binding, error) {
			var out []Binding
			for _, b := range all {
				if q == "" || strings.Contains(strings.ToLower(b.User+b.Extension+b.Contact+b.UserAgent), strings.ToLower(q)) {
					out = append(out, b)
				}
			}
			return out, nil
		}
		d.Calls = func(context.Context) ([]Call, error) {
			return []Call{{CallID: "c1", Caller: evilName, Dialled: "1900", State: "routing", Route: "sdg:sdg-frontdesk > group:simultaneous", Start: now.Add(-time.Minute)},
				{CallID: "c2", ID: "r2", Owner: "u-alice", Caller: "alice", State: "conference", Start: now,
					Participants: []string{"Alice", evilName}, Invitations: []string{"callout " + evilName + ": pending"}}}, nil
		}
		d.History = func(_ context.Context, off, limit int) ([]CallRecord, bool, error) {
			if off > 0 {
				return nil, false, nil
			}
			return []CallRecord{{ID: "r1", Caller: "alice", CallerName: evilName, Callee: "bob", Dialled: "1002", Destination: "user",
				Start: now.Add(-3 * time.Minute), Answer: now.Add(-170 * time.Second), End: now.Add(-50 * time.Second),
				Disposition: "answered", Status: 200, Node: "n1", Route: "sdg:sdg-x > member:u-bob"}}, true, nil
		}
		d.SDGs = func(context.Context) ([]SDG, error) {
			return []SDG{{ID: "sdg-frontdesk", Name: evilName, Extension: "1900", Site: "hq",
				Route: &account.Route{Type: account.RouteGroup, Members: []string{"u-alice", "u-bob"}, Strategy: account.StrategySequential, RingTimeoutS: 20,
					NoAnswer: &account.Route{Type: account.RouteIVR, Prompt: "after-hours", Options: map[string]*account.Route{"1": {Type: account.RouteUser, ID: "u-carol"}},
						NoInput: &account.Route{Type: account.RouteNumber, Number: "+15550100"}}},
				Members: []SDGMember{{UserID: "u-alice", Name: "Alice", State: "busy"}, {UserID: "u-bob", Username: "bob", State: "unregistered"}}}}, nil
		}
		d.Settings = func() (string, error) {
			return "node_id: n1\ncloud:\n  url: https://xxxxx@cloud.example\nsite: " + evilName + "\n", nil
		}
		if mod != nil {
			mod(d)
		}
	})
}

func TestPagesNeedASignIn(t *testing.T) {
	f := pagesFixture(t, nil)
	b := f.browser("192.0.2.1")
	for _, path := range []string{"/phones", "/calls", "/sdgs", "/cluster", "/settings", "/phones?q=alice"} {
		if resp, _ := b.do("GET", path, nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
			t.Errorf("GET %s signed out: %d %q, want 303 to /login", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if resp, _ := b.do("POST", "/cluster/join", url.Values{"id": {"n4"}, "raft_addr": {"10.0.0.4:7000"}}); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("POST /cluster/join signed out: %d, want 303 to /login", resp.StatusCode)
	}
}

func TestEveryPageRendersEscapedWithItsNavigation(t *testing.T) {
	f := pagesFixture(t, nil)
	b := f.browser("192.0.2.1")
	if resp, _ := b.signIn(adminUser, adminPass); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign in: %d", resp.StatusCode)
	}
	for _, tc := range []struct {
		path  string
		wants []string
	}{
		{"/", []string{`id="mode"`}},
		{"/phones", []string{`id="bindings"`, "Yealink T54W", "sip:bob@192.0.2.11:5060", "1001", "tcp", "n2", "1h 00m", `id="binding-count">2<`, `id="after-recovery"`, "after recovery"}},
		{"/calls", []string{`data-live="/ui/events?view=calls"`, `data-call-id="c1"`, "sdg:sdg-frontdesk &gt; group:simultaneous", "routing", `data-call-conf="r2"`, "Owner",
			`id="history"`, "sdg:sdg-x &gt; member:u-bob", "answered", "2m 00s", `href="/calls?offset=100"`}},
		{"/sdgs", []string{`data-live="/ui/events?view=sdgs"`, `data-sdg="sdg-frontdesk"`, "1900",
			"group of u-alice, u-bob (sequential, ring 20s); no answer → [IVR after-hours: 1 → user u-carol; no input → number &#43;15550100]",
			`state-busy">busy<`, `state-unregistered">unregistered<`}},
		{"/cluster", []string{`id="members"`, `id="leader">n1<`, `127.0.0.1:7000`, "healthy"}},
		{"/settings", []string{`id="config"`, "node_id: n1", "https://xxxxx@cloud.example"}},
	} {
		resp, page := b.do("GET", tc.path, nil)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", tc.path, resp.StatusCode)
			continue
		}
		for _, want := range tc.wants {
			if !strings.Contains(page, want) {
				t.Errorf("GET %s lacks %q", tc.path, want)
			}
		}
		if strings.Contains(page, "<script>alert") {
			t.Errorf("GET %s: an unescaped name in the page", tc.path)
		}
		if tc.path != "/" && tc.path != "/cluster" && !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("GET %s: the evil name is not shown escaped", tc.path)
		}
		if cur := `<a href="` + tc.path + `" aria-current="page">`; !strings.Contains(page, cur) || strings.Count(page, `aria-current="page"`) != 1 {
			t.Errorf("GET %s: the navigation does not mark it (and only it) current", tc.path)
		}
		for _, nav := range []string{`href="/phones"`, `href="/calls"`, `href="/sdgs"`, `href="/cluster"`, `href="/settings"`, "Sign out"} {
			if !strings.Contains(page, nav) {
				t.Errorf("GET %s: the navigation lacks %s", tc.path, nav)
			}
		}
		if strings.Count(page, `name="csrf_token"`) != strings.Count(page, "<form")-strings.Count(page, `method="get"`) {
			t.Errorf("GET %s: a POST form without its CSRF token", tc.path)
		}
	}
}

func TestPhonesSearch(t *testing.T) {
	f := pagesFixture(t, nil)
	b := f.browser("192.0.2.1")
	b.signIn(adminUser, adminPass)
	for q, want := range map[string][]string{"YEALINK": {"alice"}, "1002": {"bob"}, "192.0.2.1": {"alice", "bob"}, "nobody": nil} {
		_, page := b.do("GET", "/phones?q="+url.QueryEscape(q), nil)
		for _, user := range []string{"alice", "bob"} {
			has := strings.Contains(page, `data-user="`+user+`"`)
			wanted := strings.Contains(strings.Join(want, ","), user)
			if has != wanted {
				t.Errorf("q=%q: %s shown %v, want %v", q, user, has, wanted)
			}
		}
		if !strings.Contains(page, `value="`+q+`"`) {
			t.Errorf("q=%q: the search box does not keep it", q)
		}
		if want == nil && !strings.Contains(page, "No phone matches") {
			t.Errorf("q=%q: no empty-result message", q)
		}
	}
	_, page := b.do("GET", "/phones?q="+url.QueryEscape(evilName), nil)
	if strings.Contains(page, "<script>alert") {
		t.Error("the query is echoed unescaped")
	}
}

func TestCallsHistoryPages(t *testing.T) {
	f := pagesFixture(t, nil)
	b := f.browser("192.0.2.1")
	b.signIn(adminUser, adminPass)
	_, page := b.do("GET", "/calls?offset=100", nil)
	if !strings.Contains(page, "No older calls.") || !strings.Contains(page, `href="/calls?offset=0"`) || strings.Contains(page, `offset=200`) {
		t.Errorf("second history page: want no records, a Newer link and no Older link:\n%s", page)
	}
}

func TestJoinForm(t *testing.T) {
	type call struct{ id, addr string }
	var calls []call
	joinErr := error(nil)
	f := pagesFixture(t, func(d *Deps) {
		d.Join = func(_ context.Context, id, addr string) (int, error) {
			calls = append(calls, call{id, addr})
			if joinErr != nil {
				return http.StatusConflict, joinErr
			}
			return http.StatusOK, nil
		}
	})
	b := f.browser("192.0.2.1")
	b.signIn(adminUser, adminPass)
	_, page := b.do("GET", "/cluster", nil)
	tok := formToken(t, page)
	if !strings.Contains(page, `action="/cluster/join"`) || !strings.Contains(page, `<label for="join-id">`) || !strings.Contains(page, `<label for="join-addr">`) {
		t.Fatalf("no labelled join form:\n%s", page)
	}
	// Without the CSRF token: refused before the handler.
	if resp, _ := b.do("POST", "/cluster/join", url.Values{"id": {"n4"}, "raft_addr": {"10.0.0.4:7000"}}); resp.StatusCode != http.StatusForbidden || len(calls) != 0 {
		t.Errorf("join without token: %d, %d joins; want 403 and none", resp.StatusCode, len(calls))
	}
	for _, bad := range []url.Values{
		{"id": {""}, "raft_addr": {"10.0.0.4:7000"}},
		{"id": {"<b>x</b>"}, "raft_addr": {"10.0.0.4:7000"}},
		{"id": {"n4"}, "raft_addr": {"10.0.0.4"}},
		{"id": {"n4"}, "raft_addr": {"10.0.0.4:99999"}},
	} {
		bad.Set(CSRFField, tok)
		resp, page := b.do("POST", "/cluster/join", bad)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, `id="join-error"`) {
			t.Errorf("join %v: %d, want 400 with why", bad, resp.StatusCode)
		}
		if strings.Contains(page, "<b>x</b>") {
			t.Error("the refused id is echoed unescaped")
		}
	}
	if len(calls) != 0 {
		t.Fatalf("bad input reached Join: %v", calls)
	}
	resp, _ := b.do("POST", "/cluster/join", url.Values{"id": {"n4"}, "raft_addr": {"10.0.0.4:7000"}, CSRFField: {tok}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/cluster?joined=n4" || len(calls) != 1 || calls[0] != (call{"n4", "10.0.0.4:7000"}) {
		t.Fatalf("join: %d %q %v", resp.StatusCode, resp.Header.Get("Location"), calls)
	}
	if _, page := b.do("GET", "/cluster?joined=n4", nil); !strings.Contains(page, `id="joined">n4 was added`) {
		t.Error("no confirmation after the join")
	}
	joinErr = errors.New("raft address 10.0.0.4:7000 already belongs to member n3")
	resp, page = b.do("POST", "/cluster/join", url.Values{"id": {"n4"}, "raft_addr": {"10.0.0.4:7000"}, CSRFField: {tok}})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(page, "already belongs to member n3") || !strings.Contains(page, `value="10.0.0.4:7000"`) {
		t.Errorf("refused join: %d, want 409 with the API's reason and the form kept", resp.StatusCode)
	}
}

func TestViewersCannotJoin(t *testing.T) {
	f := pagesFixture(t, func(d *Deps) {
		d.Join = func(context.Context, string, string) (int, error) {
			t.Error("a viewer's join reached Join")
			return 200, nil
		}
	})
	f.admins = []account.Admin{{Username: "viewer", Role: account.RoleViewer, Bcrypt: hash(t, "viewer-password")}}
	b := f.browser("192.0.2.1")
	b.signIn("viewer", "viewer-password")
	_, page := b.do("GET", "/cluster", nil)
	if strings.Contains(page, `action="/cluster/join"`) {
		t.Error("a viewer is shown the join form")
	}
	resp, _ := b.do("POST", "/cluster/join", url.Values{"id": {"n4"}, "raft_addr": {"10.0.0.4:7000"}, CSRFField: {formToken(t, page)}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a viewer's join: %d, want 403", resp.StatusCode)
	}
}

func TestSettingsWithoutConfig(t *testing.T) {
	f := newFixture(t, nil)
	b := f.browser("192.0.2.1")
	b.signIn(adminUser, adminPass)
	if resp, page := b.do("GET", "/settings", nil); resp.StatusCode != http.StatusOK || !strings.Contains(page, "not available") {
		t.Errorf("settings without a config: %d", resp.StatusCode)
	}
	for _, path := range []string{"/phones", "/calls", "/sdgs"} {
		if resp, _ := b.do("GET", path, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s without its dependency: %d", path, resp.StatusCode)
		}
	}
}

func TestCallsAndSDGsStreamTheirLiveParts(t *testing.T) {
	f := pagesFixture(t, nil)
	b := f.browser("192.0.2.1")
	b.signIn(adminUser, adminPass)
	for path, want := range map[string]struct{ event, has string }{
		"/ui/events?view=calls": {EventCalls, `data-call-id="c1"`},
		"/ui/events?view=sdgs":  {EventSDGs, `state-busy">busy<`},
	} {
		s := openStreamAt(t, f, b, path)
		name, data := s.next(t)
		if name != want.event || !strings.Contains(data, want.has) {
			t.Errorf("%s: first event %q, want %q with %s:\n%s", path, name, want.event, want.has, data)
		}
		if strings.Contains(data, "<script>alert") || !strings.Contains(data, "&lt;script&gt;") {
			t.Errorf("%s: not escaped:\n%s", path, data)
		}
	}
	if resp, _ := b.do("GET", "/ui/events?view=nope", nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown view: %d, want 400", resp.StatusCode)
	}
}
