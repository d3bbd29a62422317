package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/outpost-voice/outpost/appliance/cluster"
	"github.com/outpost-voice/outpost/appliance/store"
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
	// DataDir is the node's data directory, where the web UI's
	// break-glass admin lives (ui.BreakGlassFile); empty: no break-glass
	// admin.
	DataDir string
	// Config is the node's effective configuration, for the UI's Settings
	// page (shown Redacted); nil: the page says it is not available.
	Config func() config.Config
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
	http    *http.Server
	started time.Time
}

// New builds the routes.
func New(d Deps) *Server {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.Use(gin.Recovery(), requestLog(d.Log))
	s := &Server{deps: d, engine: e, started: time.Now()}
	s.http = &http.Server{
		Handler:           e,
		ReadHeaderTimeout: 10 * time.Second,
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
	s.http.RegisterOnShutdown(ui.Mount(e, s.uiDeps()).Close)

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
	admin.GET("/journal", s.getJournal)
	admin.GET("/sdgs", s.getGroups)
	admin.GET("/sdgs/overrides", s.getOverrides)
	admin.GET("/calls", s.getCalls)
	admin.GET("/bindings", s.getBindings)
	// Profiles for diagnosing a node in the field (bearer token only).
	admin.GET("/debug/pprof/*profile", gin.WrapF(pprofHandler))

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

// apiError is every error body of the API.
type apiError struct {
	Error    string `json:"error"`
	Problems any    `json:"problems,omitempty"`
}

func fail(c *gin.Context, status int, format string, args ...any) {
	c.AbortWithStatusJSON(status, apiError{Error: fmt.Sprintf(format, args...)})
}
