package ui

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// Cookie names.
const (
	// SessionCookie carries the session id.
	SessionCookie = "outpost_session"
	// loginCookie carries the sign-in form's token before there is a
	// session (a double-submit token against login CSRF).
	loginCookie = "outpost_login"
)

// loginFormLifetime is how long a sign-in form can be submitted.
const loginFormLifetime = 30 * time.Minute

// setCookie writes an HttpOnly, SameSite=Strict cookie for the whole site,
// Secure when the request came over TLS. maxAge 0 makes a browser-session
// cookie, negative deletes it.
func setCookie(c *gin.Context, name, value string, maxAge int) {
	http.SetCookie(c.Writer, &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   c.Request.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
}

// current returns the request's live session; touch counts the request as
// the user's activity.
func (u *UI) current(c *gin.Context, touch bool) (session, bool) {
	id, err := c.Cookie(SessionCookie)
	if err != nil {
		return session{}, false
	}
	return u.sessions.get(id, touch)
}

const sessionKey = "ui.session"

// requirePage lets signed-in people through and sends others to /login.
func (u *UI) requirePage(c *gin.Context) {
	sess, ok := u.current(c, true)
	if !ok {
		c.Header("Cache-Control", "no-store")
		c.Redirect(http.StatusSeeOther, "/login")
		c.Abort()
		return
	}
	c.Set(sessionKey, sess)
	c.Next()
}

// requireStream is requirePage for the live stream: 401 JSON, and no
// activity counted (an open page is not a person using it).
func (u *UI) requireStream(c *gin.Context) {
	sess, ok := u.current(c, false)
	if !ok {
		c.AbortWithStatusJSON(http.StatusUnauthorized, errorBody{Error: "not signed in, or the session ended: sign in at /login", Details: []any{}})
		return
	}
	c.Set(sessionKey, sess)
	c.Next()
}

func sessionOf(c *gin.Context) session {
	v, _ := c.Get(sessionKey)
	s, _ := v.(session)
	return s
}

// errorBody is the UI's JSON error.
type errorBody struct {
	Error   string `json:"error"`
	Details []any  `json:"details"` // always [] here: the API's error shape
}
