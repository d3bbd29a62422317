package web

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// PUT and DELETE /api/v1/sdgs/{id}/override: the bearer token is
// required; a good route is applied through Raft and listed; a route that
// does not pass the snapshot's rules is 400 with its problems as details,
// an unknown SDG 404; the UI's form goes through the same endpoint.
func TestSDGOverrideAPI(t *testing.T) {
	n := startNode(t, "n1", true)
	if code, body := do(t, "POST", n.srv.URL+"/api/v1/snapshot", token, demo(t, 1)); code != http.StatusOK {
		t.Fatalf("apply demo: %d %v", code, body)
	}
	u := n.srv.URL + "/api/v1/sdgs/sdg-frontdesk/override"
	carol := []byte(`{"type":"user","id":"u-carol"}`)
	if code, _ := do(t, "PUT", u, "", carol); code != http.StatusUnauthorized {
		t.Errorf("without a token: %d, want 401", code)
	}
	if code, body := do(t, "PUT", u, token, carol); code != http.StatusOK || body["override"] == nil {
		t.Fatalf("put: %d %v", code, body)
	}
	code, body := do(t, "GET", n.srv.URL+"/api/v1/sdgs/overrides", token, nil)
	if os, _ := body["overrides"].([]any); code != http.StatusOK || len(os) != 1 || os[0].(map[string]any)["by"] != "api" {
		t.Errorf("list: %d %v", code, body)
	}
	code, body = do(t, "PUT", u, token, []byte(`{"type":"user","id":"u-zed"}`))
	if ds, _ := body["details"].([]any); code != http.StatusBadRequest || len(ds) == 0 {
		t.Errorf("unknown user: %d %v, want 400 with the problems as details", code, body)
	}
	if code, body := do(t, "PUT", u, token, []byte(`{"type":"user","id":"u-carol","colour":"red"}`)); code != http.StatusBadRequest {
		t.Errorf("unknown field: %d %v, want 400", code, body)
	}
	for _, m := range []string{"PUT", "DELETE"} {
		if code, body := do(t, m, n.srv.URL+"/api/v1/sdgs/sdg-nope/override", token, carol); code != http.StatusNotFound {
			t.Errorf("%s an unknown SDG: %d %v, want 404", m, code, body)
		}
	}
	if code, body := do(t, "DELETE", u, token, nil); code != http.StatusOK || body["override"] != nil {
		t.Fatalf("delete: %d %v", code, body)
	}
	if os, err := n.st.Reader().SDGOverrides(t.Context()); err != nil || len(os) != 0 {
		t.Fatalf("after delete: %v %v", os, err)
	}

	// The UI: an admin's form reaches the endpoint, recorded as theirs.
	c, csrf := uiClient(t, n)
	resp, err := c.PostForm(n.srv.URL+"/sdgs/override", url.Values{"sdg": {"sdg-operator"}, "target": {"number"}, "number": {"+14155550188"}, "csrf_token": {csrf}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK { // after the redirect to /sdgs
		t.Fatalf("ui override: %d", resp.StatusCode)
	}
	if os, err := n.st.Reader().SDGOverrides(t.Context()); err != nil || len(os) != 1 || os[0].By != "admin" || os[0].Route.Number != "+14155550188" {
		t.Fatalf("after the ui's override: %+v %v", os, err)
	}
	if _, page := uiGet(t, c, n.srv.URL+"/sdgs"); !strings.Contains(page, "OVERRIDDEN by admin") {
		t.Errorf("the SDGs page does not show the override")
	}
	resp, err = c.PostForm(n.srv.URL+"/sdgs/override", url.Values{"sdg": {"sdg-operator"}, "target": {"user"}, "user": {"u-zed"}, "csrf_token": {csrf}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("ui override to an unknown user: %d, want 400", resp.StatusCode)
	}
	// The API's details reach the page.
	if !strings.Contains(string(page), "sdgs[1].route.id: no user has id") {
		t.Errorf("the page does not show the route's problem:\n%s", page)
	}
}
