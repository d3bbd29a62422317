package cloud

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

// Body limits.
const (
	maxSnapshotBody  = account.MaxSnapshotBytes // PUT /v1/admin/snapshot
	maxJournalBody   = 16 << 20                 // POST /v1/sync/journal
	maxOverridesBody = 8 << 20                  // POST /v1/sync/overrides
	maxObjectBody    = 4 << 20                  // PUT /v1/admin/{kind}/{id}
	maxSmallBody     = 1 << 20                  // pair, hello, ack, pairing codes
	maxBlobBody      = protocol.MaxBlobBytes    // PUT /v1/admin/blobs/{sha256}
	maxVoicemailBody = 1 << 20                  // POST /v1/sync/voicemail (the audio: protocol.MaxVoicemailAudioBytes)
)

// Config wires a server.
type Config struct {
	Store *Store
	// AdminToken guards /v1/admin; empty refuses every admin request.
	AdminToken string
	Log        *slog.Logger
	// Now is the clock (time.Now when nil): pairing expiry, hello and ack
	// times, push timestamps.
	Now func() time.Time
	// PushClient sends pushes; nil uses a client with PushTimeout.
	PushClient *http.Client
}

// PushTimeout bounds one push to an appliance.
const PushTimeout = 5 * time.Second

// Server is outpost-cloud's HTTP server: the admin API and the appliance
// sync API, and the pusher that wakes appliances on each revision.
type Server struct {
	cfg    Config
	log    *slog.Logger
	engine *gin.Engine
	http   *http.Server

	quit     chan struct{} // closed when shutdown starts: long polls answer at once
	quitOnce sync.Once

	// held, when set (tests), is called when a long poll starts waiting.
	held func()

	pushMu     sync.Mutex
	pushCancel context.CancelFunc // nil until Serve starts the pusher
	pushDone   chan struct{}

	pruneMu     sync.Mutex
	pruneCancel context.CancelFunc // nil until Serve starts the key pruner
	pruneDone   chan struct{}
}

var ginMode sync.Once

// New builds the server's routes. It starts nothing: Serve does.
func New(cfg Config) *Server {
	ginMode.Do(func() { gin.SetMode(gin.ReleaseMode) })
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PushClient == nil {
		cfg.PushClient = &http.Client{Timeout: PushTimeout}
	}
	s := &Server{
		cfg:  cfg,
		log:  cfg.Log.With("component", "cloud_http"),
		quit: make(chan struct{}),
	}
	e := gin.New()
	e.HandleMethodNotAllowed = true
	e.Use(gin.Recovery(), s.requestLog)
	s.engine = e
	s.http = &http.Server{
		Handler:           e,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute, // a 64 MiB snapshot over a slow link
		IdleTimeout:       2 * time.Minute,
		// No WriteTimeout: long polls hold a request up to protocol.MaxWait.
		// Failed TLS handshakes (an appliance that does not trust the
		// certificate) and accept errors, in the server's log.
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.http.RegisterOnShutdown(s.stopLongPolls)
	s.routes()
	return s
}

func (s *Server) routes() {
	e := s.engine
	e.NoRoute(func(c *gin.Context) {
		fail(c, http.StatusNotFound, "no such endpoint: %s %s", c.Request.Method, c.Request.URL.Path)
	})
	e.NoMethod(func(c *gin.Context) {
		fail(c, http.StatusMethodNotAllowed, "method %s not allowed on %s", c.Request.Method, c.Request.URL.Path)
	})
	e.GET("/livez", s.livez)
	e.GET("/healthz", s.livez)

	e.POST(protocol.PathPair, s.postPair)
	e.POST(protocol.PathHello, s.requireAppliance, s.postHello)
	e.GET(protocol.PathSnapshot, s.requireAppliance, s.getSyncSnapshot)
	e.GET(protocol.PathChanges, s.requireAppliance, s.getChanges)
	e.POST(protocol.PathAck, s.requireAppliance, s.postAck)
	e.POST(protocol.PathJournal, s.requireAppliance, s.postJournal)
	e.POST(protocol.PathOverrides, s.requireAppliance, s.postOverrides)
	e.GET(protocol.PathBlobs+":id", s.requireAppliance, s.getBlob)
	e.PUT(protocol.PathVoicemailAudio+":sha256", s.requireAppliance, s.putVoicemailAudio)
	e.POST(protocol.PathVoicemail, s.requireAppliance, s.postVoicemail)

	admin := e.Group("/v1/admin", s.requireAdmin)
	admin.GET("/snapshot", s.getAdminSnapshot)
	admin.PUT("/snapshot", s.putSnapshot)
	admin.POST("/pairing-codes", s.postPairingCode)
	admin.GET("/journal", s.getJournal)
	admin.GET("/overrides", s.getOverrides)
	admin.GET("/appliances", s.getAppliances)
	admin.PUT("/blobs/:id", s.putBlob)
	admin.GET("/blobs/:id", s.getBlob)
	admin.GET("/voicemail", s.getVoicemail)
	admin.GET("/voicemail/:id/audio", s.getVoicemailAudio)
	for _, k := range objectKinds {
		path := "/" + k.name + "/:id"
		if k.name == "prompts" {
			path = "/" + k.name + "/*id" // prompt names have '/' between parts
		}
		admin.GET(path, s.getObject(k))
		admin.PUT(path, s.putObject(k))
		admin.DELETE(path, s.deleteObject(k))
	}
}

// Handler is the routed handler, for tests.
func (s *Server) Handler() http.Handler { return s.engine }

// Serve starts the pusher and the idempotency key pruner, and serves HTTP
// on ln (HTTPS when ln is a crypto/tls listener) until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.startPusher()
	s.startKeyPruner()
	if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve http: %w", err)
	}
	return nil
}

