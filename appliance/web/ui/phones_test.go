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

type widgetTokenCall struct {
	user string
	days int
	by   string
}

func widgetTokenFixture(t *testing.T, calls *[]widgetTokenCall, fail error) *fixture {
	return pagesFixture(t, func(d *Deps) {
		d.Users = func(context.Context) ([]account.User, error) {
			return []account.User{{ID: "u-alice", Name: evilName, Extension: "1001", SIP: account.SIPCredentials{Username: "alice"}},
				{ID: "u-bob", Name: "Bob Baker", Extension: "1002", SIP: account.SIPCredentials{Username: "bob"}}}, nil
		}
		d.WidgetToken = func(_ context.Context, user string, days int, by string) (WidgetToken, int, error) {
			*calls = append(*calls, widgetTokenCall{user, days, by})
			if fail != nil {
				return WidgetToken{}, http.StatusNotFound, fail
			}
			return WidgetToken{Token: "ow1.the-token.sig", UserID: user, Username: "alice", Name: evilName,
				ExpiresAt: time.Date(2030, 4, 2, 3, 5, 35, 0, time.UTC)}, http.StatusOK, nil
		}
	})
}

// An admin issues a widget token from the Phones page: the form needs the
// CSRF token and checks its days; the token is shown once, in the answer
// to the form (never in a URL).
func TestWidgetTokenForm(t *testing.T) {
	var calls []widgetTokenCall
	f := widgetTokenFixture(t, &calls, nil)
	b := f.browser("192.0.2.1")
	b.signIn(adminUser, adminPass)
	_, page := b.do("GET", "/phones", nil)
	if !strings.Contains(page, `action="/phones/widget-token"`) || !strings.Contains(page, `<option value="u-alice">&lt;script&gt;alert(1)&lt;/script&gt; (alice, 1001)</option>`) ||
		!strings.Contains(page, `value="90"`) || strings.Contains(page, "<script>alert") {
		t.Fatalf("no widget token form, or a name unescaped:\n%s", page)
	}
	tok := formToken(t, page)
	if resp, _ := b.do("POST", "/phones/widget-token", url.Values{"user": {"u-alice"}, "ttl_days": {"30"}}); resp.StatusCode != http.StatusForbidden || len(calls) != 0 {
		t.Errorf("without the CSRF token: %d, %d calls; want 403 and none", resp.StatusCode, len(calls))
	}
	for _, days := range []string{"0", "366", "ninety", ""} {
		resp, page := b.do("POST", "/phones/widget-token", url.Values{"user": {"u-alice"}, "ttl_days": {days}, CSRFField: {tok}})
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, `id="widget-token-error"`) || len(calls) != 0 {
			t.Errorf("ttl_days %q: %d, %d calls; want 400 and none", days, resp.StatusCode, len(calls))
		}
	}
	if resp, _ := b.do("POST", "/phones/widget-token", url.Values{"user": {""}, "ttl_days": {"30"}, CSRFField: {tok}}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("no user: %d, want 400", resp.StatusCode)
	}
	resp, page := b.do("POST", "/phones/widget-token", url.Values{"user": {"u-alice"}, "ttl_days": {"30"}, CSRFField: {tok}})
	if resp.StatusCode != http.StatusOK || len(calls) != 1 || calls[0] != (widgetTokenCall{"u-alice", 30, adminUser}) {
		t.Fatalf("issue: %d, calls %+v", resp.StatusCode, calls)
	}
	if !strings.Contains(page, `id="widget-token-issued"`) || !strings.Contains(page, `value="ow1.the-token.sig"`) ||
		!strings.Contains(page, "valid until 2030-04-02 03:05:35Z") || strings.Contains(page, "<script>alert") {
		t.Errorf("the token is not shown, or a name unescaped:\n%s", page)
	}
	if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Location") != "" {
		t.Errorf("the page with the token: Cache-Control %q, Location %q", resp.Header.Get("Cache-Control"), resp.Header.Get("Location"))
	}
	if _, page := b.do("GET", "/phones", nil); strings.Contains(page, "ow1.the-token.sig") {
		t.Error("the token is shown again")
	}
	if strings.Contains(f.logs.String(), "ow1.the-token") {
		t.Error("the token is in the log")
	}
}

// The API's refusal is the page's message, with its status.
func TestWidgetTokenRefused(t *testing.T) {
	var calls []widgetTokenCall
	f := widgetTokenFixture(t, &calls, errors.New(`user: "u-zed" is neither the id nor the SIP username of a user`))
	b := f.browser("192.0.2.1")
	b.signIn(adminUser, adminPass)
	_, page := b.do("GET", "/phones", nil)
	resp, page := b.do("POST", "/phones/widget-token", url.Values{"user": {"u-zed"}, "ttl_days": {"90"}, CSRFField: {formToken(t, page)}})
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(page, "No token issued: user: &#34;u-zed&#34; is neither") {
		t.Errorf("%d\n%s", resp.StatusCode, page)
	}
}

func TestViewersCannotIssueWidgetTokens(t *testing.T) {
	var calls []widgetTokenCall
	f := widgetTokenFixture(t, &calls, nil)
	f.admins = []account.Admin{{Username: "viewer", Role: account.RoleViewer, Bcrypt: hash(t, "viewer-password")}}
	b := f.browser("192.0.2.1")
	b.signIn("viewer", "viewer-password")
	_, page := b.do("GET", "/phones", nil)
	if strings.Contains(page, `action="/phones/widget-token"`) {
		t.Error("a viewer is shown the widget token form")
	}
	resp, _ := b.do("POST", "/phones/widget-token", url.Values{"user": {"u-alice"}, "ttl_days": {"90"}, CSRFField: {formToken(t, page)}})
	if resp.StatusCode != http.StatusForbidden || len(calls) != 0 {
		t.Errorf("a viewer's request: %d, calls %+v; want 403 and none", resp.StatusCode, calls)
	}
}
