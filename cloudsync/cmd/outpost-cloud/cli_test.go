package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/account"
)

func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), code
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		nil, {"frobnicate"}, {"serve"}, {"serve", "--listen", "127.0.0.1:0"}, {"serve", "extra"},
		{"gen", "--users", "-1"}, {"gen", "--bogus"}, {"gen", "positional"},
		{"serve", "--listen", "x", "--db", "y", "--admin-token-file", "z", "--log-level", "loud"},
	} {
		_, stderr, code := runCLI(t, args...)
		if code != 2 || !strings.Contains(stderr, "usage: outpost-cloud") {
			t.Errorf("%q: exit %d, stderr %q; want 2 with usage", args, code, stderr)
		}
	}
	out, _, code := runCLI(t, "help")
	if code != 0 || !strings.Contains(out, "usage: outpost-cloud") {
		t.Errorf("help: exit %d, %q", code, out)
	}
}

func TestErrorsAreOneLine(t *testing.T) {
	dir := t.TempDir()
	token := writeFile(t, dir, "token", "secret\n")
	badSeed := writeFile(t, dir, "bad.json", `{"revision": 1, "users": [{"id": "u"}]}`)
	for _, args := range [][]string{
		{"serve", "--listen", "127.0.0.1:0", "--db", filepath.Join(dir, "a.db"), "--admin-token-file", filepath.Join(dir, "missing")},
		{"serve", "--listen", "127.0.0.1:0", "--db", filepath.Join(dir, "b.db"), "--admin-token-file", writeFile(t, dir, "empty", " \n")},
		{"serve", "--listen", "256.0.0.1:1", "--db", filepath.Join(dir, "c.db"), "--admin-token-file", token},
		{"serve", "--listen", "127.0.0.1:0", "--db", filepath.Join(dir, "d.db"), "--admin-token-file", token, "--seed", badSeed},
		{"serve", "--listen", "127.0.0.1:0", "--db", filepath.Join(dir, "e.db"), "--admin-token-file", token, "--seed", filepath.Join(dir, "none.json")},
	} {
		_, stderr, code := runCLI(t, args...)
		if code != 1 || strings.Count(strings.TrimRight(stderr, "\n"), "\n") != 0 || !strings.HasPrefix(stderr, "outpost-cloud: ") {
			t.Errorf("%q: exit %d, stderr %q; want 1 and one line", args, code, stderr)
		}
	}
	_, stderr, _ := runCLI(t, "serve", "--listen", "127.0.0.1:0", "--db", filepath.Join(dir, "f.db"), "--admin-token-file", filepath.Join(dir, "missing"))
	if !strings.Contains(stderr, "missing") || !strings.Contains(stderr, "admin token") {
		t.Errorf("missing token file: %q does not name it", stderr)
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestGen(t *testing.T) {
	out, stderr, code := runCLI(t, "gen", "--users", "40", "--sdgs", "6", "--trunks", "3", "--seed", "9")
	if code != 0 {
		t.Fatalf("gen: exit %d: %s", code, stderr)
	}
	s, err := account.DecodeBytes([]byte(out))
	if err != nil {
		t.Fatalf("gen output: %v", err)
	}
	if err := account.Validate(s, 0); err != nil {
		t.Fatalf("gen output does not validate: %v", err)
	}
	dids := 0
	for _, u := range s.Users {
		dids += len(u.Numbers)
	}
	if len(s.Users) != 40 || len(s.SDGs) != 6 || len(s.Trunks) != 3 || dids != 40 || len(s.Numbers) != len(s.Sites) {
		t.Errorf("gen: %d users (%d DIDs), %d sdgs, %d trunks, %d numbers, %d sites",
			len(s.Users), dids, len(s.SDGs), len(s.Trunks), len(s.Numbers), len(s.Sites))
	}
	again, _, _ := runCLI(t, "gen", "--users", "40", "--sdgs", "6", "--trunks", "3", "--seed", "9")
	if again != out {
		t.Error("gen with the same flags gave another account")
	}
	out, _, code = runCLI(t, "gen", "--users", "5", "--numbers", "2", "--sites", "3")
	if s, err := account.DecodeBytes([]byte(out)); code != 0 || err != nil || account.Validate(s, 0) != nil || len(s.Sites) != 3 {
		t.Errorf("gen --numbers 2 --sites 3: exit %d, %v", code, err)
	}
}

// syncBuffer is a bytes.Buffer safe for the server's log and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startServe runs `outpost-cloud serve` in the test process and returns
// its address and a function that stops it (as SIGTERM would) and returns
// its exit status and log.
func startServe(t *testing.T, args ...string) (string, func() (int, string)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runEnv(ctx, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...),
			env{stdout: &stdout, stderr: &stderr, listening: func(a string) { addrc <- a }})
	}()
	select {
	case a := <-addrc:
		return a, func() (int, string) {
			cancel()
			select {
			case code := <-done:
				return code, stderr.String()
			case <-time.After(30 * time.Second):
				t.Fatalf("serve did not stop within 30 s of its context ending; log:\n%s", stderr.String())
				return 0, ""
			}
		}
	case code := <-done:
		cancel()
		t.Fatalf("serve exited %d before listening: %s", code, stderr.String())
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("serve did not listen within 30 s; log:\n%s", stderr.String())
	}
	return "", nil
}

