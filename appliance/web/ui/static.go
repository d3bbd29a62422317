package ui

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// The static files: our CSS and JS, and htmx when scripts/deps.sh has put
// it in static/vendor/ (git-ignored) before the build.
//
//go:embed static
var staticFS embed.FS

// HTMXVersion and HTMXSHA256 pin the vendored htmx (npm htmx.org,
// dist/htmx.min.js); scripts/deps.sh checks the same sum before copying.
const (
	HTMXVersion = "2.0.11"
	HTMXSHA256  = "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"
	htmxPath    = "static/vendor/htmx.min.js"
)

// vendoredHTMX reports whether the embedded htmx is there and is the
// pinned one. Without it the pages work with full loads.
func vendoredHTMX(log *slog.Logger) bool {
	data, err := staticFS.ReadFile(htmxPath)
	if err != nil {
		log.Info("ui: htmx not vendored in this build (run make deps); pages load in full")
		return false
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != HTMXSHA256 {
		log.Error("ui: vendored htmx does not match its pinned SHA-256; not served", "sha256", got, "want", HTMXSHA256)
		return false
	}
	return true
}

var staticFiles = func() http.Handler {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err)
	}
	return http.StripPrefix("/static/", http.FileServerFS(sub))
}()

// serveStatic serves the embedded files (never a directory listing).
func (u *UI) serveStatic(c *gin.Context) {
	p := c.Param("filepath")
	if strings.HasSuffix(p, "/") || strings.HasSuffix(p, ".md") || (p == "/vendor/htmx.min.js" && !u.htmx) {
		c.AbortWithStatus(http.StatusNotFound)
		return
	}
	c.Header("Cache-Control", "public, max-age=300")
	staticFiles.ServeHTTP(c.Writer, c.Request)
}