// Shutdown answers the long polls in flight at once, stops accepting,
// drains the requests in flight until ctx ends, and stops the pusher and
// the key pruner.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopLongPolls()
	err := s.http.Shutdown(ctx)
	s.stopPusher()
	s.stopKeyPruner()
	if err != nil {
		return fmt.Errorf("shut down http: %w", err)
	}
	return nil
}

func (s *Server) stopLongPolls() { s.quitOnce.Do(func() { close(s.quit) }) }

func (s *Server) now() time.Time { return s.cfg.Now() }

func (s *Server) livez(c *gin.Context) {
	rev, _ := s.cfg.Store.Current()
	c.JSON(http.StatusOK, gin.H{"status": "alive", "revision": rev})
}

func (s *Server) requestLog(c *gin.Context) {
	start := time.Now()
	c.Next()
	level := slog.LevelDebug
	if c.Writer.Status() >= 500 {
		level = slog.LevelWarn
	}
	s.log.Log(c.Request.Context(), level, "http request",
		"method", c.Request.Method, "path", c.Request.URL.Path, "status", c.Writer.Status(),
		"duration_ms", time.Since(start).Milliseconds(), "appliance", c.GetString(ctxAppliance),
		"remote", c.ClientIP())
}

// fail answers an error: {"error": "..."}.
func fail(c *gin.Context, status int, format string, args ...any) {
	c.AbortWithStatusJSON(status, protocol.Error{Error: fmt.Sprintf(format, args...)})
}

// refuse answers 400 with every problem.
func refuse(c *gin.Context, msg string, problems []protocol.Problem) {
	c.AbortWithStatusJSON(http.StatusBadRequest, protocol.Error{Error: msg, Problems: problems})
}

// fromAccount converts account problems to the wire's.
func fromAccount(ps []account.Problem) []protocol.Problem {
	out := make([]protocol.Problem, len(ps))
	for i, p := range ps {
		out[i] = protocol.Problem{Path: p.Path, Message: p.Message}
	}
	return out
}

// readBody reads the request body up to limit bytes; a larger one answers
// 413.
func readBody(c *gin.Context, limit int64) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		fail(c, http.StatusRequestEntityTooLarge, "request body larger than %d bytes", limit)
		return nil, false
	case err != nil:
		fail(c, http.StatusBadRequest, "read request body: %v", err)
		return nil, false
	}
	return body, true
}

// bearer is the token of an Authorization: Bearer header.
func bearer(c *gin.Context) string {
	tok, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	if !ok {
		return ""
	}
	return strings.TrimSpace(tok)
}

// requireAdmin checks the admin bearer token in constant time.
func (s *Server) requireAdmin(c *gin.Context) {
	tok := bearer(c)
	if tok == "" || s.cfg.AdminToken == "" ||
		subtle.ConstantTimeCompare([]byte(tok), []byte(s.cfg.AdminToken)) != 1 {
		c.Header("WWW-Authenticate", `Bearer realm="outpost-cloud"`)
		fail(c, http.StatusUnauthorized, "missing or wrong admin token: send Authorization: Bearer <token from --admin-token-file>")
		return
	}
	c.Next()
}

// ctxAppliance is the gin context key of the authenticated appliance.
const ctxAppliance = "appliance"

// requireAppliance checks X-Outpost-Appliance and the bearer secret.
func (s *Server) requireAppliance(c *gin.Context) {
	name, secret := c.GetHeader(protocol.HeaderAppliance), bearer(c)
	if name == "" || secret == "" {
		c.Header("WWW-Authenticate", `Bearer realm="outpost-cloud"`)
		fail(c, http.StatusUnauthorized, "missing credentials: send %s: <appliance_id> and Authorization: Bearer <secret> from pairing",
			protocol.HeaderAppliance)
		return
	}
	err := s.cfg.Store.Authenticate(c.Request.Context(), name, secret)
	switch {
	case errors.Is(err, ErrUnauthorized):
		s.log.Warn("appliance refused", "appliance", name, "remote", c.ClientIP())
		c.Header("WWW-Authenticate", `Bearer realm="outpost-cloud"`)
		fail(c, http.StatusUnauthorized, "unknown appliance or wrong secret: pair again with a new code")
		return
	case err != nil:
		fail(c, http.StatusInternalServerError, "authenticate: %v", err)
		return
	}
	c.Set(ctxAppliance, name)
	c.Next()
}
