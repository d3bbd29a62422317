package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/cluster"
	"github.com/outpost-voice/outpost/appliance/store"
)

// stubCluster is a node that is not the leader and believes leader leads
// ("": no leader known).
type stubCluster struct{ leader string }

func (stubCluster) Apply(context.Context, []byte) (cluster.ApplyResult, error) {
	return cluster.ApplyResult{}, cluster.ErrNotLeader
}

func (stubCluster) ApplyBatched(context.Context, []byte) (cluster.ApplyResult, error) {
	return cluster.ApplyResult{}, cluster.ErrNotLeader
}
func (stubCluster) IsLeader() bool                     { return false }
func (s stubCluster) Leader() (string, string)         { return s.leader, "" }
func (s stubCluster) HasQuorum() bool                  { return s.leader != "" }
func (stubCluster) Members() ([]cluster.Member, error) { return nil, nil }
func (stubCluster) AddVoter(string, string) error      { return cluster.ErrNotLeader }
func (stubCluster) RemoveServer(string) error          { return cluster.ErrNotLeader }

// startServer serves the API of a node in s's situation, reading r: it
// is never ready and its call handler panics.
func (s stubCluster) startServer(t *testing.T, r *store.Reader) string {
	t.Helper()
	srv := httptest.NewServer(New(Deps{
		NodeID: "n2", Site: "hq", AdminToken: token, Cluster: s, Reader: r,
		Healthy:  func(string) bool { return false },
		Ready:    func() error { return errors.New("no raft leader known") },
		Calls:    func() any { panic("a bug in the call handler") },
		Registry: prometheus.NewRegistry(), Log: slog.New(slog.DiscardHandler),
	}).Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// call sends one request and returns the answer with its body read.
func call(t *testing.T, method, url, tok string, header http.Header, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, data
}

// errorBody checks that data is the API's error body: a JSON object with
// exactly the keys error (a non-empty line) and details (a list, never
// null, of objects with a message and maybe a path), and returns the
// details.
func errorBody(t *testing.T, resp *http.Response, data []byte) []ErrorDetail {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(data, &keys); err != nil {
		t.Fatalf("body %q: %v", data, err)
	}
	if got := slices.Sorted(maps.Keys(keys)); !slices.Equal(got, []string{"details", "error"}) {
		t.Errorf("body %s: keys %q, want exactly error and details", data, got)
	}
	var msg string
	if err := json.Unmarshal(keys["error"], &msg); err != nil || msg == "" || strings.ContainsAny(msg, "\r\n") {
		t.Errorf("body %s: error is not a non-empty line", data)
	}
	if !bytes.HasPrefix(keys["details"], []byte("[")) {
		t.Fatalf("body %s: details is not a list", data)
	}
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal(keys["details"], &raw); err != nil {
		t.Fatalf("body %s: details: %v", data, err)
	}
	out := make([]ErrorDetail, 0, len(raw))
	for i, d := range raw {
		var v ErrorDetail
		for k, r := range d {
			var s string
			if err := json.Unmarshal(r, &s); err != nil || s == "" {
				t.Errorf("body %s: details[%d].%s is not a non-empty string", data, i, k)
			}
			switch k {
			case "message":
				v.Message = s
			case "path":
				v.Path = s
			default:
				t.Errorf("body %s: details[%d] has %q, want only path and message", data, i, k)
			}
		}
		if v.Message == "" {
			t.Errorf("body %s: details[%d] has no message", data, i)
		}
		out = append(out, v)
	}
	return out
}

// Every error the node's API answers, whichever handler or middleware
// refuses, has the body {"error", "details"} and the right status; the
// details of a refused snapshot are its validation problems, every one.
func TestErrorBodies(t *testing.T) {
	n := startNode(t, "n1", true)
	if _, err := n.api.ApplySnapshot(t.Context(), demo(t, 1)); err != nil {
		t.Fatal(err)
	}
	// n9 leads as far as the follower knows, at an address nothing
	// listens on.
	if err := n.api.Announce(t.Context(), store.Member{ID: "n9", RaftAddr: "127.0.0.1:1", HTTPAddr: closedAddr(t), Site: "hq"}); err != nil {
		t.Fatal(err)
	}
	follower := stubCluster{leader: "n9"}.startServer(t, n.st.Reader())
	cutOff := stubCluster{}.startServer(t, n.st.Reader())

	invalid := bytes.Replace(demo(t, 2), []byte(`"site": "branch"`), []byte(`"site": "nowhere"`), 1)
	invalid = bytes.Replace(invalid, []byte(`"extension": "1002"`), []byte(`"extension": "1001"`), 1)
	snap, err := account.DecodeBytes(invalid)
	if err != nil {
		t.Fatal(err)
	}
	var ve *account.ValidationError
	if err := account.Validate(snap, 1); !errors.As(err, &ve) || len(ve.Problems) < 2 {
		t.Fatalf("the invalid snapshot should have two problems or more: %v", err)
	}
	problems := problemDetails(ve.Problems)

	none := func(t *testing.T, ds []ErrorDetail) {
		if len(ds) != 0 {
			t.Errorf("details %v, want none", ds)
		}
	}
	exactly := func(want []ErrorDetail) func(*testing.T, []ErrorDetail) {
		return func(t *testing.T, ds []ErrorDetail) {
			if !slices.Equal(ds, want) {
				t.Errorf("details %v, want %v", ds, want)
			}
		}
	}
	atPaths := func(want ...string) func(*testing.T, []ErrorDetail) {
		return func(t *testing.T, ds []ErrorDetail) {
			var got []string
			for _, d := range ds {
				got = append(got, d.Path)
			}
			if !slices.Equal(got, want) {
				t.Errorf("details %v, want one at each of %q", ds, want)
			}
		}
	}
	override := "/api/v1/sdgs/sdg-frontdesk/override"
	carol := []byte(`{"type":"user","id":"u-carol"}`)
	cases := []struct {
		name         string
		base         string // n.srv.URL when empty
		method, path string
		tok          string
		header       http.Header
		body         []byte
		status       int
		details      func(*testing.T, []ErrorDetail)
		wantHeader   map[string]string
	}{
		{name: "no token", method: "GET", path: "/api/v1/snapshot", status: http.StatusUnauthorized, details: none,
			wantHeader: map[string]string{"WWW-Authenticate": `Bearer realm="outpost"`}},
		{name: "wrong token", method: "POST", path: "/api/v1/snapshot", tok: "wrong", body: demo(t, 2),
			status: http.StatusUnauthorized, details: none, wantHeader: map[string]string{"WWW-Authenticate": `Bearer realm="outpost"`}},
		{name: "malformed snapshot", method: "POST", path: "/api/v1/snapshot", tok: token, body: []byte(`{"revision": 2,`),
			status: http.StatusBadRequest, details: none},
		{name: "invalid snapshot", method: "POST", path: "/api/v1/snapshot", tok: token, body: invalid,
			status: http.StatusBadRequest, details: exactly(problems)},
		{name: "stale snapshot", method: "POST", path: "/api/v1/snapshot", tok: token, body: demo(t, 1),
			status: http.StatusBadRequest, details: atPaths("revision")},
		{name: "command too large", method: "POST", path: "/api/v1/cluster/apply", tok: token, body: bytes.Repeat([]byte("x"), 8<<20+1),
			status: http.StatusRequestEntityTooLarge, details: none},
		{name: "malformed command", method: "POST", path: "/api/v1/cluster/apply", tok: token, body: []byte("nonsense"),
			status: http.StatusBadRequest, details: none},
		{name: "join without raft_addr", method: "POST", path: "/api/v1/cluster/join", tok: token, body: []byte(`{"id":"x"}`),
			status: http.StatusBadRequest, details: none},
		{name: "join with bad JSON", method: "POST", path: "/api/v1/cluster/join", tok: token, body: []byte(`{"id":`),
			status: http.StatusBadRequest, details: none},
		{name: "leave a stranger", method: "POST", path: "/api/v1/cluster/leave", tok: token, body: []byte(`{"id":"nobody"}`),
			status: http.StatusNotFound, details: none},
		{name: "unknown mode", method: "POST", path: "/api/v1/mode", tok: token, body: []byte(`{"mode":"panic"}`),
			status: http.StatusBadRequest, details: none},
		{name: "journal limit", method: "GET", path: "/api/v1/journal?limit=0", tok: token,
			status: http.StatusBadRequest, details: none},
		{name: "journal since", method: "GET", path: "/api/v1/journal?since=yesterday", tok: token,
			status: http.StatusBadRequest, details: none},
		{name: "long binding query", method: "GET", path: "/api/v1/bindings?q=" + strings.Repeat("x", maxBindingQuery+1), tok: token,
			status: http.StatusBadRequest, details: none},
		{name: "override an unknown SDG", method: "PUT", path: "/api/v1/sdgs/sdg-nope/override", tok: token, body: carol,
			status: http.StatusNotFound, details: none},
		{name: "clear an unknown SDG", method: "DELETE", path: "/api/v1/sdgs/sdg-nope/override", tok: token,
			status: http.StatusNotFound, details: none},
		{name: "override to an unknown user", method: "PUT", path: override, tok: token, body: []byte(`{"type":"user","id":"u-zed"}`),
			status: http.StatusBadRequest, details: func(t *testing.T, ds []ErrorDetail) {
				if len(ds) == 0 || ds[0].Path == "" {
					t.Errorf("details %v, want the route's problems with their paths", ds)
				}
			}},
		{name: "override by a long name", method: "PUT", path: override, tok: token, body: carol,
			header: http.Header{OverrideByHeader: {strings.Repeat("a", 65)}}, status: http.StatusBadRequest, details: none},
		{name: "no such endpoint", method: "GET", path: "/api/v1/nope", tok: token, status: http.StatusNotFound, details: none},
		{name: "not paired", method: "POST", path: "/api/v1/cloud/push", body: []byte(`{"revision":2}`),
			status: http.StatusNotFound, details: none},
		{name: "method not allowed", method: "DELETE", path: "/api/v1/snapshot", tok: token,
			status: http.StatusMethodNotAllowed, details: none, wantHeader: map[string]string{"Allow": "GET, POST"}},
		{name: "no leader", base: cutOff, method: "POST", path: "/api/v1/mode", tok: token, body: []byte(`{"mode":"normal"}`),
			status: http.StatusServiceUnavailable, details: none},
		{name: "forwarded twice", base: follower, method: "POST", path: "/api/v1/mode", tok: token, body: []byte(`{"mode":"normal"}`),
			header: http.Header{forwardedHeader: {"n3"}}, status: http.StatusServiceUnavailable, details: none},
		{name: "leader unreachable", base: follower, method: "POST", path: "/api/v1/mode", tok: token, body: []byte(`{"mode":"normal"}`),
			status: http.StatusBadGateway, details: none},
		{name: "not ready", base: cutOff, method: "GET", path: "/readyz", status: http.StatusServiceUnavailable, details: none},
		{name: "a handler's panic", base: cutOff, method: "GET", path: "/api/v1/calls", tok: token,
			status: http.StatusInternalServerError, details: none},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := tc.base
			if base == "" {
				base = n.srv.URL
			}
			resp, data := call(t, tc.method, base+tc.path, tc.tok, tc.header, tc.body)
			if resp.StatusCode != tc.status {
				t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, resp.StatusCode, data, tc.status)
			}
			for k, v := range tc.wantHeader {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			tc.details(t, errorBody(t, resp, data))
		})
	}

	// The CLI's client reads the details and prints every one.
	_, err = n.api.ApplySnapshot(t.Context(), invalid)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest || !slices.Equal(apiErr.Details, problems) {
		t.Fatalf("the client's error %#v, want 400 with details %v", err, problems)
	}
	for _, p := range ve.Problems {
		if !strings.Contains(err.Error(), p.String()) {
			t.Errorf("the client's error %q lacks %q", err, p)
		}
	}

	// Outside the API a missing page is gin's plain 404.
	if resp, data := call(t, "GET", n.srv.URL+"/nope", "", nil, nil); resp.StatusCode != http.StatusNotFound || json.Valid(data) {
		t.Errorf("GET /nope: %d %q, want a plain-text 404", resp.StatusCode, data)
	}
}

