package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outpost-voice/outpost/appliance/calls"
	"github.com/outpost-voice/outpost/invite"
)

// fakeConferences owns call c1 for u-alice.
type fakeConferences struct {
	got invite.Request
	sms calls.SMSRequest
}

func (f *fakeConferences) CallOwner(id string) (string, error) {
	if id != "c1" {
		return "", calls.ErrNoCall
	}
	return "u-alice", nil
}

func (f *fakeConferences) Invite(_ context.Context, by, id string, r invite.Request) (invite.Invitation, error) {
	if id != "c1" {
		return invite.Invitation{}, calls.ErrNoCall
	}
	if by != "u-alice" {
		return invite.Invitation{}, invite.ErrNotOwner
	}
	if r.Kind == invite.KindUser && r.User == "u-carol" {
		return invite.Invitation{}, invite.ErrDuplicate
	}
	if r.Kind == "fax" {
		return invite.Invitation{}, invite.ErrBadRequest
	}
	f.got = r
	return invite.Invitation{ID: "c1-1", Kind: r.Kind, By: by, State: invite.Pending}, nil
}

func (f *fakeConferences) CancelInvitation(_ context.Context, by, id, inv string) (invite.Invitation, error) {
	return invite.Invitation{}, invite.ErrNoInvitation
}

func (f *fakeConferences) RetryInvitation(_ context.Context, by, id, inv string) (invite.Invitation, error) {
	return invite.Invitation{}, invite.ErrNotRetryable
}

func (f *fakeConferences) owned(by, id string) error {
	if id != "c1" {
		return calls.ErrNoCall
	}
	if by != "u-alice" {
		return invite.ErrNotOwner
	}
	return nil
}

func (f *fakeConferences) InviteInfo(_ context.Context, by, id string) (calls.InviteInfo, error) {
	if err := f.owned(by, id); err != nil {
		return calls.InviteInfo{}, err
	}
	return calls.InviteInfo{DialIn: []calls.DialInNumber{{Number: "+16505550150", Site: "hq"}}, PIN: "123456",
		SMSText: calls.SMSText("Alice", "+16505550150", "123456")}, nil
}

// SendSMS: +16505550404 is refused by the SBC, +16505550429 is over the
// limit, +16505550503 has no trunk; others are accepted through t1.
func (f *fakeConferences) SendSMS(_ context.Context, by, id string, r calls.SMSRequest) (calls.SMSResult, error) {
	if err := f.owned(by, id); err != nil {
		return calls.SMSResult{}, err
	}
	number, err := calls.SMSNumber(r.Number)
	if err != nil {
		return calls.SMSResult{}, err
	}
	if r.Text != "" {
		if err := calls.CheckSMSText(r.Text); err != nil {
			return calls.SMSResult{}, err
		}
	}
	switch number {
	case "+16505550404":
		return calls.SMSResult{}, &calls.SMSError{Status: 404, Reason: "Not Found", Trunk: "t1"}
	case "+16505550429":
		return calls.SMSResult{}, calls.ErrSMSRate
	case "+16505550503":
		return calls.SMSResult{}, calls.ErrNoSMSTrunk
	}
	f.sms = r
	return calls.SMSResult{Status: 202, Trunk: "t1"}, nil
}

func (f *fakeConferences) HandOver(_ context.Context, by, id, to string) error {
	if to != "u-bob" {
		return invite.ErrNotParticipant
	}
	return nil
}

