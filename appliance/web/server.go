package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/cluster"
	"github.com/outpost-voice/outpost/appliance/store"
	"github.com/outpost-voice/outpost/appliance/web/embed"
	"github.com/outpost-voice/outpost/appliance/web/ui"
	"github.com/outpost-voice/outpost/config"
	"github.com/outpost-voice/outpost/docs"
)

// Cluster is what the API needs from the node's Raft cluster.
type Cluster interface {
	Apply(ctx context.Context, cmd []byte) (cluster.ApplyResult, error)
	ApplyBatched(ctx context.Context, cmd []byte) (cluster.ApplyResult, error)
	IsLeader() bool
	Leader() (id, raftAddr string)
	HasQuorum() bool
	Members() ([]cluster.Member, error)
	AddVoter(id, raftAddr string) error
	RemoveServer(id string) error
}

// Deps wires the server to the node.
type Deps struct {
	NodeID   string
	Site     string
	CloudURL string
	// Cloud is the control plane's status as this node sees it; nil (or a
	// nil answer) when the node is not paired: the status then shows
	// CloudURL only.
	Cloud func(ctx context.Context) *CloudStatus
	// Push receives the cloud's signed pushes (protocol.PathPushReceiver);
	// nil when the node is not paired (404).
	Push       http.Handler
	AdminToken string
	Cluster    Cluster
	Reader     *store.Reader
	// Healthy reports whether a member answered its health probe recently.
	Healthy func(id string) bool
	// Registrations counts live registrations, in all and per site; nil
	// reports none.
	Registrations func(ctx context.Context) (int, map[string]int, error)
	// JournalPending counts outage-journal records not yet uploaded to the
	// cloud; nil reports none.
	JournalPending func(ctx context.Context) (int, error)
	// VoicemailPending counts voicemail messages not yet uploaded to the
	// cloud; nil reports none.
	VoicemailPending func(ctx context.Context) (int, error)
	// ActiveCalls counts connected calls on this node; nil reports none.
	ActiveCalls func() int
	// Groups is every SDG with its members' live state (a JSON value:
	// calls.GroupStatus); nil reports none.
	Groups func(ctx context.Context) (any, error)
	// Calls is the calls in progress on this node with their path through
	// SDGs and IVRs (calls.CallStatus); nil reports none.
	Calls func() any
	// Trunks is the health of the SBC trunks as this node probes them;
	// nil reports none.
	Trunks func() []TrunkStatus
	// PromptsMissing lists the prompt names that fall back to a built-in
	// prompt on this node (status.prompts_missing); nil reports none.
	PromptsMissing func() []string
	// VoicemailAudio is a voicemail message's WAV by sha256, served to the
	// other nodes (nil: none).
	VoicemailAudio func(sha256 string) ([]byte, error)
	// ParkSlots is the park slots of a site this node holds, served to
	// the other nodes (nil: none).
	ParkSlots func(site string) []ParkSlot
	// HTTPSAddr is the HTTPS listener's bound address (status.https_addr);
	// empty when http.tls_listen is off.
	HTTPSAddr string
	// DataDir is the node's data directory, where the web UI's
	// break-glass admin lives (ui.BreakGlassFile); empty: no break-glass
	// admin.
	DataDir string
	// Config is the node's effective configuration, for the UI's Settings
	// page (shown Redacted); nil: the page says it is not available.
	Config func() config.Config
	// Conferences acts on calls' invitations and owners (*calls.B2BUA);
	// nil: those endpoints answer 503.
	Conferences Conferences
	// EmbedCalls is the call engine the call widget (/embed) acts through
	// (*calls.B2BUA); nil: the widget's page and sign-in work, its event
	// stream and actions answer 503.
	EmbedCalls embed.Backend
	// EmbedKey signs the call widget's tokens, the same on every node of
	// the cluster (derived from the cluster token); empty: a random key
	// per process (tokens die with it and work on this node only).
	EmbedKey []byte
	// Ready returns nil once the node can serve (store open, leader known,
	// listeners up), else why not.
	Ready    func() error
	Registry *prometheus.Registry
	Log      *slog.Logger
}