func get(t *testing.T, url, token string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

func TestServeStartsSeedsAndStops(t *testing.T) {
	dir := t.TempDir()
	token := writeFile(t, dir, "token", "tok-123\n")
	db := filepath.Join(dir, "data", "cloud.db")
	s := account.Generate(account.GenerateOptions{Users: 10, SDGs: 2, Trunks: 1, Numbers: 11, Seed: 5})
	s.Revision = 7
	doc, _ := s.Encode()
	seedFile := writeFile(t, dir, "seed.json", string(doc))

	addr, stop := startServe(t, "--db", db, "--admin-token-file", token, "--seed", seedFile, "--log-format", "json")
	if code, body := get(t, "http://"+addr+"/livez", ""); code != http.StatusOK {
		t.Errorf("livez: %d %s", code, body)
	}
	if code, _ := get(t, "http://"+addr+"/v1/admin/snapshot", "wrong"); code != http.StatusUnauthorized {
		t.Errorf("admin with a wrong token: %d", code)
	}
	code, body := get(t, "http://"+addr+"/v1/admin/snapshot", "tok-123")
	var got account.Snapshot
	if code != http.StatusOK || json.Unmarshal(body, &got) != nil || got.Revision != 7 || len(got.Users) != 10 {
		t.Errorf("seeded snapshot: %d, revision %d, %d users", code, got.Revision, len(got.Users))
	}
	exit, log := stop()
	if exit != 0 || !strings.Contains(log, `"msg":"stopped"`) || !strings.Contains(log, `"msg":"store seeded"`) {
		t.Errorf("serve: exit %d, log:\n%s", exit, log)
	}

	// Restarted on the same store, another seed is ignored.
	other := account.Generate(account.GenerateOptions{Users: 3, Seed: 6})
	doc, _ = other.Encode()
	addr, stop = startServe(t, "--db", db, "--admin-token-file", token, "--seed", writeFile(t, dir, "other.json", string(doc)))
	code, body = get(t, "http://"+addr+"/v1/admin/snapshot", "tok-123")
	if code != http.StatusOK || json.Unmarshal(body, &got) != nil || got.Revision != 7 || len(got.Users) != 10 {
		t.Errorf("after restart: %d, revision %d, %d users; want the first seed kept", code, got.Revision, len(got.Users))
	}
	if exit, log := stop(); exit != 0 || !strings.Contains(log, "seed ignored") {
		t.Errorf("restart: exit %d, log:\n%s", exit, log)
	}
}
