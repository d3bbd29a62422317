package web

import (
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// requireToken checks the bearer token on admin endpoints.
func (s *Server) requireToken(c *gin.Context) {
	got, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	if !ok || s.deps.AdminToken == "" ||
		subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(s.deps.AdminToken)) != 1 {
		c.Header("WWW-Authenticate", `Bearer realm="outpost"`)
		fail(c, http.StatusUnauthorized, "missing or wrong bearer token: send Authorization: Bearer <token from http.admin_token_file>")
		return
	}
	c.Next()
}
