package ui

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// stream is an open GET /ui/events.
type stream struct {
	resp *http.Response
	sc   *bufio.Scanner
}

func openStream(t *testing.T, f *fixture, b *browser) *stream {
	t.Helper()
	return openStreamAt(t, f, b, "/ui/events")
}

func openStreamAt(t *testing.T, f *fixture, b *browser, path string) *stream {
	t.Helper()
	srv := httptest.NewServer(f.h)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+path, nil)
	for _, c := range b.jar {
		req.AddCookie(c)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return &stream{resp: resp, sc: bufio.NewScanner(resp.Body)}
}

// next returns the next event's name and data.
func (s *stream) next(t *testing.T) (string, string) {
	t.Helper()
	var name string
	var data []string
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case line == "":
			if name != "" || data != nil {
				return name, strings.Join(data, "\n")
			}
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = append(data, strings.TrimPrefix(line, "data: "))
		}
	}
	t.Fatalf("stream ended: %v", s.sc.Err())
	return "", ""
}

// readEvents reads n status events.
func readEvents(t *testing.T, f *fixture, b *browser, n int) []string {
	t.Helper()
	s := openStream(t, f, b)
	var out []string
	for len(out) < n {
		if name, data := s.next(t); name == EventStatus {
			out = append(out, data)
		}
	}
	return out
}

func TestEventsStreamTheBoardAsItChanges(t *testing.T) {
	f := newFixture(t, nil)
	b := f.browser("192.0.2.1")
	_, page := b.signIn(adminUser, adminPass)
	s := openStream(t, f, b)
	if ct := s.resp.Header.Get("Content-Type"); s.resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("GET /ui/events: %d %q", s.resp.StatusCode, ct)
	}
	if got := s.resp.Header.Get("Content-Security-Policy"); got != ContentSecurityPolicy {
		t.Errorf("stream CSP %q", got)
	}
	name, data := s.next(t)
	if name != EventStatus || !strings.Contains(data, `id="registrations">2<`) {
		t.Fatalf("first event %q:\n%s", name, data)
	}
	f.setStatus(func(st *Status) { st.Registrations = 3; st.RegistrationsPerSite = map[string]int{"hq": 3} })
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(data, `id="registrations">3<`) {
		if time.Now().After(deadline) {
			t.Fatalf("no event with 3 registrations; last:\n%s", data)
		}
		_, data = s.next(t)
	}
	if !strings.Contains(data, "3 of 4 phones") {
		t.Errorf("per-site share not updated:\n%s", data)
	}
	// Signing out ends the stream with a signed-out event.
	b.do("POST", "/logout", url.Values{CSRFField: {formToken(t, page)}})
	for {
		name, _ := s.next(t)
		if name == EventSignedOut {
			break
		}
	}
}

func TestEventsNeedASession(t *testing.T) {
	f := newFixture(t, nil)
	resp, body := f.browser("192.0.2.1").do("GET", "/ui/events", nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `"error"`) {
		t.Errorf("stream without a session: %d %s", resp.StatusCode, body)
	}
}

func TestCloseEndsStreams(t *testing.T) {
	f := newFixture(t, nil)
	b := f.browser("192.0.2.1")
	b.signIn(adminUser, adminPass)
	s := openStream(t, f, b)
	s.next(t)
	f.ui.Close()
	done := make(chan struct{})
	go func() {
		for s.sc.Scan() {
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("stream still open after Close")
	}
}