// TestInvitationEndpoints: auth, the admin acting as the owner, and the
// status of each refusal.
func TestInvitationEndpoints(t *testing.T) {
	fc := &fakeConferences{}
	srv := httptest.NewServer(New(Deps{AdminToken: "adm", Conferences: fc, Registry: prometheus.NewRegistry(),
		Log: slog.New(slog.DiscardHandler)}).Handler())
	defer srv.Close()
	call := func(method, path, tok, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, bytes.NewBufferString(body))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(res.Body).Decode(&m)
		return res.StatusCode, m
	}
	for _, tc := range []struct {
		name, method, path, tok, body string
		want                          int
	}{
		{"no token", "POST", "/api/v1/calls/c1/invitations", "", `{"type":"user","user":"u-bob"}`, 401},
		{"a bad token", "POST", "/api/v1/calls/c1/invitations", "ow1.nope", `{"type":"user","user":"u-bob"}`, 401},
		{"admin as owner", "POST", "/api/v1/calls/c1/invitations", "adm", `{"type":"callout","name":"Eve","number":"+16032331333-156"}`, 201},
		{"duplicate", "POST", "/api/v1/calls/c1/invitations", "adm", `{"type":"user","user":"u-carol"}`, 409},
		{"bad type", "POST", "/api/v1/calls/c1/invitations", "adm", `{"type":"fax"}`, 400},
		{"unknown field", "POST", "/api/v1/calls/c1/invitations", "adm", `{"type":"user","who":"x"}`, 400},
		{"no such call", "POST", "/api/v1/calls/c9/invitations", "adm", `{"type":"user","user":"u-bob"}`, 404},
		{"cancel unknown", "DELETE", "/api/v1/calls/c1/invitations/c1-9", "adm", ``, 404},
		{"retry active", "POST", "/api/v1/calls/c1/invitations/c1-1/retry", "adm", ``, 409},
		{"owner to someone not in the call", "POST", "/api/v1/calls/c1/owner", "adm", `{"user":"u-dan"}`, 400},
		{"owner", "POST", "/api/v1/calls/c1/owner", "adm", `{"user":"u-bob"}`, 200},
		{"owner without user", "POST", "/api/v1/calls/c1/owner", "adm", `{}`, 400},
	} {
		code, body := call(tc.method, tc.path, tc.tok, tc.body)
		if code != tc.want {
			t.Errorf("%s: HTTP %d %v, want %d", tc.name, code, body, tc.want)
		}
		if code >= 400 {
			if _, ok := body["details"].([]any); !ok || body["error"] == "" {
				t.Errorf("%s: error body %v is not {error, details[]}", tc.name, body)
			}
		}
	}
	if fc.got.Kind != invite.KindCallout || fc.got.Number != "+16032331333-156" || fc.got.Name != "Eve" {
		t.Errorf("the call-out reached the engine as %+v", fc.got)
	}
}

