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

type smsCall struct{ call, number, text string }

// inviteFixture: call c1 (alice's, connected) has a dial-in number and a
// PIN; SMS to +16505550404 are refused by the SBC.
func inviteFixture(t *testing.T, sent *[]smsCall) *fixture {
	return pagesFixture(t, func(d *Deps) {
		d.Calls = func(context.Context) ([]Call, error) {
			return []Call{
				{ID: "c1", CallID: "x1", Caller: "alice", Callee: "bob", State: "connected", Owner: "u-alice", Start: time.Now()},
				{ID: "c2", CallID: "x2", Caller: "+14155550000", State: "ivr", Start: time.Now()},
			}, nil
		}
		d.InviteInfo = func(_ context.Context, id string) (InviteInfo, int, error) {
			if id != "c1" {
				return InviteInfo{}, http.StatusNotFound, errors.New("no such call in progress on this node")
			}
			return InviteInfo{DialIn: []DialInNumber{{Number: "+16505550150", Site: "hq"}}, PIN: "048213",
				SMSText: "Alice invites you to join a call. Dial +16505550150 and enter PIN 048213 followed by #."}, http.StatusOK, nil
		}
		d.SendSMS = func(_ context.Context, id, number, text string) (SMSSent, int, error) {
			if number == "+16505550404" {
				return SMSSent{}, http.StatusBadGateway, errors.New("the SMS was not accepted: trunk t1 answered 404 Not Found")
			}
			*sent = append(*sent, smsCall{id, number, text})
			return SMSSent{Status: 202, Trunk: "t1"}, http.StatusAccepted, nil
		}
	})
}

// An admin opens a call's invite panel from the Calls page: the dial-in
// number and PIN to copy, the SMS form with the default text, which sends
// through Deps.SendSMS (line breaks made spaces) and says what happened.
func TestInvitePanel(t *testing.T) {
	var sent []smsCall
	f := inviteFixture(t, &sent)
	b := f.browser("192.0.2.1")
	b.signIn(adminUser, adminPass)
	_, page := b.do("GET", "/calls", nil)
	if !strings.Contains(page, `href="/calls/c1/invite#invite"`) || strings.Contains(page, `href="/calls/c2/invite`) {
		t.Fatalf("the connected call links to its invite panel, the one in the ivr does not:\n%s", page)
	}
	resp, page := b.do("GET", "/calls/c1/invite", nil)
	for _, want := range []string{`id="invite"`, `value="&#43;16505550150"`, `id="invite-pin" class="token" readonly value="048213"`,
		`data-copy="#invite-pin" hidden`, `action="/calls/c1/sms#invite"`,
		`>Alice invites you to join a call. Dial &#43;16505550150 and enter PIN 048213 followed by #.</textarea>`,
		`id="sms-pin-reminder"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the invite panel lacks %s", want)
		}
	}
	if resp.StatusCode != http.StatusOK || t.Failed() {
		t.Fatalf("GET /calls/c1/invite: %d\n%s", resp.StatusCode, page)
	}
	tok := formToken(t, page)
	if resp, _ := b.do("POST", "/calls/c1/sms", url.Values{"number": {"+16505550177"}, "text": {"hi"}}); resp.StatusCode != http.StatusForbidden || len(sent) != 0 {
		t.Errorf("without the CSRF token: %d, %d sent; want 403 and none", resp.StatusCode, len(sent))
	}
	if resp, page := b.do("POST", "/calls/c1/sms", url.Values{"number": {""}, "text": {"hi"}, CSRFField: {tok}}); resp.StatusCode != http.StatusBadRequest ||
		!strings.Contains(page, `id="sms-error"`) || len(sent) != 0 {
		t.Errorf("no number: %d, %d sent; want 400 and none", resp.StatusCode, len(sent))
	}
	resp, page = b.do("POST", "/calls/c1/sms", url.Values{"number": {" +16505550177 "}, "text": {"Join us:\r\n  dial +16505550150\r\n\r\nPIN 048213#"}, CSRFField: {tok}})
	if resp.StatusCode != http.StatusOK || len(sent) != 1 || sent[0] != (smsCall{"c1", "+16505550177", "Join us: dial +16505550150 PIN 048213#"}) {
		t.Fatalf("send: %d, %+v", resp.StatusCode, sent)
	}
	if !strings.Contains(page, "SMS sent to &#43;16505550177 through trunk t1 (SIP 202).") {
		t.Errorf("no notice of the sms:\n%s", page)
	}
	resp, page = b.do("POST", "/calls/c1/sms", url.Values{"number": {"+16505550404"}, "text": {"hi"}, CSRFField: {tok}})
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(page, "Not sent: the SMS was not accepted: trunk t1 answered 404 Not Found") ||
		!strings.Contains(page, `value="&#43;16505550404"`) {
		t.Errorf("refused by the sbc: %d\n%s", resp.StatusCode, page)
	}
	resp, page = b.do("GET", "/calls/c9/invite", nil)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(page, "No invite information: no such call") {
		t.Errorf("an unknown call: %d\n%s", resp.StatusCode, page)
	}
}

// A viewer sees no PIN and sends nothing.
func TestViewersCannotInvite(t *testing.T) {
	var sent []smsCall
	f := inviteFixture(t, &sent)
	f.admins = []account.Admin{{Username: "viewer", Role: account.RoleViewer, Bcrypt: hash(t, "viewer-password")}}
	b := f.browser("192.0.2.1")
	b.signIn("viewer", "viewer-password")
	resp, page := b.do("GET", "/calls/c1/invite", nil)
	if resp.StatusCode != http.StatusForbidden || strings.Contains(page, "048213") {
		t.Errorf("a viewer's invite panel: %d\n%s", resp.StatusCode, page)
	}
	_, page = b.do("GET", "/calls", nil)
	if resp, _ := b.do("POST", "/calls/c1/sms", url.Values{"number": {"+16505550177"}, CSRFField: {formToken(t, page)}}); resp.StatusCode != http.StatusForbidden || len(sent) != 0 {
		t.Errorf("a viewer's sms: %d, %d sent", resp.StatusCode, len(sent))
	}
}

func TestOneLine(t *testing.T) {
	for in, want := range map[string]string{
		"plain":               "plain",
		"a\nb":                "a b",
		"a \r\n\r\n  b\n":     "a b",
		"\n\nonly\n":          "only",
		"tabs\tstay":          "tabs\tstay",
		"dial +1650\r\nPIN 1": "dial +1650 PIN 1",
	} {
		if got := oneLine(in); got != want {
			t.Errorf("oneLine(%q) = %q, want %q", in, got, want)
		}
	}
}