// The client reads details, and the problems a node of the previous
// release answers instead, or falls back to the body's text.
func TestClientReadsErrorBodies(t *testing.T) {
	cases := map[string]struct {
		body        string
		wantMessage string
		wantDetails []ErrorDetail
	}{
		"details": {`{"error":"snapshot refused: nothing changed","details":[{"path":"users[0].site","message":"no such site"},{"message":"a conflict"}]}`,
			"snapshot refused: nothing changed", []ErrorDetail{{Path: "users[0].site", Message: "no such site"}, {Message: "a conflict"}}},
		"no details": {`{"error":"no snapshot applied yet","details":[]}`, "no snapshot applied yet", nil},
		"previous release": {`{"error":"snapshot refused: nothing changed","problems":[{"path":"revision","message":"stale"}]}`,
			"snapshot refused: nothing changed", []ErrorDetail{{Path: "revision", Message: "stale"}}},
		"plain text": {"404 page not found\n", "404 page not found", nil},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusBadRequest)
				io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			_, err := NewClient(srv.URL, token).Snapshot(t.Context())
			var e *APIError
			if !errors.As(err, &e) {
				t.Fatalf("error %v, want an APIError", err)
			}
			if e.Status != http.StatusBadRequest || e.Message != tc.wantMessage || !slices.Equal(e.Details, tc.wantDetails) {
				t.Errorf("got %d %q %v, want 400 %q %v", e.Status, e.Message, e.Details, tc.wantMessage, tc.wantDetails)
			}
			for _, d := range tc.wantDetails {
				if !strings.Contains(err.Error(), d.String()) {
					t.Errorf("%q lacks %q", err, d)
				}
			}
		})
	}
}
