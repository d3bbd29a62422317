package embed

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// An allowed origin gets the widget, framable by that origin only; any
// other origin, a malformed one or none gets a refusal nobody can frame,
// and the refusal is logged.
func TestPageFramingByOrigin(t *testing.T) {
	for _, tc := range []struct {
		name, query string
		status      int
		ancestors   string
	}{
		{"allowed", "origin=" + url.QueryEscape(allowed), http.StatusOK, "frame-ancestors " + allowed + ";"},
		{"allowed with a port", "origin=" + url.QueryEscape("http://localhost:8081"), http.StatusOK, "frame-ancestors http://localhost:8081;"},
		{"not allowed", "origin=" + url.QueryEscape("https://evil.example"), http.StatusForbidden, "frame-ancestors 'none'"},
		{"missing", "", http.StatusForbidden, "frame-ancestors 'none'"},
		{"empty", "origin=", http.StatusForbidden, "frame-ancestors 'none'"},
		{"twice", "origin=" + url.QueryEscape(allowed) + "&origin=" + url.QueryEscape(allowed), http.StatusForbidden, "frame-ancestors 'none'"},
		{"with a path", "origin=" + url.QueryEscape(allowed+"/"), http.StatusForbidden, "frame-ancestors 'none'"},
		{"upper case", "origin=" + url.QueryEscape("https://CRM.example.com"), http.StatusForbidden, "frame-ancestors 'none'"},
		{"default port", "origin=" + url.QueryEscape(allowed+":443"), http.StatusForbidden, "frame-ancestors 'none'"},
		{"wildcard", "origin=*", http.StatusForbidden, "frame-ancestors 'none'"},
		{"not http", "origin=" + url.QueryEscape("javascript:alert(1)"), http.StatusForbidden, "frame-ancestors 'none'"},
		{"header injection", "origin=" + url.QueryEscape(allowed+"; script-src *"), http.StatusForbidden, "frame-ancestors 'none'"},
		{"a user", "origin=" + url.QueryEscape("https://crm.example.com@evil.example"), http.StatusForbidden, "frame-ancestors 'none'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			rec := f.do("GET", "/embed?"+tc.query, "", "192.0.2.1")
			csp := rec.Header().Get("Content-Security-Policy")
			if rec.Code != tc.status || !strings.Contains(csp, tc.ancestors) {
				t.Fatalf("%d, CSP %q; want %d and %q\n%s", rec.Code, csp, tc.status, tc.ancestors, rec.Body)
			}
			for _, d := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "base-uri 'none'", "form-action 'self'"} {
				if !strings.Contains(csp, d) {
					t.Errorf("CSP %q lacks %q", csp, d)
				}
			}
			if strings.Contains(csp, "unsafe") || strings.Count(csp, "frame-ancestors") != 1 {
				t.Errorf("CSP %q", csp)
			}
			xfo := rec.Header().Get("X-Frame-Options")
			body := rec.Body.String()
			if tc.status == http.StatusOK {
				if xfo != "" {
					t.Errorf("X-Frame-Options %q on an allowed page: it would forbid the framing", xfo)
				}
				if !strings.Contains(body, `id="signin-form"`) || !strings.Contains(body, `src="/embed/widget.js"`) {
					t.Errorf("not the widget:\n%s", body)
				}
				if strings.Contains(f.logs.String(), "page refused") {
					t.Errorf("an allowed page was logged as refused: %s", f.logs)
				}
				return
			}
			if xfo != "DENY" {
				t.Errorf("X-Frame-Options %q on a refusal, want DENY", xfo)
			}
			if !strings.Contains(body, `id="refused-reason"`) || strings.Contains(body, "widget.js") {
				t.Errorf("not the refusal:\n%s", body)
			}
			if !strings.Contains(f.logs.String(), "embed: page refused") {
				t.Errorf("refusal not logged: %s", f.logs)
			}
		})
	}
}

// The page's script learns the origin from an attribute the server wrote;
// nothing inline, nothing from elsewhere; the refusal escapes what it
// repeats.
func TestPageScriptsAndEscaping(t *testing.T) {
	f := newFixture(t, nil)
	body := f.do("GET", "/embed?origin="+url.QueryEscape(allowed), "", "192.0.2.1").Body.String()
	if !strings.Contains(body, `data-origin="`+allowed+`"`) {
		t.Errorf("no data-origin for the script:\n%s", body)
	}
	scripts := regexp.MustCompile(`<script[^>]*>`).FindAllString(body, -1)
	if len(scripts) != 1 || scripts[0] != `<script src="/embed/widget.js" defer>` {
		t.Errorf("scripts %q: want only the widget's own file", scripts)
	}
	if strings.Contains(body, "style=") || strings.Contains(body, "http://") || strings.Contains(body, "https://cdn") {
		t.Errorf("inline style or a foreign resource:\n%s", body)
	}
	refused := f.do("GET", "/embed?origin="+url.QueryEscape("https://"+evilName), "", "192.0.2.1").Body.String()
	if strings.Contains(refused, "<script>") || !strings.Contains(refused, "&lt;script&gt;") {
		t.Errorf("the refusal does not escape the origin:\n%s", refused)
	}
	// The list is read at each load: removed, refused.
	f.dir.mu.Lock()
	f.dir.origins = nil
	f.dir.mu.Unlock()
	if rec := f.do("GET", "/embed?origin="+url.QueryEscape(allowed), "", "192.0.2.1"); rec.Code != http.StatusForbidden {
		t.Errorf("an origin removed from the snapshot: %d, want 403", rec.Code)
	}
}

func TestStaticFiles(t *testing.T) {
	f := newFixture(t, nil)
	for path, ct := range map[string]string{"/embed/widget.js": "text/javascript", "/embed/widget.css": "text/css"} {
		rec := f.do("GET", path, "", "192.0.2.1")
		if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), ct) ||
			rec.Header().Get("X-Content-Type-Options") != "nosniff" || rec.Body.Len() == 0 {
			t.Errorf("%s: %d %q", path, rec.Code, rec.Header().Get("Content-Type"))
		}
	}
	js := f.do("GET", "/embed/widget.js", "", "192.0.2.1").Body.String()
	if strings.Contains(js, "innerHTML") || strings.Contains(js, "outerHTML") || strings.Contains(js, "insertAdjacentHTML") || strings.Contains(js, "eval(") {
		t.Error("widget.js uses innerHTML or eval")
	}
	if strings.Count(js, "postMessage(") != 1 || !strings.Contains(js, "postMessage(data === undefined ? { type } : { type, data }, origin)") ||
		!strings.Contains(js, "ev.origin !== origin || ev.source !== window.parent") {
		t.Error("widget.js does not post to, and hear only, the allowed origin")
	}
}

func TestOriginProblem(t *testing.T) {
	for _, ok := range []string{"https://crm.example.com", "http://localhost:8081", "http://127.0.0.1:9000", "https://[2001:db8::1]:8443"} {
		if p := originProblem(ok); p != "" {
			t.Errorf("%s: %s", ok, p)
		}
	}
	for _, bad := range []string{"", "crm.example.com", "ftp://x.example", "https://", "https://x.example/", "https://x.example?q",
		"https://x.example#f", "https://u@x.example", "https://x.example:0", "https://x.example:65536", "https://x.example:",
		"http://x.example:80", "https://X.example", "https://x_y.example", "https://x.example:08", "https://[::1", "https://fe80::1",
		"https://x.example, https://y.example", "https://x.example;", "https://x.ex\nample", strings.Repeat("a", 300)} {
		if originProblem(bad) == "" {
			t.Errorf("%q taken as an origin", bad)
		}
	}
}
