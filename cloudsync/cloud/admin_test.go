package cloud

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

func TestAdminTokenRequired(t *testing.T) {
	h := newHarness(t, Options{})
	for _, hdr := range []http.Header{
		nil,
		{"Authorization": {"Bearer wrong"}},
		{"Authorization": {"Bearer " + testToken + "x"}},
		{"Authorization": {testToken}},
	} {
		for _, r := range [][2]string{
			{http.MethodGet, "/v1/admin/snapshot"}, {http.MethodPut, "/v1/admin/snapshot"},
			{http.MethodPost, "/v1/admin/pairing-codes"}, {http.MethodGet, "/v1/admin/journal?appliance=x"},
			{http.MethodGet, "/v1/admin/appliances"}, {http.MethodPut, "/v1/admin/users/u-x"},
			{http.MethodDelete, "/v1/admin/trunks/t"},
		} {
			resp, body := h.do(r[0], r[1], []byte(`{}`), hdr)
			wantStatus(t, r[0]+" "+r[1], resp, body, http.StatusUnauthorized)
			errorBody(t, body)
			if resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s: 401 without WWW-Authenticate", r[0], r[1])
			}
		}
	}
	// A server without a token refuses every admin request.
	h.srv.cfg.AdminToken = ""
	resp, body := h.do(http.MethodGet, "/v1/admin/appliances", nil, http.Header{"Authorization": {"Bearer "}})
	wantStatus(t, "no token configured", resp, body, http.StatusUnauthorized)
}

func TestAdminSnapshotRevisions(t *testing.T) {
	h := newHarness(t, Options{})
	resp, body := h.admin(http.MethodGet, "/v1/admin/snapshot", nil)
	wantStatus(t, "GET before any", resp, body, http.StatusNotFound)

	s := smallAccount(t, 1)
	s.Revision = 77 // ignored: the server assigns the next revision
	for want := int64(1); want <= 3; want++ {
		if rev := h.putSnapshot(s); rev != want {
			t.Fatalf("PUT snapshot: revision %d, want %d", rev, want)
		}
	}
	resp, body = h.admin(http.MethodGet, "/v1/admin/snapshot", nil)
	wantStatus(t, "GET snapshot", resp, body, http.StatusOK)
	got, err := account.DecodeBytes(body)
	if err != nil {
		t.Fatalf("GET snapshot: %v", err)
	}
	if got.Revision != 3 || resp.Header.Get(protocol.HeaderRevision) != "3" || resp.Header.Get("ETag") != `"r3"` {
		t.Errorf("GET snapshot: revision %d, headers %v", got.Revision, resp.Header)
	}
	if len(got.Users) != len(s.Users) {
		t.Errorf("GET snapshot: %d users, want %d", len(got.Users), len(s.Users))
	}
}

func TestAdminSnapshotRefused(t *testing.T) {
	h := newHarness(t, Options{})
	s := smallAccount(t, 1)
	h.putSnapshot(s)

	bad := smallAccount(t, 1)
	bad.Users[1].Extension = bad.Users[0].Extension
	bad.Trunks[0].Transport = "carrier-pigeon"
	bad.Account.SIPRealm = ""
	for _, tc := range []struct {
		name      string
		body      []byte
		wantPaths []string
	}{
		{"invalid", encode(t, bad), []string{"users[1].extension", "trunks[0].transport", "account.sip_realm"}},
		{"malformed", []byte(`{"revision": 1, "users": [`), []string{""}},
		{"unknown field", []byte(`{"revision": 1, "colour": "blue"}`), []string{""}},
		{"empty", []byte(``), []string{""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := h.admin(http.MethodPut, "/v1/admin/snapshot", tc.body)
			wantStatus(t, "PUT", resp, body, http.StatusBadRequest)
			e := errorBody(t, body)
			for _, p := range tc.wantPaths {
				if !slices.ContainsFunc(e.Problems, func(q protocol.Problem) bool { return q.Path == p }) {
					t.Errorf("problems %+v do not name %q", e.Problems, p)
				}
			}
			if rev, _ := h.store.Current(); rev != 1 {
				t.Errorf("revision %d after a refused snapshot, want 1", rev)
			}
		})
	}
}

