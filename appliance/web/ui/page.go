package ui

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

//go:embed templates
var templateFS embed.FS

// htmxConfig keeps htmx within the CSP (no inline indicator styles, no
// eval, no script tags in swapped content), keeps pages (which hold CSRF
// tokens) out of localStorage, and swaps error pages (a wrong password's
// 401, a refusal's 403) like any other.
const htmxConfig = `{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,` +
	`"historyCacheSize":0,"refreshOnHistoryMiss":true,` +
	`"responseHandling":[{"code":"204","swap":false},{"code":"[2345]..","swap":true}]}`

// pages is every page template, each with the layout.
var pages = func() map[string]*template.Template {
	funcs := template.FuncMap{
		"duration": formatDuration,
		"ago":      ago,
		"clock":    clock,
		"ms":       func(f float64) string { return fmt.Sprintf("%.1f ms", f) },
		"percent":  percent,
		"route":    RouteLine,
		"navItems": func() []navItem { return navItems },
	}
	base := template.Must(template.New("layout").Funcs(funcs).ParseFS(templateFS, "templates/layout.html"))
	out := map[string]*template.Template{}
	for _, name := range []string{"login", "status", "refused", "phones", "calls", "sdgs", "cluster", "settings"} {
		t := template.Must(base.Clone())
		template.Must(t.ParseFS(templateFS, "templates/"+name+".html"))
		out[name] = t
	}
	return out
}()

// page is what the layout renders.
type page struct {
	Title   string
	Nav     string // the navigation bar's current item (its path)
	NodeID  string
	User    string // signed in as; empty on the sign-in page
	CSRF    string // the session's token for the forms
	HTMX    bool
	Config  string // htmx's configuration
	Message string // an error or notice
	Body    any    // the page's own data
}

// navItem is an entry of the navigation bar.
type navItem struct{ Path, Label string }

// navItems is the navigation bar, in order (Sign out is its form).
var navItems = []navItem{
	{"/", "Status"}, {"/phones", "Phones"}, {"/calls", "Calls"},
	{"/sdgs", "SDGs"}, {"/cluster", "Cluster"}, {"/settings", "Settings"},
}

// render writes the page named name with status.
func (u *UI) render(c *gin.Context, status int, name string, p page) {
	p.NodeID, p.HTMX, p.Config = u.d.NodeID, u.htmx, htmxConfig
	var buf bytes.Buffer
	if err := pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		u.d.Log.Error("ui: render page", "page", name, "error", err)
		c.String(http.StatusInternalServerError, "could not render the page; see the node's log")
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
}

// formatDuration is a short human duration: 45s, 3m 12s, 2h 03m, 4d 06h.
func formatDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm %02ds", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh %02dm", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%dd %02dh", s/86400, s%86400/3600)
}

// ago is how long before now t was, or "never".
func ago(now time.Time, t *time.Time) string {
	if t == nil || t.IsZero() {
		return "never"
	}
	return formatDuration(now.Sub(*t)) + " ago"
}

// clock is t in UTC, to the second.
func clock(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func percent(n, of int) int {
	if of <= 0 {
		return 0
	}
	return min(100, n*100/of)
}

// sseLines prefixes each line of a rendered fragment for an SSE data field.
func sseLines(b []byte) string {
	var sb strings.Builder
	for line := range strings.SplitSeq(strings.ReplaceAll(string(b), "\r", ""), "\n") {
		sb.WriteString("data: ")
		sb.WriteString(line)
		sb.WriteByte('\n')
	}
	return sb.String()
}

// readAll reads a page's optional list: none when fn is nil, and the
// message to show when it fails.
func readAll[T any](ctx context.Context, u *UI, what string, fn func(context.Context) ([]T, error)) ([]T, string) {
	if fn == nil {
		return nil, ""
	}
	v, err := fn(ctx)
	if err != nil {
		u.d.Log.Warn("ui: read "+what, "error", err)
		return nil, "The " + what + " cannot be read right now: " + err.Error()
	}
	return v, ""
}
