package cloud

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

const testToken = "admin-token-for-tests"

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// testLog logs to the test's output at debug level.
func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

func openStore(t testing.TB, o Options) *Store {
	t.Helper()
	if o.Log == nil {
		o.Log = testLog(t)
	}
	st, err := Open(filepath.Join(t.TempDir(), "cloud.db"), o)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// harness is a server on an httptest listener, with a fake clock.
type harness struct {
	t     *testing.T
	store *Store
	srv   *Server
	url   string
	clock *fakeClock
}

func newHarness(t *testing.T, o Options) *harness {
	t.Helper()
	h := &harness{t: t, store: openStore(t, o), clock: newClock()}
	h.srv = New(Config{Store: h.store, AdminToken: testToken, Log: testLog(t), Now: h.clock.Now})
	ts := httptest.NewServer(h.srv.Handler())
	t.Cleanup(ts.Close)
	h.url = ts.URL
	return h
}

// smallAccount is a valid generated account.
func smallAccount(t testing.TB, seed uint64) *account.Snapshot {
	t.Helper()
	s := account.Generate(account.GenerateOptions{Users: 12, SDGs: 3, Trunks: 2, Numbers: 16, Seed: seed})
	if err := account.Validate(s, 0); err != nil {
		t.Fatalf("generated account: %v", err)
	}
	return s
}

func encode(t testing.TB, v any) []byte {
	t.Helper()
	if b, ok := v.([]byte); ok {
		return b
	}
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// do sends a request and returns the response with its body read.
func (h *harness) do(method, path string, body any, header http.Header) (*http.Response, []byte) {
	h.t.Helper()
	resp, data, err := h.try(method, path, encode(h.t, body), header)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp, data
}

// try is do for other goroutines than the test's: it reports errors
// rather than failing the test.
func (h *harness) try(method, path string, body []byte, header http.Header) (*http.Response, []byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, h.url+path, r)
	if err != nil {
		return nil, nil, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	return resp, data, nil
}

func adminHeader() http.Header {
	return http.Header{"Authorization": {"Bearer " + testToken}}
}

// admin sends an admin request with the right token.
func (h *harness) admin(method, path string, body any) (*http.Response, []byte) {
	h.t.Helper()
	return h.do(method, path, body, adminHeader())
}

// putSnapshot replaces the snapshot and returns the new revision.
func (h *harness) putSnapshot(s *account.Snapshot) int64 {
	h.t.Helper()
	resp, body := h.admin(http.MethodPut, "/v1/admin/snapshot", s)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("PUT snapshot: %d %s", resp.StatusCode, body)
	}
	var r RevisionResponse
	decode(h.t, body, &r)
	return r.Revision
}

func decode(t testing.TB, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("decode %.300s: %v", data, err)
	}
}

// creds are an appliance's credentials from pairing.
type creds struct {
	protocol.PairResponse
}

func (c creds) header() http.Header {
	return http.Header{
		protocol.HeaderAppliance: {c.ApplianceID},
		"Authorization":          {"Bearer " + c.Secret},
	}
}

// pairingCode makes a code for name through the admin API.
func (h *harness) pairingCode(name string) string {
	h.t.Helper()
	resp, body := h.admin(http.MethodPost, "/v1/admin/pairing-codes", PairingCodeRequest{Appliance: name})
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("pairing code: %d %s", resp.StatusCode, body)
	}
	var r PairingCodeResponse
	decode(h.t, body, &r)
	return r.Code
}

// pair pairs a new appliance called name.
func (h *harness) pair(name string) creds {
	h.t.Helper()
	code := h.pairingCode(name)
	resp, body := h.do(http.MethodPost, protocol.PathPair, protocol.PairRequest{Code: code, Name: "node-1"}, nil)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("pair: %d %s", resp.StatusCode, body)
	}
	var c creds
	decode(h.t, body, &c.PairResponse)
	return c
}

// sync sends an authenticated appliance request.
func (h *harness) sync(c creds, method, path string, body any, extra http.Header) (*http.Response, []byte) {
	h.t.Helper()
	hdr := c.header()
	for k, vs := range extra {
		hdr[k] = vs
	}
	return h.do(method, path, body, hdr)
}

func wantStatus(t testing.TB, what string, resp *http.Response, body []byte, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("%s: status %d, want %d; body %.500s", what, resp.StatusCode, want, body)
	}
}

// errorBody decodes an error answer.
func errorBody(t testing.TB, body []byte) protocol.Error {
	t.Helper()
	var e protocol.Error
	decode(t, body, &e)
	if e.Error == "" {
		t.Fatalf("error answer without a message: %s", body)
	}
	return e
}
