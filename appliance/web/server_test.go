package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outpost-voice/outpost/appliance/cluster"
	"github.com/outpost-voice/outpost/appliance/store"
)

const token = "test-token"

// testNode is a real in-process node: store, Raft cluster and this server.
type testNode struct {
	id  string
	c   *cluster.Cluster
	st  *store.Store
	srv *httptest.Server
	api *Client
}

func startNode(t *testing.T, id string, bootstrap bool) *testNode {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "outpost.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := cluster.Open(cluster.Config{
		NodeID: id, RaftDir: filepath.Join(dir, "raft"), Listener: ln, Bootstrap: bootstrap,
		HeartbeatTimeout: 300 * time.Millisecond, ElectionTimeout: 300 * time.Millisecond,
		SnapshotThreshold: 1024, Store: st, Log: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c.Collectors()...)
	s := New(Deps{
		NodeID: id, Site: "hq", AdminToken: token, Cluster: c, Reader: st.Reader(),
		Healthy: func(string) bool { return true },
		Ready: func() error {
			if l, _ := c.Leader(); l == "" {
				return errors.New("no raft leader known")
			}
			return nil
		},
		Registry: reg, Log: log,
	})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		srv.Close()
		_ = c.Shutdown()
		_ = st.Close()
	})
	n := &testNode{id: id, c: c, st: st, srv: srv, api: NewClient(srv.URL, token)}
	if bootstrap {
		waitFor(t, "leader", func() error {
			if !c.IsLeader() {
				return errors.New("not leader")
			}
			return nil
		})
		n.announce(t, n)
	}
	return n
}

// announce records m's HTTP address through leader l.
func (l *testNode) announce(t *testing.T, m *testNode) {
	t.Helper()
	u, _ := url.Parse(m.srv.URL)
	if err := l.api.Announce(t.Context(), store.Member{ID: m.id, RaftAddr: m.c.RaftAddr(), HTTPAddr: u.Host, Site: "hq"}); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func demo(t *testing.T, rev int) []byte {
	t.Helper()
	data, err := os.ReadFile("../../../shared/contract/demo-snapshot.json")
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Replace(data, []byte(`"revision": 1,`), fmt.Appendf(nil, `"revision": %d,`, rev), 1)
}

func do(t *testing.T, method, url, tok string, body []byte) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	return resp.StatusCode, m
}

func TestAuthOnAdminEndpoints(t *testing.T) {
	n := startNode(t, "n1", true)
	endpoints := []struct{ method, path string }{
		{"GET", "/api/v1/snapshot"}, {"POST", "/api/v1/snapshot"}, {"GET", "/api/v1/cluster/members"},
		{"POST", "/api/v1/cluster/join"}, {"POST", "/api/v1/cluster/leave"},
		{"POST", "/api/v1/cluster/members"}, {"POST", "/api/v1/mode"},
		{"GET", "/api/v1/sdgs"}, {"GET", "/api/v1/calls"}, {"GET", "/api/v1/journal"},
	}
	for _, e := range endpoints {
		for _, tok := range []string{"", "wrong", token + "x"} {
			if code, _ := do(t, e.method, n.srv.URL+e.path, tok, []byte(`{}`)); code != http.StatusUnauthorized {
				t.Errorf("%s %s with token %q: %d, want 401", e.method, e.path, tok, code)
			}
		}
	}
	for _, path := range []string{"/livez", "/healthz", "/readyz", "/api/v1/status", "/metrics", "/"} {
		if code, _ := do(t, "GET", n.srv.URL+path, "", nil); code != http.StatusOK {
			t.Errorf("GET %s without a token: %d, want 200", path, code)
		}
	}
}

func TestSnapshotApplyAndRefusals(t *testing.T) {
	n := startNode(t, "n1", true)
	url := n.srv.URL + "/api/v1/snapshot"
	if code, _ := do(t, "GET", url, token, nil); code != http.StatusNotFound {
		t.Errorf("GET snapshot before any: %d, want 404", code)
	}
	code, body := do(t, "POST", url, token, demo(t, 4))
	if code != http.StatusOK || body["revision"] != float64(4) {
		t.Fatalf("apply: %d %v", code, body)
	}
	cases := map[string]struct {
		body      []byte
		wantPaths []string
	}{
		"stale":     {demo(t, 4), []string{"revision"}},
		"older":     {demo(t, 2), []string{"revision"}},
		"truncated": {demo(t, 5)[:300], nil},
		"not json":  {[]byte("revision: 5"), nil},
		"dangling":  {bytes.Replace(demo(t, 5), []byte(`"site": "branch"`), []byte(`"site": "nowhere"`), 1), []string{"users[3].site"}},
	}
	for name, tc := range cases {
		code, body := do(t, "POST", url, token, tc.body)
		if code != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400 (%v)", name, code, body)
			continue
		}
		if msg, _ := body["error"].(string); msg == "" {
			t.Errorf("%s: no error message", name)
		}
		var paths []string
		for _, d := range asSlice(body["details"]) {
			p, _ := d.(map[string]any)["path"].(string)
			paths = append(paths, p)
		}
		for _, want := range tc.wantPaths {
			if !strings.Contains(strings.Join(paths, ","), want) {
				t.Errorf("%s: details %v lack %q", name, paths, want)
			}
		}
	}
	st, err := n.api.Status(t.Context())
	if err != nil || st.Revision != 4 {
		t.Errorf("after refusals: revision %d (%v), want 4", st.Revision, err)
	}
	doc, err := n.api.Snapshot(t.Context())
	if err != nil || !bytes.Equal(doc, demo(t, 4)) {
		t.Errorf("GET snapshot does not return the applied document (%v)", err)
	}
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func TestStatusFields(t *testing.T) {
	n := startNode(t, "n1", true)
	code, body := do(t, "GET", n.srv.URL+"/api/v1/status", "", nil)
	if code != http.StatusOK {
		t.Fatal(code)
	}
	for _, k := range []string{"node_id", "site", "mode", "leader", "quorum", "members", "revision",
		"registrations", "active_calls", "trunks", "cloud", "journal_pending"} {
		if _, ok := body[k]; !ok {
			t.Errorf("status lacks %q", k)
		}
	}
	if body["mode"] != "normal" || body["leader"] != "n1" || body["quorum"] != true {
		t.Errorf("status %v", body)
	}
	cloud, _ := body["cloud"].(map[string]any)
	for _, k := range []string{"url", "reachable", "last_sync_at", "last_error"} {
		if _, ok := cloud[k]; !ok {
			t.Errorf("status.cloud lacks %q", k)
		}
	}
	ms := asSlice(body["members"])
	if len(ms) != 1 {
		t.Fatalf("members %v", ms)
	}
	for _, k := range []string{"id", "raft_addr", "site", "healthy", "leader"} {
		if _, ok := ms[0].(map[string]any)[k]; !ok {
			t.Errorf("member lacks %q", k)
		}
	}
	if err := n.api.SetMode(t.Context(), "survivability"); err != nil {
		t.Fatal(err)
	}
	if st, _ := n.api.Status(t.Context()); st.Mode != "survivability" || st.ModeSince == nil {
		t.Errorf("mode after set: %q since %v", st.Mode, st.ModeSince)
	}
	if err := n.api.SetMode(t.Context(), "panic"); !IsStatus(err, http.StatusBadRequest) {
		t.Errorf("unknown mode: %v, want 400", err)
	}
}

