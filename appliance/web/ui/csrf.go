package ui

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"
)

// CSRFField is the hidden form field carrying the CSRF token; scripts may
// send it in the CSRFHeader header instead.
const (
	CSRFField  = "csrf_token"
	CSRFHeader = "X-CSRF-Token"
)

// csrfRefusal is what a refused request is told.
const csrfRefusal = "Refused: this request did not carry this session's CSRF token " +
	"(a form from an old page, or a request from another site). Reload the page and try again."

// csrfGuard checks every state-changing request made with a live session
// cookie: it must carry the session's CSRF token, and come from this
// origin if it says where it comes from. Requests with an Authorization
// header (machines, bearer tokens) and without a live session are not
// checked here; their own authentication applies. The sign-in form has
// its own token (signIn).
func (u *UI) csrfGuard(c *gin.Context) {
	if !stateChanging(c.Request.Method) || c.GetHeader("Authorization") != "" || c.Request.URL.Path == "/login" {
		c.Next()
		return
	}
	sess, ok := u.current(c, false)
	if !ok {
		c.Next()
		return
	}
	got := c.GetHeader(CSRFHeader)
	if got == "" {
		got = c.PostForm(CSRFField)
	}
	if !tokenEqual(got, sess.csrf) || !sameOrigin(c.Request) {
		u.d.Log.Warn("ui: request refused: bad or missing CSRF token",
			"method", c.Request.Method, "path", c.Request.URL.Path, "user", sess.user,
			"remote", c.RemoteIP(), "origin", c.GetHeader("Origin"))
		u.refuse(c, http.StatusForbidden, "Request refused", csrfRefusal)
		return
	}
	c.Next()
}

func stateChanging(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// sameOrigin is false when the request's Origin header names another host.
// Browsers send Origin with every cross-origin POST; an absent one is not
// evidence either way (the token decides).
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	if o == "null" {
		return false
	}
	ou, err := url.Parse(o)
	return err == nil && strings.EqualFold(ou.Host, r.Host)
}

// refuse answers an error page to browsers and {"error"} JSON to others.
func (u *UI) refuse(c *gin.Context, status int, title, msg string) {
	setSecurityHeaders(c)
	c.Header("Cache-Control", "no-store")
	if !wantsHTML(c.Request) {
		c.AbortWithStatusJSON(status, errorBody{Error: msg, Details: []any{}})
		return
	}
	u.render(c, status, "refused", page{Title: title, Message: msg})
	c.Abort()
}

// wantsHTML: a browser's navigation, form post or htmx request.
func wantsHTML(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	return strings.Contains(r.Header.Get("Accept"), "text/html") ||
		r.Header.Get("HX-Request") != "" ||
		strings.HasPrefix(ct, "application/x-www-form-urlencoded") ||
		strings.HasPrefix(ct, "multipart/form-data")
}
