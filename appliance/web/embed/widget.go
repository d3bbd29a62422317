package embed

import (
	"bytes"
	"context"
	"crypto/rand"
	goembed "embed"
	"github.com/outpost-voice/outpost/appliance/web/lockout"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/calls"
)

// Backend is what the widget needs from the call engine (*calls.B2BUA):
// a user's engagements, their events, and the actions on them. Every
// method takes the user's SIP username.
type Backend interface {
	Subscribe(username string) (<-chan calls.EngagementEvent, func())
	Engagements(username string) []calls.Engagement
	ClickToCall(ctx context.Context, username, dest string) (calls.Engagement, error)
	Accept(ctx context.Context, username, id string) error
	Reject(ctx context.Context, username, id string) error
	Hangup(ctx context.Context, username, id string) error
	Hold(ctx context.Context, username, id string, on bool) error
	Mute(ctx context.Context, username, id string, on bool) error
	SendDTMF(ctx context.Context, username, id string, digit byte) error
	Transfer(ctx context.Context, username, id, dest string, warm bool) error
	AddCall(ctx context.Context, username, id, dest string) (calls.Engagement, error)
	CancelConsult(ctx context.Context, username, id string) error
	CompleteTransfer(ctx context.Context, username, id string) error
	MergeConsult(ctx context.Context, username, id string) error
	AgentStatus(username string) int
	SetAgentStatus(username string, status int) error
}

// Directory is what the widget reads of the configuration in force
// (*store.Reader): the realm, the allowed origins and the users. A user
// that is not there is an error wrapping store.ErrNotFound.
type Directory interface {
	Account(ctx context.Context) (account.Account, error)
	Embed(ctx context.Context) (account.Embed, error)
	UserByUsername(ctx context.Context, username string) (account.User, error)
	UserByID(ctx context.Context, id string) (account.User, error)
}

// Deps is what the widget needs from the node.
type Deps struct {
	// Calls acts on calls; nil: the API answers 503 (the page and the
	// sign-in still work).
	Calls Backend
	// Directory is the configuration in force; nil: the page is refused
	// and the API answers 503.
	Directory Directory
	// Key signs the widget's tokens; every node of a cluster must hold
	// the same one (node derives it from the cluster token). Shorter than
	// 16 bytes: a random key for this process, so tokens do not survive a
	// restart nor work on another node (logged).
	Key []byte
	// RequireAdmin guards POST /api/v1/embed/tokens (the API's admin
	// bearer token check); nil refuses every request to it.
	RequireAdmin gin.HandlerFunc
	Log          *slog.Logger
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// Heartbeat is how often the event stream sends a comment and checks
	// its token again; 0: 15 s.
	Heartbeat time.Duration
}

// Widget is the mounted call widget.
type Widget struct {
	d        Deps
	key      []byte
	lockouts *lockout.Tracker
	streams  *streamLimit

	done      chan struct{}
	closeOnce sync.Once
}

// Mount adds the widget's routes to e: the page at /embed, its script and
// style, its API under /embed/api/ and the admin's
// POST /api/v1/embed/tokens. Close ends the event streams (call it when
// the HTTP server shuts down).
func Mount(e *gin.Engine, d Deps) *Widget {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Heartbeat <= 0 {
		d.Heartbeat = 15 * time.Second
	}
	if d.RequireAdmin == nil {
		d.RequireAdmin = func(c *gin.Context) {
			fail(c, http.StatusUnauthorized, "this node issues no widget tokens through the API")
		}
	}
	w := &Widget{d: d, key: d.Key, lockouts: lockout.New(d.Now), streams: newStreamLimit(), done: make(chan struct{})}
	if len(w.key) < 16 {
		w.key = make([]byte, 32)
		_, _ = rand.Read(w.key) // never fails on Linux (Go 1.24+)
		d.Log.Warn("embed: no token key: widget tokens are signed with a random key, valid on this node until it restarts")
	}
	g := e.Group("/embed")
	g.GET("", w.page)
	g.GET("/widget.js", w.static("widget.js", "text/javascript; charset=utf-8"))
	g.GET("/widget.css", w.static("widget.css", "text/css; charset=utf-8"))
	api := g.Group("/api", apiHeaders)
	api.POST("/session", w.signIn)
	api.GET("/events", w.requireBearer, w.events)
	api.POST("/action", w.requireBearer, w.action)
	e.POST("/api/v1/embed/tokens", d.RequireAdmin, w.postToken)
	return w
}

// Close ends the event streams so that the HTTP server can drain.
func (w *Widget) Close() {
	w.closeOnce.Do(func() { close(w.done) })
}

//go:embed static templates
var files goembed.FS

