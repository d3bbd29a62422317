package web

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/appliance/store"
)

func TestAfterRecovery(t *testing.T) {
	since := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		mode    string
		since   time.Time
		updated time.Time
		want    bool
	}{
		{"refreshed after the mode turned normal", store.ModeNormal, since, since.Add(time.Second), true},
		{"registered during the outage", store.ModeNormal, since, since.Add(-time.Second), false},
		{"at the very moment", store.ModeNormal, since, since, false},
		{"mode never set: no recovery", store.ModeNormal, time.Time{}, since, false},
		{"survivability", store.ModeSurvivability, since, since.Add(time.Second), false},
		{"recovering", store.ModeRecovering, since, since.Add(time.Second), false},
	}
	for _, tt := range tests {
		if got := afterRecovery(tt.mode, tt.since, tt.updated); got != tt.want {
			t.Errorf("%s: afterRecovery = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// GET /api/v1/bindings marks the phones that registered here after the
// cloud came back (the mode last turned normal): still on Outpost.
func TestBindingsAfterRecovery(t *testing.T) {
	n := startNode(t, "n1", true)
	if code, body := do(t, "POST", n.srv.URL+"/api/v1/snapshot", token, demo(t, 1)); code != http.StatusOK {
		t.Fatalf("apply demo: %d %v", code, body)
	}
	flags := func() map[string]any {
		t.Helper()
		code, body := do(t, "GET", n.srv.URL+"/api/v1/bindings", token, nil)
		if code != http.StatusOK {
			t.Fatalf("GET bindings: %d %v", code, body)
		}
		out := map[string]any{}
		for _, b := range asSlice(body["bindings"]) {
			m := b.(map[string]any)
			out[m["username"].(string)] = m["after_recovery"]
		}
		return out
	}
	setMode := func(mode string) {
		t.Helper()
		if code, body := do(t, "POST", n.srv.URL+"/api/v1/mode", token, []byte(`{"mode":"`+mode+`"}`)); code != http.StatusOK {
			t.Fatalf("set mode %s: %d %v", mode, code, body)
		}
	}
	put := func(username string, updated time.Time) {
		t.Helper()
		if err := n.st.PutLocalBindings([]store.Binding{{
			ID: "b-" + username, AOR: username + "@acme.example", UserID: "u-" + username, Username: username, Site: "hq",
			Contact: "sip:" + username + "@192.0.2.10:5060", CallID: "c-" + username, CSeq: 1, Transport: "udp",
			Source: "192.0.2.10:5060", Node: "n1", Expires: updated.Add(time.Hour), UpdatedAt: updated,
		}}); err != nil {
			t.Fatal(err)
		}
	}

	// Never an outage: nothing is "after recovery".
	put("alice", time.Now())
	if got := flags(); got["alice"] != false {
		t.Fatalf("before any outage: %v, want alice false", got)
	}
	setMode(store.ModeSurvivability)
	put("bob", time.Now())
	if got := flags(); got["alice"] != false || got["bob"] != false {
		t.Fatalf("during the outage: %v, want all false", got)
	}
	setMode(store.ModeNormal)
	_, since, err := n.st.Reader().Mode(context.Background())
	if err != nil || since.IsZero() {
		t.Fatalf("mode since %v, %v", since, err)
	}
	put("carol", since.Add(time.Second)) // re-registered here after the recovery
	if got := flags(); got["alice"] != false || got["bob"] != false || got["carol"] != true {
		t.Fatalf("after recovery: %v, want only carol true", got)
	}
}
