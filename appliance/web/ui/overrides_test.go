package ui

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/account"
)

type overrideCall struct {
	sdg   string
	route *account.Route
	by    string
}

func overrideFixture(t *testing.T, calls *[]overrideCall) *fixture {
	return pagesFixture(t, func(d *Deps) {
		d.SDGs = func(context.Context) ([]SDG, error) {
			return []SDG{{ID: "sdg-frontdesk", Name: "Front Desk", Site: "hq", Route: &account.Route{Type: "user", ID: "u-bob"},
				Override: &SDGOverride{Route: &account.Route{Type: "number", Number: "+14155550123"}, By: "admin",
					At: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}}}, nil
		}
		d.Users = func(context.Context) ([]account.User, error) {
			return []account.User{{ID: "u-carol", Name: "Carol", Extension: "1003"}}, nil
		}
		d.Override = func(_ context.Context, sdg string, r *account.Route, by string) (int, error) {
			*calls = append(*calls, overrideCall{sdg, r, by})
			return http.StatusOK, nil
		}
	})
}

// An admin sees the override and the form; the form needs the CSRF token,
// checks its number, and re-points or clears through Deps.Override.
func TestOverrideForm(t *testing.T) {
	var calls []overrideCall
	f := overrideFixture(t, &calls)
	b := f.browser("192.0.2.1")
	b.signIn(adminUser, adminPass)
	_, page := b.do("GET", "/sdgs", nil)
	if !strings.Contains(page, "OVERRIDDEN by admin at 2026-11-23 09:00:00Z: number &#43;14155550123") ||
		!strings.Contains(page, `action="/sdgs/override"`) || !strings.Contains(page, `value="u-carol"`) ||
		!strings.Contains(page, `data-clear="sdg-frontdesk"`) {
		t.Fatalf("no override shown or no form:\n%s", page)
	}
	tok := formToken(t, page)
	if resp, _ := b.do("POST", "/sdgs/override", url.Values{"sdg": {"sdg-frontdesk"}, "target": {"user"}, "user": {"u-carol"}}); resp.StatusCode != http.StatusForbidden || len(calls) != 0 {
		t.Errorf("without the CSRF token: %d, %d calls; want 403 and none", resp.StatusCode, len(calls))
	}
	if resp, page := b.do("POST", "/sdgs/override", url.Values{"sdg": {"sdg-frontdesk"}, "target": {"number"}, "number": {"0800"}, CSRFField: {tok}}); resp.StatusCode != http.StatusBadRequest ||
		!strings.Contains(page, "E.164") || len(calls) != 0 {
		t.Errorf("a bad number: %d, %d calls; want 400 and none", resp.StatusCode, len(calls))
	}
	resp, _ := b.do("POST", "/sdgs/override", url.Values{"sdg": {"sdg-frontdesk"}, "target": {"user"}, "user": {"u-carol"}, CSRFField: {tok}})
	if resp.StatusCode != http.StatusSeeOther || len(calls) != 1 || calls[0].sdg != "sdg-frontdesk" || calls[0].by != adminUser ||
		calls[0].route == nil || calls[0].route.Type != "user" || calls[0].route.ID != "u-carol" {
		t.Fatalf("override to a user: %d, %+v", resp.StatusCode, calls)
	}
	resp, _ = b.do("POST", "/sdgs/override", url.Values{"sdg": {"sdg-frontdesk"}, "target": {"number"}, "number": {"+14155550188"}, CSRFField: {tok}})
	if resp.StatusCode != http.StatusSeeOther || len(calls) != 2 || calls[1].route.Number != "+14155550188" {
		t.Fatalf("override to a number: %d, %+v", resp.StatusCode, calls)
	}
	resp, _ = b.do("POST", "/sdgs/override/clear", url.Values{"sdg": {"sdg-frontdesk"}, CSRFField: {tok}})
	if resp.StatusCode != http.StatusSeeOther || len(calls) != 3 || calls[2].route != nil {
		t.Fatalf("clear: %d, %+v", resp.StatusCode, calls)
	}
}

func TestViewersCannotOverride(t *testing.T) {
	var calls []overrideCall
	f := overrideFixture(t, &calls)
	f.admins = []account.Admin{{Username: "viewer", Role: account.RoleViewer, Bcrypt: hash(t, "viewer-password")}}
	b := f.browser("192.0.2.1")
	b.signIn("viewer", "viewer-password")
	_, page := b.do("GET", "/sdgs", nil)
	if strings.Contains(page, `action="/sdgs/override"`) || !strings.Contains(page, "OVERRIDDEN by admin") {
		t.Error("a viewer is shown the override form, or not the override")
	}
	for _, path := range []string{"/sdgs/override", "/sdgs/override/clear"} {
		resp, _ := b.do("POST", path, url.Values{"sdg": {"sdg-frontdesk"}, "target": {"user"}, "user": {"u-carol"}, CSRFField: {formToken(t, page)}})
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("a viewer's %s: %d, want 403", path, resp.StatusCode)
		}
	}
	if len(calls) != 0 {
		t.Errorf("a viewer's request reached Override: %+v", calls)
	}
}