var pageTemplates = template.Must(template.ParseFS(files, "templates/*.html"))

// pageData is what the widget's page renders.
type pageData struct {
	Origin string // the host's origin, where the page's script posts
	Reason string // why the page is refused
}

// page serves the widget to an allowed origin, and a refusal to others.
func (w *Widget) page(c *gin.Context) {
	origins := c.QueryArray("origin")
	raw := ""
	if len(origins) > 0 {
		raw = origins[0]
	}
	status, why := http.StatusOK, ""
	switch {
	case len(origins) == 0 || raw == "":
		status, why = http.StatusForbidden, "The origin query parameter is missing: frame /embed?origin=<your page's origin>, e.g. /embed?origin=https://crm.example.com."
	case len(origins) > 1:
		status, why = http.StatusForbidden, "The origin query parameter is given more than once: give it once."
	default:
		if p := originProblem(raw); p != "" {
			status, why = http.StatusForbidden, "The origin "+truncate(raw, 200)+" is not a web origin: "+p+"."
		} else if w.d.Directory == nil {
			status, why = http.StatusServiceUnavailable, "This node cannot read its configuration: try again later."
		} else if allowed, err := w.allowed(c.Request.Context(), raw); err != nil {
			w.d.Log.Error("embed: read allowed origins", "error", err)
			status, why = http.StatusServiceUnavailable, "This node cannot read its configuration: try again later."
		} else if !allowed {
			status, why = http.StatusForbidden, "The origin "+raw+" is not allowed to embed this widget: an administrator adds it to embed.allowed_origins."
		}
	}
	if why != "" {
		w.d.Log.Warn("embed: page refused", "origin", truncate(raw, 200), "status", status, "reason", why,
			"remote", c.RemoteIP(), "referer", truncate(c.GetHeader("Referer"), 200))
		setPageHeaders(c, "")
		w.render(c, status, "refused.html", pageData{Reason: why})
		return
	}
	setPageHeaders(c, raw)
	w.render(c, http.StatusOK, "page.html", pageData{Origin: raw})
}

// allowed reports whether origin is in the snapshot's
// embed.allowed_origins, read now: a new revision applies at the next
// page load.
func (w *Widget) allowed(ctx context.Context, origin string) (bool, error) {
	e, err := w.d.Directory.Embed(ctx)
	if err != nil {
		return false, err
	}
	for _, o := range e.AllowedOrigins {
		if o == origin {
			return true, nil
		}
	}
	return false, nil
}

func (w *Widget) render(c *gin.Context, status int, name string, data pageData) {
	var buf bytes.Buffer
	if err := pageTemplates.ExecuteTemplate(&buf, name, data); err != nil {
		w.d.Log.Error("embed: render page", "page", name, "error", err)
		c.String(http.StatusInternalServerError, "could not render the page; see the node's log")
		return
	}
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
}

// static serves one of the widget's embedded files.
func (w *Widget) static(name, contentType string) gin.HandlerFunc {
	data, err := fs.ReadFile(files, "static/"+name)
	if err != nil {
		panic(err) // embedded at build time
	}
	return func(c *gin.Context) {
		h := c.Writer.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "public, max-age=300")
		c.Data(http.StatusOK, contentType, data)
	}
}

// PageCSP is the Content-Security-Policy of the widget's page framed by
// origin ("" for a refusal: no framing at all).
func PageCSP(origin string) string {
	ancestors := "'none'"
	if origin != "" {
		ancestors = origin
	}
	return "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
		"frame-ancestors " + ancestors + "; base-uri 'none'; form-action 'self'"
}

// setPageHeaders sets the page's security headers: framing only by
// origin; X-Frame-Options DENY for a refusal (an allowed page has none:
// it cannot name an origin, and frame-ancestors rules in every browser
// that supports it).
func setPageHeaders(c *gin.Context, origin string) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", PageCSP(origin))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	if origin == "" {
		h.Set("X-Frame-Options", "DENY")
	}
}

// apiHeaders: the API's answers are data, never a page.
func apiHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	c.Next()
}

// errorBody is the API's error: what was wrong and what to do, and no
// details (the shape of every API error of the node, docs/openapi.yaml).
type errorBody struct {
	Error   string     `json:"error"`
	Details []struct{} `json:"details"`
}

func newErrorBody(msg string) errorBody { return errorBody{Error: msg, Details: []struct{}{}} }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// jsonRequest reports whether the request says its body is JSON (which a
// cross-origin page cannot send without a CORS preflight, and this API
// answers none).
func jsonRequest(c *gin.Context) bool {
	ct := c.GetHeader("Content-Type")
	mt, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "application/json")
}
