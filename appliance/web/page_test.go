package web

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// The UI's status page shows this node's status and the snapshot's names,
// for the snapshot's admin; the API keeps its bearer token.
func TestUIStatusPageOnARealNode(t *testing.T) {
	n := startNode(t, "n1", true)
	if code, body := do(t, "POST", n.srv.URL+"/api/v1/snapshot", token, demo(t, 1)); code != http.StatusOK {
		t.Fatalf("apply demo: %d %v", code, body)
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := c.Get(n.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, page := get("/")
	if resp.Request.URL.Path != "/login" {
		t.Fatalf("signed out, / led to %s, want /login", resp.Request.URL.Path)
	}
	tok := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindStringSubmatch(page)
	if tok == nil {
		t.Fatalf("no form token:\n%s", page)
	}
	resp, err := c.PostForm(n.srv.URL+"/login", url.Values{"username": {"admin"}, "password": {"outpost-admin"}, "csrf_token": {tok[1]}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page = string(b)
	for _, want := range []string{`id="mode">normal<`, "Headquarters", "Chicago Branch", `id="leader">n1<`, `id="revision">1<`} {
		if !strings.Contains(page, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	// The session cookie is no API credential.
	req, _ := http.NewRequest("GET", n.srv.URL+"/api/v1/snapshot", nil)
	for _, ck := range jar.Cookies(resp.Request.URL) {
		req.AddCookie(ck)
	}
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("API with the session cookie only: %v %v, want 401", resp.StatusCode, err)
	}
}