// Each error of the call engine has its status: 403 for anyone but the
// owner (a widget token of another user), 404, 400, 409, 429, 502, 503.
func TestCallStatus(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{invite.ErrNotOwner, 403},
		{calls.ErrNoCall, 404},
		{fmt.Errorf("%w: x", invite.ErrBadNumber), 400},
		{fmt.Errorf("%w: x", calls.ErrBadSMSText), 400},
		{calls.ErrNoOwner, 409},
		{invite.ErrCallEnded, 409},
		{calls.ErrSMSRate, 429},
		{&calls.SMSError{Status: 486, Trunk: "t1"}, 502},
		{calls.ErrNoSMSTrunk, 503},
		{calls.ErrNoMixer, 503},
		{errors.New("disk on fire"), 500},
	} {
		if got := callStatus(tc.err); got != tc.want {
			t.Errorf("callStatus(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

// TestInviteInfoAndSMSEndpoints: GET invite-info and POST sms take the
// admin token (acting as the owner); their refusals have the API's error
// body, the SMS's with the SIP status on a 502.
func TestInviteInfoAndSMSEndpoints(t *testing.T) {
	fc := &fakeConferences{}
	srv := httptest.NewServer(New(Deps{AdminToken: "adm", Conferences: fc, Registry: prometheus.NewRegistry(),
		Log: slog.New(slog.DiscardHandler)}).Handler())
	defer srv.Close()
	call := func(method, path, tok, body string) (int, http.Header, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, bytes.NewBufferString(body))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(res.Body).Decode(&m)
		return res.StatusCode, res.Header, m
	}
	code, h, info := call("GET", "/api/v1/calls/c1/invite-info", "adm", "")
	if code != 200 || info["pin"] != "123456" || h.Get("Cache-Control") != "no-store" ||
		info["sms_text"] != "Alice invites you to join a call. Dial +16505550150 and enter PIN 123456 followed by #." {
		t.Fatalf("invite-info: %d %v %v", code, h, info)
	}
	if d, _ := info["dial_in"].([]any); len(d) != 1 || d[0].(map[string]any)["number"] != "+16505550150" || d[0].(map[string]any)["site"] != "hq" {
		t.Errorf("dial_in %v", info["dial_in"])
	}
	for _, tc := range []struct {
		name, method, path, tok, body string
		want                          int
		path0                         string // the first detail's path
	}{
		{"invite-info without a token", "GET", "/api/v1/calls/c1/invite-info", "", "", 401, ""},
		{"invite-info of no such call", "GET", "/api/v1/calls/c9/invite-info", "adm", "", 404, ""},
		{"sms without a token", "POST", "/api/v1/calls/c1/sms", "", `{"number":"+16505550177"}`, 401, ""},
		{"sms", "POST", "/api/v1/calls/c1/sms", "adm", `{"number":"+16505550177"}`, 202, ""},
		{"sms of no such call", "POST", "/api/v1/calls/c9/sms", "adm", `{"number":"+16505550177"}`, 404, ""},
		{"sms without a number", "POST", "/api/v1/calls/c1/sms", "adm", `{}`, 400, "number"},
		{"sms to a number without +", "POST", "/api/v1/calls/c1/sms", "adm", `{"number":"6505550177"}`, 400, "number"},
		{"sms with extension digits", "POST", "/api/v1/calls/c1/sms", "adm", `{"number":"+16505550177-12"}`, 400, "number"},
		{"sms with a line break", "POST", "/api/v1/calls/c1/sms", "adm", `{"number":"+16505550177","text":"a\nb"}`, 400, "text"},
		{"sms too long", "POST", "/api/v1/calls/c1/sms", "adm", `{"number":"+16505550177","text":"` + strings.Repeat("x", 481) + `"}`, 400, "text"},
		{"sms with an unknown field", "POST", "/api/v1/calls/c1/sms", "adm", `{"number":"+16505550177","to":"x"}`, 400, ""},
		{"sms refused by the sbc", "POST", "/api/v1/calls/c1/sms", "adm", `{"number":"+16505550404"}`, 502, ""},
		{"sms over the limit", "POST", "/api/v1/calls/c1/sms", "adm", `{"number":"+16505550429"}`, 429, ""},
		{"sms without a trunk", "POST", "/api/v1/calls/c1/sms", "adm", `{"number":"+16505550503"}`, 503, ""},
	} {
		code, h, body := call(tc.method, tc.path, tc.tok, tc.body)
		if code != tc.want {
			t.Errorf("%s: HTTP %d %v, want %d", tc.name, code, body, tc.want)
			continue
		}
		switch {
		case code == 202:
			if body["status"] != float64(202) || body["trunk"] != "t1" {
				t.Errorf("%s: %v, want status 202, trunk t1", tc.name, body)
			}
			continue
		case code == 502:
			if body["status"] != float64(404) || body["trunk"] != "t1" {
				t.Errorf("%s: %v, want the SIP status 404 and trunk t1", tc.name, body)
			}
		case code == 429:
			if h.Get("Retry-After") == "" {
				t.Errorf("%s: no Retry-After", tc.name)
			}
		}
		details, ok := body["details"].([]any)
		if !ok || body["error"] == "" {
			t.Errorf("%s: error body %v is not {error, details[]}", tc.name, body)
			continue
		}
		if tc.path0 != "" && (len(details) == 0 || details[0].(map[string]any)["path"] != tc.path0) {
			t.Errorf("%s: details %v, want the first about %q", tc.name, details, tc.path0)
		}
	}
	if fc.sms.Number != "+16505550177" || fc.sms.Text != "" {
		t.Errorf("the sms reached the engine as %+v", fc.sms)
	}
}