// Server is the node's HTTP server.
type Server struct {
	deps    Deps
	engine  *gin.Engine
	widget  *embed.Widget
	http    *http.Server
	started time.Time
}

// New builds the routes.
func New(d Deps) *Server {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.Use(gin.CustomRecoveryWithWriter(nil, recovered(d.Log)), requestLog(d.Log), hsts)
	// A path no route serves is 404, a method a path does not take 405
	// (with Allow): under /api/v1 with the API's error body.
	e.HandleMethodNotAllowed = true
	e.NoRoute(unrouted)
	e.NoMethod(unrouted)
	s := &Server{deps: d, engine: e, started: time.Now()}
	s.http = &http.Server{
		Handler:           e,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(d.Log.Handler(), slog.LevelDebug), // TLS handshake errors and the like
		IdleTimeout:       120 * time.Second,
	}
	s.routes()
	return s
}

func (s *Server) routes() {
	e := s.engine
	e.GET("/livez", s.livez)
	e.GET("/healthz", s.livez)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", gin.WrapH(metricsHandler(s.deps.Registry)))
	// The web UI (/, /login, /ui/events, /static/); from here on, requests
	// made with its session cookie must carry its CSRF token.
	uiDeps := s.uiDeps()
	uiDeps.WidgetToken = s.uiWidgetToken
	s.http.RegisterOnShutdown(ui.Mount(e, uiDeps).Close)
	// The call widget (/embed, /embed/api/, POST /api/v1/embed/tokens).
	s.widget = embed.Mount(e, s.embedDeps())
	s.http.RegisterOnShutdown(s.widget.Close)

	api := e.Group("/api/v1")
	api.GET("/status", s.getStatus)
	api.GET("/openapi.yaml", func(c *gin.Context) { c.Data(http.StatusOK, "application/yaml", docs.OpenAPI) })
	if s.deps.Push != nil {
		// Signed by the cloud (not the admin token): cloudsync checks it.
		api.POST("/cloud/push", gin.WrapH(s.deps.Push))
	}

	admin := api.Group("", s.requireToken)
	admin.GET("/snapshot", s.getSnapshot)
	admin.GET("/cluster/members", s.getMembers)
	admin.GET("/cluster/voicemail/:hash", s.getVoicemailAudio)
	admin.GET("/cluster/park/:site", s.getParkSlots)
	admin.GET("/journal", s.getJournal)
	admin.GET("/sdgs", s.getGroups)
	admin.GET("/sdgs/overrides", s.getOverrides)
	admin.GET("/calls", s.getCalls)
	admin.GET("/bindings", s.getBindings)
	// Profiles for diagnosing a node in the field (bearer token only).
	admin.GET("/debug/pprof/*profile", gin.WrapF(pprofHandler))

	// A call's invitations and owner: its owner's widget token or the admin's.
	owned := api.Group("/calls/:id", s.requireOwnerOrAdmin)
	owned.POST("/invitations", s.postInvitation)
	owned.DELETE("/invitations/:inv", s.deleteInvitation)
	owned.POST("/invitations/:inv/retry", s.retryInvitation)
	owned.POST("/owner", s.postOwner)
	owned.GET("/invite-info", s.getInviteInfo)
	owned.POST("/sms", s.postSMS)

	writes := admin.Group("", s.forwardToLeader)
	writes.POST("/snapshot", s.postSnapshot)
	writes.POST("/cluster/join", s.postJoin)
	writes.POST("/cluster/leave", s.postLeave)
	writes.POST("/cluster/members", s.postMember)
	writes.POST("/mode", s.postMode)
	writes.POST("/cluster/apply", s.postApply)
	writes.PUT("/sdgs/:id/override", s.putOverride)
	writes.DELETE("/sdgs/:id/override", s.deleteOverride)
}

// embedDeps is what the call widget needs from the node.
func (s *Server) embedDeps() embed.Deps {
	d := embed.Deps{Calls: s.deps.EmbedCalls, Key: s.deps.EmbedKey, RequireAdmin: s.requireToken, Log: s.deps.Log}
	if s.deps.Reader != nil {
		d.Directory = s.deps.Reader
	}
	return d
}

// Handler is the routed handler, for tests.
func (s *Server) Handler() http.Handler { return s.engine }