// routedUser is a user some SDG's route names directly.
func routedUser(t *testing.T, s *account.Snapshot) string {
	t.Helper()
	for _, g := range s.SDGs {
		switch r := g.Route; {
		case r.Type == account.RouteUser:
			return r.ID
		case r.Type == account.RouteGroup && len(r.Members) > 0:
			return r.Members[0]
		}
	}
	t.Fatal("no SDG routes to a user")
	return ""
}

// userOf decodes a snapshot's user by id.
func userOf(t *testing.T, h *harness, id string) (account.User, int) {
	t.Helper()
	_, d := h.store.Current()
	s, err := account.DecodeBytes(d)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(s.Users, func(u account.User) bool { return u.ID == id })
	if i < 0 {
		return account.User{}, -1
	}
	return s.Users[i], i
}

func TestAdminObjects(t *testing.T) {
	h := newHarness(t, Options{})
	resp, body := h.admin(http.MethodPut, "/v1/admin/users/u-x", account.User{})
	wantStatus(t, "PUT user before any snapshot", resp, body, http.StatusConflict)

	s := smallAccount(t, 2)
	h.putSnapshot(s)
	nUsers := len(s.Users)

	// A new user is appended, in a new revision of exactly one op.
	u := s.Users[0]
	u.ID, u.Name, u.Email, u.Extension, u.Numbers = "u-zed", "Zed", "zed@acme.example", "7777", []string{}
	u.SIP.Username = "zed"
	resp, body = h.admin(http.MethodPut, "/v1/admin/users/u-zed", u)
	wantStatus(t, "PUT new user", resp, body, http.StatusOK)
	var r RevisionResponse
	decode(t, body, &r)
	if r.Revision != 2 {
		t.Errorf("revision %d, want 2", r.Revision)
	}
	if got, i := userOf(t, h, "u-zed"); i != nUsers || got.Name != "Zed" {
		t.Errorf("new user at %d: %+v", i, got)
	}
	ch, err := h.store.Changes(t.Context(), 1)
	if err != nil || len(ch.Revisions) != 1 || len(ch.Revisions[0].Ops) != 1 ||
		ch.Revisions[0].Ops[0].Op != protocol.OpPut || ch.Revisions[0].Ops[0].ID != "u-zed" {
		t.Errorf("changes of the PUT: %+v, %v", ch, err)
	}

	// A changed user is replaced in place; the id may be left out.
	u.Name, u.ID = "Zed Zedson", ""
	resp, body = h.admin(http.MethodPut, "/v1/admin/users/u-zed", u)
	wantStatus(t, "PUT changed user", resp, body, http.StatusOK)
	if got, i := userOf(t, h, "u-zed"); i != nUsers || got.Name != "Zed Zedson" || got.ID != "u-zed" {
		t.Errorf("changed user at %d: %+v", i, got)
	}
	resp, body = h.admin(http.MethodGet, "/v1/admin/users/u-zed", nil)
	wantStatus(t, "GET user", resp, body, http.StatusOK)
	if !strings.Contains(string(body), `"Zed Zedson"`) {
		t.Errorf("GET user: %s", body)
	}

	// Refused edits change nothing.
	clash := u
	clash.Extension = s.Users[1].Extension
	for _, tc := range []struct {
		name, method, path string
		body               any
		status             int
		problem            string
	}{
		{"extension clash", http.MethodPut, "/v1/admin/users/u-zed", clash, http.StatusBadRequest, ".extension"},
		{"id mismatch", http.MethodPut, "/v1/admin/users/u-zed", account.User{ID: "u-other"}, http.StatusBadRequest, "id"},
		{"unknown field", http.MethodPut, "/v1/admin/users/u-zed", []byte(`{"id":"u-zed","shoe_size":9}`), http.StatusBadRequest, "users/u-zed"},
		{"not an object", http.MethodPut, "/v1/admin/trunks/t1", []byte(`[1]`), http.StatusBadRequest, "trunks/t1"},
		{"dangling route", http.MethodDelete, "/v1/admin/users/" + routedUser(t, s), nil, http.StatusBadRequest, ".route"},
		{"unknown user", http.MethodDelete, "/v1/admin/users/u-nobody", nil, http.StatusNotFound, ""},
		{"unknown number", http.MethodDelete, "/v1/admin/numbers/+19995550000", nil, http.StatusNotFound, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := h.admin(tc.method, tc.path, tc.body)
			wantStatus(t, tc.method+" "+tc.path, resp, body, tc.status)
			e := errorBody(t, body)
			if tc.problem != "" && !slices.ContainsFunc(e.Problems, func(p protocol.Problem) bool { return strings.Contains(p.Path, tc.problem) }) {
				t.Errorf("problems %+v do not name %q", e.Problems, tc.problem)
			}
			if rev, _ := h.store.Current(); rev != 3 {
				t.Errorf("revision %d after a refused edit, want 3", rev)
			}
		})
	}

	// Numbers are keyed by number, trunks by id; deleting works.
	n := s.Numbers[len(s.Numbers)-1]
	resp, body = h.admin(http.MethodDelete, "/v1/admin/numbers/"+n.Number, nil)
	wantStatus(t, "DELETE number", resp, body, http.StatusOK)
	tr := s.Trunks[0]
	tr.Weight = 5
	resp, body = h.admin(http.MethodPut, "/v1/admin/trunks/"+tr.ID, tr)
	wantStatus(t, "PUT trunk", resp, body, http.StatusOK)
	resp, body = h.admin(http.MethodDelete, "/v1/admin/users/u-zed", nil)
	wantStatus(t, "DELETE user", resp, body, http.StatusOK)
	if _, i := userOf(t, h, "u-zed"); i >= 0 {
		t.Error("deleted user still there")
	}
	resp, body = h.admin(http.MethodGet, "/v1/admin/users/u-zed", nil)
	wantStatus(t, "GET deleted user", resp, body, http.StatusNotFound)
	ch, err = h.store.Changes(t.Context(), 3)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range ch.Revisions {
		for _, op := range r.Ops {
			got = append(got, op.Op+" "+op.Kind+" "+op.ID)
		}
	}
	want := []string{"delete numbers " + n.Number, "put trunks " + tr.ID, "delete users u-zed"}
	if !slices.Equal(got, want) || ch.To != 6 {
		t.Errorf("changes from 3 to %d: %q, want %q", ch.To, got, want)
	}
}

