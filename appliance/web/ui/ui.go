package ui

import (
	"context"
	"github.com/outpost-voice/outpost/appliance/web/lockout"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/outpost-voice/outpost/account"
)

// Deps is what the UI needs from the node.
type Deps struct {
	// NodeID names the node in page titles.
	NodeID string
	// Status is the node's status now (the facts of /api/v1/status).
	Status func(ctx context.Context) (Status, error)
	// Account is what the status page shows of the snapshot (site names
	// and their phone capacity, trunk names); nil shows IDs only. It is
	// read again only when the status's revision changes.
	Account func(ctx context.Context) (Account, error)
	// Admins is the snapshot's admins (store.Reader.Admins): they sign in
	// from the replicated store, so they work while the cloud is down.
	Admins func(ctx context.Context) ([]account.Admin, error)
	// Bindings is the phones' live bindings whose user, name, extension,
	// contact or user agent contains q (case-insensitive; empty q: all);
	// nil shows none.
	Bindings func(ctx context.Context, q string) ([]Binding, error)
	// Calls is the calls in progress on this node (/api/v1/calls); nil
	// shows none.
	Calls func(ctx context.Context) ([]Call, error)
	// History is the outage journal, newest first: at most limit records
	// after the first offset, and whether older ones follow; nil shows none.
	History func(ctx context.Context, offset, limit int) (recs []CallRecord, more bool, err error)
	// SDGs is every SDG's definition with its members' live state
	// (/api/v1/sdgs); nil shows none.
	SDGs func(ctx context.Context) ([]SDG, error)
	// Users is the snapshot's users, for the SDG override form's choice
	// of user; nil: none to choose.
	Users func(ctx context.Context) ([]account.User, error)
	// Override sets (route non-nil) or clears sdgID's emergency override
	// through the API's own logic (PUT or DELETE
	// /api/v1/sdgs/{id}/override), made by the admin by, and returns its
	// HTTP status; nil: the SDGs page has no override forms.
	Override func(ctx context.Context, sdgID string, route *account.Route, by string) (int, error)
	// Join adds a voter through the API's own join logic
	// (POST /api/v1/cluster/join) and returns its HTTP status; nil: the
	// Cluster page has no form.
	Join func(ctx context.Context, id, raftAddr string) (int, error)
	// WidgetToken issues a call-widget sign-in token (embed.Widget.Issue:
	// POST /api/v1/embed/tokens's logic) for user (an id or SIP username),
	// valid for days (0: the default), asked by the admin by, and returns
	// its HTTP status; nil: the Phones page has no widget token form.
	WidgetToken func(ctx context.Context, user string, days int, by string) (WidgetToken, int, error)
	// InviteInfo is a call's dial-in numbers, PIN and default SMS text
	// (GET /api/v1/calls/{id}/invite-info's logic, as the call's owner)
	// and its HTTP status; nil (or SendSMS nil): no invite panel.
	InviteInfo func(ctx context.Context, callID string) (InviteInfo, int, error)
	// SendSMS sends an SMS invitation to a call (POST
	// /api/v1/calls/{id}/sms's logic, as the call's owner; text "": the
	// default) and returns its HTTP status.
	SendSMS func(ctx context.Context, callID, number, text string) (SMSSent, int, error)
	// Settings is the node's effective configuration as YAML, secrets
	// hidden (config.Config.Redacted); nil: the page says it is unknown.
	Settings func() (string, error)
	// BreakGlassFile is the path of the node's break-glass admin
	// (<data_dir>/breakglass.json); empty: none.
	BreakGlassFile string
	Log            *slog.Logger
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// Tick is how often the live stream looks for changes; 0: a second.
	Tick time.Duration
}

// UI is the mounted web UI.
type UI struct {
	d        Deps
	sessions *sessions
	lockouts *lockout.Tracker
	htmx     bool // the vendored htmx is embedded and matches its pin

	done      chan struct{}
	closeOnce sync.Once

	accountMu  sync.Mutex
	accountRev int64
	account    *Account
}

// Mount adds the UI's routes to e: the status page at /, the Phones,
// Calls, SDGs, Cluster and Settings pages, sign-in and
// sign-out, the live stream at /ui/events and the static files under
// /static/. It also adds, for every route registered after it, the CSRF
// check of requests made with the session cookie (bearer-token requests
// are not checked: they carry no ambient authority). Close ends the live
// streams (call it when the HTTP server shuts down).
func Mount(e *gin.Engine, d Deps) *UI {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Tick <= 0 {
		d.Tick = time.Second
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	u := &UI{
		d:        d,
		sessions: newSessions(d.Now),
		lockouts: lockout.New(d.Now),
		done:     make(chan struct{}),
	}
	u.htmx = vendoredHTMX(d.Log)
	e.Use(u.csrfGuard)
	g := e.Group("", securityHeaders)
	g.GET("/static/*filepath", u.serveStatic)
	g.HEAD("/static/*filepath", u.serveStatic)
	g.GET("/login", u.loginPage)
	g.POST("/login", u.signIn)
	g.POST("/logout", u.signOut)
	g.GET("/", u.requirePage, u.statusPage)
	g.GET("/phones", u.requirePage, u.phonesPage)
	g.POST("/phones/widget-token", u.requirePage, u.issueWidgetToken)
	g.GET("/calls", u.requirePage, u.callsPage)
	g.GET("/calls/:id/invite", u.requirePage, u.invitePage)
	g.POST("/calls/:id/sms", u.requirePage, u.sendSMS)
	g.GET("/sdgs", u.requirePage, u.sdgsPage)
	g.POST("/sdgs/override", u.requirePage, u.overrideSDG)
	g.POST("/sdgs/override/clear", u.requirePage, u.clearOverride)
	g.GET("/cluster", u.requirePage, u.clusterPage)
	g.GET("/cluster/join", u.requirePage, func(c *gin.Context) { c.Redirect(http.StatusSeeOther, "/cluster") })
	g.POST("/cluster/join", u.requirePage, u.joinNode)
	g.GET("/settings", u.requirePage, u.settingsPage)
	g.GET("/ui/events", u.requireStream, u.events)
	return u
}

// Close ends the live streams so that the HTTP server can drain.
func (u *UI) Close() {
	u.closeOnce.Do(func() { close(u.done) })
}

// Sessions counts the sessions held (for tests and metrics).
func (u *UI) Sessions() int { return u.sessions.len() }
