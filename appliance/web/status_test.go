package web

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// status.prompts_missing lists what the node's prompt library says falls
// back, and is an empty list, never null, when nothing does or the node
// has no library.
func TestStatusPromptsMissing(t *testing.T) {
	n := startNode(t, "n1", true)
	code, body := do(t, "GET", n.srv.URL+"/api/v1/status", "", nil)
	if code != http.StatusOK {
		t.Fatal(code)
	}
	if got, ok := body["prompts_missing"].([]any); !ok || len(got) != 0 {
		t.Errorf("prompts_missing without a library = %#v, want []", body["prompts_missing"])
	}

	var mu sync.Mutex
	missing := []string{"callout-greeting", "main-menu"}
	s := New(Deps{
		NodeID: "n1", Site: "hq", AdminToken: token, Cluster: n.c, Reader: n.st.Reader(),
		Healthy: func(string) bool { return true }, Ready: func() error { return nil },
		PromptsMissing: func() []string {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(missing)
		},
		Registry: prometheus.NewRegistry(), Log: slog.New(slog.DiscardHandler),
	})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	api := NewClient(srv.URL, token)

	st, err := api.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"callout-greeting", "main-menu"}; !slices.Equal(st.PromptsMissing, want) {
		t.Errorf("prompts_missing = %q, want %q", st.PromptsMissing, want)
	}
	mu.Lock()
	missing = nil
	mu.Unlock()
	code, body = do(t, "GET", srv.URL+"/api/v1/status", "", nil)
	if got, ok := body["prompts_missing"].([]any); code != http.StatusOK || !ok || len(got) != 0 {
		t.Errorf("prompts_missing once every prompt plays = %#v, want []", body["prompts_missing"])
	}
}