// Serve serves HTTP on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve http: %w", err)
	}
	return nil
}

// Shutdown stops accepting and drains requests in flight until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.http.Shutdown(ctx); err != nil {
		return fmt.Errorf("shut down http: %w", err)
	}
	return nil
}

// hsts tells a browser that reached the node over HTTPS to come back over
// HTTPS only, for a year. Over plain HTTP it is not sent: it would mean
// nothing there (RFC 6797 §7.2), and the plain listener stays usable.
func hsts(c *gin.Context) {
	if c.Request.TLS != nil {
		c.Header("Strict-Transport-Security", "max-age=31536000")
	}
	c.Next()
}

func requestLog(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		level := slog.LevelDebug
		if st := c.Writer.Status(); st >= 500 && st != http.StatusServiceUnavailable {
			level = slog.LevelWarn // 503s are readiness probes and elections: expected
		}
		log.Log(c.Request.Context(), level, "http request",
			"method", c.Request.Method, "path", c.Request.URL.Path,
			"status", c.Writer.Status(), "duration_ms", time.Since(start).Milliseconds(),
			"remote", c.ClientIP())
	}
}

// apiError is every error body of the API: one line saying what was
// wrong and what to do, and the details behind it, never null ([] when
// there is nothing more to say).
type apiError struct {
	Error   string        `json:"error"`
	Details []ErrorDetail `json:"details"`
}

// ErrorDetail is one item of an error's details. A validation problem (an
// account.Problem) names the snapshot path it is about; a detail about no
// path in particular has none.
type ErrorDetail struct {
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

func (d ErrorDetail) String() string {
	if d.Path == "" {
		return d.Message
	}
	return d.Path + ": " + d.Message
}

// problemDetails lists validation problems as details, in their order.
func problemDetails(ps []account.Problem) []ErrorDetail {
	out := make([]ErrorDetail, len(ps))
	for i, p := range ps {
		out[i] = ErrorDetail{Path: p.Path, Message: p.Message}
	}
	return out
}

var newlines = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ")

// newAPIError is the body for msg (kept on one line) and details.
func newAPIError(msg string, details []ErrorDetail) apiError {
	if details == nil {
		details = []ErrorDetail{}
	}
	return apiError{Error: newlines.Replace(msg), Details: details}
}

// fail answers status with the error body and no details, and stops the
// request's handlers.
func fail(c *gin.Context, status int, format string, args ...any) {
	failDetails(c, status, nil, format, args...)
}

// failDetails is fail with details.
func failDetails(c *gin.Context, status int, details []ErrorDetail, format string, args ...any) {
	c.AbortWithStatusJSON(status, newAPIError(fmt.Sprintf(format, args...), details))
}

// isAPI: path is the API's (its errors have the API's body).
func isAPI(path string) bool {
	return path == "/api/v1" || strings.HasPrefix(path, "/api/v1/")
}

// unrouted answers, under /api/v1, a path no route serves (404) or a
// method the path does not take (405, gin has set Allow). Elsewhere gin's
// plain-text answer stands.
func unrouted(c *gin.Context) {
	r := c.Request
	switch {
	case !isAPI(r.URL.Path):
	case c.Writer.Status() == http.StatusMethodNotAllowed:
		fail(c, http.StatusMethodNotAllowed, "%s %s: method not allowed: use %s", r.Method, r.URL.Path, c.Writer.Header().Get("Allow"))
	default:
		fail(c, http.StatusNotFound, "%s %s: no such endpoint: the API's paths are in /api/v1/openapi.yaml", r.Method, r.URL.Path)
	}
}

// recovered logs a handler's panic and answers 500 (under /api/v1 with
// the API's error body) unless the answer has begun.
func recovered(log *slog.Logger) gin.RecoveryFunc {
	return func(c *gin.Context, v any) {
		log.Error("http handler panicked", "method", c.Request.Method, "path", c.Request.URL.Path,
			"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		switch {
		case c.Writer.Written():
			c.Abort()
		case isAPI(c.Request.URL.Path):
			fail(c, http.StatusInternalServerError, "internal error: the node failed serving this request; its log has the details")
		default:
			c.AbortWithStatus(http.StatusInternalServerError)
		}
	}
}