// A whole snapshot PUT keeps the objects in the order the ops give them,
// so fetching the snapshot and applying the changes list them alike.
func TestAdminSnapshotKeepsOrder(t *testing.T) {
	h := newHarness(t, Options{})
	s := smallAccount(t, 3)
	h.putSnapshot(s)
	re := smallAccount(t, 3)
	slices.Reverse(re.Users)
	extra := re.Users[0]
	extra.ID, extra.Extension, extra.SIP.Username, extra.Numbers = "u-new", "7001", "newbie", []string{}
	re.Users = slices.Insert(re.Users, 1, extra)
	h.putSnapshot(re)
	_, d := h.store.Current()
	got, err := account.DecodeBytes(d)
	if err != nil {
		t.Fatal(err)
	}
	var ids, want []string
	for _, u := range got.Users {
		ids = append(ids, u.ID)
	}
	for _, u := range s.Users {
		want = append(want, u.ID)
	}
	want = append(want, "u-new")
	if !slices.Equal(ids, want) {
		t.Errorf("users in order %q, want the old order then the new one: %q", ids, want)
	}
	ch, err := h.store.Changes(t.Context(), 1)
	if err != nil || len(ch.Revisions[0].Ops) != 1 || ch.Revisions[0].Ops[0].ID != "u-new" {
		t.Errorf("a reordered snapshot gave %+v, %v; want only the new user", ch, err)
	}
}

