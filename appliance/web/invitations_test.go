package web

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outpost-voice/outpost/appliance/calls"
	"github.com/outpost-voice/outpost/invite"
)

// fakeConferences owns call c1 for u-alice.
type fakeConferences struct{ got invite.Request }

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
