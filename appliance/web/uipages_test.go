package web

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/appliance/store"
	"github.com/outpost-voice/outpost/config"
)

// uiClient signs in to n's UI as the demo admin and returns the client
// and the session's CSRF token.
func uiClient(t *testing.T, n *testNode) (*http.Client, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.Get(n.srv.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	tokRE := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	tok := tokRE.FindSubmatch(b)
	if tok == nil {
		t.Fatalf("no form token:\n%s", b)
	}
	resp, err = c.PostForm(n.srv.URL+"/login", url.Values{"username": {"admin"}, "password": {"outpost-admin"}, "csrf_token": {string(tok[1])}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	sess := tokRE.FindSubmatch(b)
	if resp.StatusCode != http.StatusOK || sess == nil {
		t.Fatalf("sign in: %d\n%s", resp.StatusCode, b)
	}
	return c, string(sess[1])
}

func uiGet(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// putBindings registers alice (a Yealink) and bob (a softphone).
func putBindings(t *testing.T, n *testNode) {
	t.Helper()
	now := time.Now()
	if err := n.st.PutLocalBindings([]store.Binding{
		{ID: "b-alice", AOR: "alice@acme.example", UserID: "u-alice", Username: "alice", Site: "hq", Contact: "sip:alice@192.0.2.10:5060",
			CallID: "c1", CSeq: 1, Transport: "udp", Source: "192.0.2.10:5060", Node: "n1", UserAgent: "Yealink SIP-T54W", Expires: now.Add(time.Hour), UpdatedAt: now},
		{ID: "b-bob", AOR: "bob@acme.example", UserID: "u-bob", Username: "bob", Site: "hq", Contact: "sip:bob@192.0.2.11:5062;transport=tcp",
			CallID: "c2", CSeq: 1, Transport: "tcp", Source: "192.0.2.11:5062", Node: "n1", UserAgent: "<script>alert(1)</script>", Expires: now.Add(time.Hour), UpdatedAt: now},
	}); err != nil {
		t.Fatal(err)
	}
}

func TestBindingsAPIFilters(t *testing.T) {
	n := startNode(t, "n1", true)
	if code, body := do(t, "POST", n.srv.URL+"/api/v1/snapshot", token, demo(t, 1)); code != http.StatusOK {
		t.Fatalf("apply demo: %d %v", code, body)
	}
	putBindings(t, n)
	if code, _ := do(t, "GET", n.srv.URL+"/api/v1/bindings", "", nil); code != http.StatusUnauthorized {
		t.Errorf("bindings without a token: %d, want 401", code)
	}
	for q, want := range map[string][]string{"": {"alice", "bob"}, "yealink": {"alice"}, "1002": {"bob"}, "192.0.2.1": {"alice", "bob"}, "zzz": {}} {
		code, body := do(t, "GET", n.srv.URL+"/api/v1/bindings?q="+url.QueryEscape(q), token, nil)
		list := asSlice(body["bindings"])
		var got []string
		for _, b := range list {
			got = append(got, b.(map[string]any)["username"].(string))
		}
		if code != http.StatusOK || strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("q=%q: %d %v, want %v", q, code, got, want)
		}
		if q == "yealink" && len(list) == 1 {
			b := list[0].(map[string]any)
			if b["extension"] != "1001" || b["user_agent"] != "Yealink SIP-T54W" || b["transport"] != "udp" || b["node"] != "n1" {
				t.Errorf("alice's binding: %v", b)
			}
		}
	}
	if code, _ := do(t, "GET", n.srv.URL+"/api/v1/bindings?q="+strings.Repeat("x", 200), token, nil); code != http.StatusBadRequest {
		t.Errorf("a 200-byte query: %d, want 400", code)
	}
}

// The pages on a real node: the phones (searchable, escaped), the SDGs
// of the demo snapshot, the journal, and a node joined from the form.
func TestUIPagesOnARealNode(t *testing.T) {
	n := startNode(t, "n1", true)
	if code, body := do(t, "POST", n.srv.URL+"/api/v1/snapshot", token, demo(t, 1)); code != http.StatusOK {
		t.Fatalf("apply demo: %d %v", code, body)
	}
	putBindings(t, n)
	c, csrf := uiClient(t, n)

	code, page := uiGet(t, c, n.srv.URL+"/phones?q=yealink")
	if code != http.StatusOK || !strings.Contains(page, `data-user="alice"`) || strings.Contains(page, `data-user="bob"`) || !strings.Contains(page, "Alice") {
		t.Errorf("phones?q=yealink: %d, want alice only:\n%s", code, page)
	}
	_, page = uiGet(t, c, n.srv.URL+"/phones")
	if strings.Contains(page, "<script>alert") || !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("phones: a user agent is not escaped")
	}
	_, page = uiGet(t, c, n.srv.URL+"/sdgs")
	for _, want := range []string{"Front Desk", "Main Menu", "1999", `data-sdg="sdg-branch-sales"`, "group of u-"} {
		if !strings.Contains(page, want) {
			t.Errorf("sdgs lacks %q", want)
		}
	}
	if code, page := uiGet(t, c, n.srv.URL+"/calls"); code != http.StatusOK || !strings.Contains(page, "No calls in the journal yet.") {
		t.Errorf("calls: %d", code)
	}

	n2 := startNode(t, "n2", false)
	resp, err := c.PostForm(n.srv.URL+"/cluster/join", url.Values{"id": {"n2"}, "raft_addr": {n2.c.RaftAddr()}, "csrf_token": {csrf}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/cluster" || !strings.Contains(string(b), "n2 was added") {
		t.Fatalf("join n2 from the UI: %d %s\n%s", resp.StatusCode, resp.Request.URL, b)
	}
	waitFor(t, "n2 a voter", func() error {
		ms, err := n.c.Members()
		if err != nil || len(ms) != 2 {
			return errNoLeader
		}
		return nil
	})
	// The API's refusal comes back as the page's message.
	resp, err = c.PostForm(n.srv.URL+"/cluster/join", url.Values{"id": {"n3"}, "raft_addr": {n2.c.RaftAddr()}, "csrf_token": {csrf}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict || !strings.Contains(string(b), "The node was not added:") {
		t.Errorf("join n3 at n2's address: %d\n%s", resp.StatusCode, b)
	}
}

func TestUISettingsAreRedacted(t *testing.T) {
	s := &Server{deps: Deps{Config: func() config.Config {
		var c config.Config
		c.NodeID = "n1"
		c.Cloud.URL = "https://user:hunter2@cloud.example"
		return c
	}}}
	y, err := s.uiDeps().Settings()
	if err != nil || strings.Contains(y, "hunter2") || !strings.Contains(y, "cloud.example") {
		t.Errorf("settings: %v\n%s", err, y)
	}
}