func TestAdminPairingCodesAndAppliances(t *testing.T) {
	h := newHarness(t, Options{})
	for _, name := range []string{"", "-x", "has space", strings.Repeat("a", 65)} {
		resp, body := h.admin(http.MethodPost, "/v1/admin/pairing-codes", PairingCodeRequest{Appliance: name})
		wantStatus(t, "pairing code for "+name, resp, body, http.StatusBadRequest)
	}
	resp, body := h.admin(http.MethodPost, "/v1/admin/pairing-codes", []byte(`nope`))
	wantStatus(t, "pairing code, bad body", resp, body, http.StatusBadRequest)

	resp, body = h.admin(http.MethodGet, "/v1/admin/appliances", nil)
	wantStatus(t, "appliances", resp, body, http.StatusOK)
	if string(body) != `{"appliances":[]}` {
		t.Errorf("no appliances: %s", body)
	}
	c := h.pair("branch-7")
	resp, body = h.sync(c, http.MethodPost, protocol.PathHello,
		protocol.Hello{NodeID: "node-2", Revision: 0, PushURL: "http://10.0.0.5:8080", Version: "v1"}, nil)
	wantStatus(t, "hello", resp, body, http.StatusOK)
	resp, body = h.sync(c, http.MethodPost, protocol.PathAck, protocol.Ack{Revision: 4, Status: protocol.AckRejected,
		Problems: []protocol.Problem{{Path: "users[3].extension", Message: "taken"}}, NodeID: "node-2"}, nil)
	wantStatus(t, "ack", resp, body, http.StatusNoContent)

	resp, body = h.admin(http.MethodGet, "/v1/admin/appliances", nil)
	wantStatus(t, "appliances", resp, body, http.StatusOK)
	var got struct{ Appliances []Appliance }
	decode(t, body, &got)
	if len(got.Appliances) != 1 {
		t.Fatalf("appliances: %s", body)
	}
	a := got.Appliances[0]
	now := h.clock.Now()
	if a.Name != "branch-7" || a.NodeID != "node-2" || a.PushURL != "http://10.0.0.5:8080" || a.Version != "v1" ||
		a.LastHelloAt == nil || !a.LastHelloAt.Equal(now) || !a.PairedAt.Equal(now) || a.HelloRevision == nil {
		t.Errorf("appliance: %s", body)
	}
	if a.LastAck == nil || a.LastAck.Revision != 4 || a.LastAck.Status != protocol.AckRejected ||
		len(a.LastAck.Problems) != 1 || a.LastAck.NodeID != "node-2" {
		t.Errorf("last ack: %s", body)
	}
}

func TestAdminJournalQuery(t *testing.T) {
	h := newHarness(t, Options{})
	resp, body := h.admin(http.MethodGet, "/v1/admin/journal", nil)
	wantStatus(t, "no appliance", resp, body, http.StatusBadRequest)
	resp, body = h.admin(http.MethodGet, "/v1/admin/journal?appliance=ghost", nil)
	wantStatus(t, "unknown appliance", resp, body, http.StatusNotFound)
	h.pair("b1")
	resp, body = h.admin(http.MethodGet, "/v1/admin/journal?appliance=b1", nil)
	wantStatus(t, "empty journal", resp, body, http.StatusOK)
	if string(body) != `{"records":[]}` {
		t.Errorf("empty journal: %s", body)
	}
}

func TestUnknownRoutesAnswerJSON(t *testing.T) {
	h := newHarness(t, Options{})
	for _, r := range [][3]string{
		{http.MethodGet, "/v1/nothing", "404"},
		{http.MethodPost, "/v1/admin/snapshot", "405"},
		{http.MethodGet, protocol.PathPair, "405"},
	} {
		resp, body := h.admin(r[0], r[1], nil)
		if got := resp.Status[:3]; got != r[2] {
			t.Errorf("%s %s: %s, want %s", r[0], r[1], resp.Status, r[2])
		}
		var e protocol.Error
		if json.Unmarshal(body, &e) != nil || e.Error == "" {
			t.Errorf("%s %s: body %q is not a JSON error", r[0], r[1], body)
		}
	}
	resp, body := h.do(http.MethodGet, "/livez", nil, nil)
	wantStatus(t, "livez", resp, body, http.StatusOK)
}
