package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost-voice/outpost/appliance/web"
)

func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), code
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		nil, {"frobnicate"}, {"serve", "extra"}, {"apply"}, {"cluster"}, {"cluster", "dance"},
		{"cluster", "join", "--id", "x"}, {"cluster", "leave"}, {"status", "--bogus"},
	} {
		_, stderr, code := runCLI(t, args...)
		if code != 2 || !strings.Contains(stderr, "usage: outpost") {
			t.Errorf("%q: exit %d, stderr %q; want 2 with usage", args, code, stderr)
		}
	}
}

func TestErrorsAreOneLine(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bad.yaml")
	os.WriteFile(cfg, []byte("sip:\n  udp: nope\nhttp:\n  listen: also-nope\n"), 0o600)
	for _, args := range [][]string{
		{"serve", "--config", cfg},
		{"apply", "--server", "127.0.0.1:1", "--token-file", filepath.Join(dir, "missing"), filepath.Join(dir, "missing.json")},
		{"status", "--server", "127.0.0.1:1"},
		{"pair", "--cloud", "http://x", "--code", "y"},
	} {
		_, stderr, code := runCLI(t, args...)
		if code != 1 || strings.Count(strings.TrimRight(stderr, "\n"), "\n") != 0 || !strings.HasPrefix(stderr, "outpost: ") {
			t.Errorf("%q: exit %d, stderr %q; want 1 and one line", args, code, stderr)
		}
	}
}

func TestPairNeedsCloudAndCode(t *testing.T) {
	for _, args := range [][]string{{"pair"}, {"pair", "--cloud", "http://127.0.0.1:1"}, {"pair", "--code", "x"}} {
		if _, stderr, code := runCLI(t, args...); code != 2 || !strings.Contains(stderr, "pair needs --cloud and --code") {
			t.Errorf("%q: exit %d, stderr %q; want 2 and the usage", args, code, stderr)
		}
	}
}

func TestStatusPrintsAndJSON(t *testing.T) {
	st := web.Status{NodeID: "n1", Site: "hq", Mode: "normal", Leader: "n1", Quorum: true, Revision: 7, Ready: true,
		Members: []web.MemberStatus{{ID: "n1", RaftAddr: "127.0.0.1:7000", Site: "hq", Healthy: true, Leader: true}}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/status" {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(st)
	}))
	defer srv.Close()
	out, stderr, code := runCLI(t, "status", "--server", srv.URL)
	if code != 0 || !strings.Contains(out, "revision  7") || !strings.Contains(out, "ready     yes") {
		t.Errorf("status: exit %d, out %q, err %q", code, out, stderr)
	}
	out, _, code = runCLI(t, "status", "--server", srv.URL, "--json")
	var got map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || got["revision"] != float64(7) {
		t.Errorf("status --json: exit %d, %q", code, out)
	}
}

func TestLocalAddr(t *testing.T) {
	for in, want := range map[string]string{
		"0.0.0.0:8080": "127.0.0.1:8080", ":8080": "127.0.0.1:8080", "[::]:8080": "127.0.0.1:8080",
		"10.1.2.3:8080": "10.1.2.3:8080", "bad": "bad",
	} {
		if got := localAddr(in); got != want {
			t.Errorf("localAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPrintStatusTrunksAndPrompts(t *testing.T) {
	rtt := 1.25
	var out strings.Builder
	printStatus(&out, web.Status{NodeID: "n1", Site: "hq", Mode: "survivability", Ready: true,
		Trunks: []web.TrunkStatus{{ID: "sbc-1", State: "up", RTTMs: &rtt},
			{ID: "sbc-2", State: "down", LastError: "x509: certificate signed by unknown authority"}},
		PromptsMissing: []string{"main-menu", "menu-1"}})
	for _, want := range []string{"trunks\n", "  sbc-1        up       rtt 1.2 ms\n",
		"  sbc-2        down      x509: certificate signed by unknown authority\n",
		"prompts   built-in played instead of: main-menu, menu-1\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}
}