func TestMetrics(t *testing.T) {
	n := startNode(t, "n1", true)
	if _, err := n.api.ApplySnapshot(t.Context(), demo(t, 1)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(n.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	for _, m := range []string{"outpost_raft_leader 1", "outpost_raft_state 2", "outpost_raft_apply_duration_seconds_count",
		"outpost_raft_applied_index", "outpost_raft_fsm_halted 0"} {
		if !bytes.Contains(data, []byte(m)) {
			t.Errorf("metrics lack %q", m)
		}
	}
}

// Writes sent to a follower are proxied to the leader; a forwarded request
// that reaches a non-leader is refused rather than forwarded again.
func TestFollowerForwardsWrites(t *testing.T) {
	l := startNode(t, "n1", true)
	f := startNode(t, "n2", false)
	if err := l.api.Join(t.Context(), "n2", f.c.RaftAddr()); err != nil {
		t.Fatal(err)
	}
	l.announce(t, f)
	waitFor(t, "follower sees the leader", func() error {
		if id, _ := f.c.Leader(); id != "n1" {
			return fmt.Errorf("leader %q", id)
		}
		return nil
	})
	rev, err := f.api.ApplySnapshot(t.Context(), demo(t, 3))
	if err != nil || rev != 3 {
		t.Fatalf("apply through follower: %d %v", rev, err)
	}
	waitFor(t, "follower at revision 3", func() error {
		st, err := f.api.Status(context.Background())
		if err == nil && st.Revision != 3 {
			err = fmt.Errorf("revision %d", st.Revision)
		}
		return err
	})
	// Validation errors come back through the proxy unchanged.
	_, err = f.api.ApplySnapshot(t.Context(), demo(t, 2))
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest || len(apiErr.Details) == 0 {
		t.Errorf("stale snapshot through follower: %v", err)
	}
	req, _ := http.NewRequest("POST", f.srv.URL+"/api/v1/snapshot", bytes.NewReader(demo(t, 9)))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set(forwardedHeader, "n3")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("forwarded request at a follower: %d, want 503", resp.StatusCode)
	}
	// Leaving an unknown member is a 404; the follower leaves through itself.
	if err := f.api.Leave(t.Context(), "nobody"); !IsStatus(err, http.StatusNotFound) {
		t.Errorf("leave unknown: %v, want 404", err)
	}
	if err := f.api.Leave(t.Context(), "n2"); err != nil {
		t.Errorf("leave n2: %v", err)
	}
	if ms, _ := l.c.Members(); len(ms) != 1 {
		t.Errorf("members after leave: %v", ms)
	}
}

func TestBadRequestBodies(t *testing.T) {
	n := startNode(t, "n1", true)
	for path, body := range map[string]string{
		"/api/v1/cluster/join":    `{"id": "x"}`,
		"/api/v1/cluster/leave":   `{}`,
		"/api/v1/cluster/members": `{"id": "x", "raft_addr": "a:1"}`,
		"/api/v1/mode":            `{"mode": "normal", "extra": 1}`,
	} {
		if code, resp := do(t, "POST", n.srv.URL+path, token, []byte(body)); code != http.StatusBadRequest {
			t.Errorf("POST %s %s: %d %v, want 400", path, body, code, resp)
		}
	}
}

func TestGroupsAndCallsEmpty(t *testing.T) {
	n := startNode(t, "n1", true)
	for path, key := range map[string]string{"/api/v1/sdgs": "sdgs", "/api/v1/calls": "calls"} {
		code, body := do(t, "GET", n.srv.URL+path, token, nil)
		if list, ok := body[key].([]any); code != http.StatusOK || !ok || len(list) != 0 {
			t.Errorf("GET %s without a call handler: %d %v, want 200 and an empty %q list", path, code, body, key)
		}
	}
}
