package web

import (
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/outpost-voice/outpost/docs"
)

// The API description and the routes agree: every route the server
// registers is in docs/openapi.yaml with its method, and every operation
// documented there is a route.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var spec struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(docs.OpenAPI, &spec); err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	documented := map[string]bool{}
	for path, ops := range spec.Paths {
		for method := range ops {
			switch method {
			case "get", "put", "post", "delete", "patch", "head":
				documented[strings.ToUpper(method)+" "+path] = true
			}
		}
	}
	n := startNode(t, "n1", true)
	// Every optional route on (the push receiver is mounted when paired).
	s := New(Deps{Registry: prometheus.NewRegistry(), Log: slog.New(slog.DiscardHandler), Push: http.NotFoundHandler()})
	param := regexp.MustCompile(`[:*]([A-Za-z_]+)`)
	served := map[string]bool{}
	for _, r := range s.engine.Routes() {
		path := param.ReplaceAllString(r.Path, "{$1}")
		if path == "/static/{filepath}" {
			path = "/static/{file}"
		}
		if r.Method == http.MethodHead { // served with each GET of the static files
			continue
		}
		served[r.Method+" "+path] = true
	}
	var missing, extra []string
	for k := range served {
		if !documented[k] {
			missing = append(missing, k)
		}
	}
	for k := range documented {
		if !served[k] {
			extra = append(extra, k)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	if len(missing) > 0 {
		t.Errorf("routes not in docs/openapi.yaml: %v", missing)
	}
	if len(extra) > 0 {
		t.Errorf("docs/openapi.yaml operations no route serves: %v", extra)
	}
	// The node serves the description itself.
	code, _ := do(t, "GET", n.srv.URL+"/api/v1/openapi.yaml", "", nil)
	if code != http.StatusOK {
		t.Errorf("GET /api/v1/openapi.yaml: %d", code)
	}
}
