package ui

import (
	"context"
	"fmt"
	"github.com/outpost-voice/outpost/appliance/web/lockout"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/crypto/bcrypt"

	"github.com/outpost-voice/outpost/account"
)

// Messages of the sign-in page. A wrong password and an unknown username
// are told alike, and so is a lockout of either.
const (
	msgWrong  = "Wrong username or password."
	msgLocked = "Too many failed sign-ins: sign-in is paused for this username or from this address. Try again in %d minutes."
)

// dummyHash is compared against when the username is unknown, so that an
// unknown user takes as long as a wrong password. Made at first use: the
// CLI, which links this package, need not pay for it.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("no user has this password"), dummyCost)
	return h
})

// Limits of the sign-in form.
const (
	maxSignInBody = 8 << 10
	maxUsername   = 64
)

// dummyCost is the dummy hash's work factor: that of the demo and of
// htpasswd -B (a variable for the tests).
var dummyCost = bcrypt.DefaultCost

// loginForm is the sign-in page's data.
type loginForm struct {
	Token    string // the double-submit token of the form
	Username string
}

func (u *UI) loginPage(c *gin.Context) {
	if _, ok := u.current(c, false); ok {
		c.Redirect(http.StatusSeeOther, "/")
		return
	}
	u.renderLogin(c, http.StatusOK, "", "")
}

// renderLogin renders the sign-in form with a fresh form token.
func (u *UI) renderLogin(c *gin.Context, status int, username, msg string) {
	token := randomToken()
	setCookie(c, loginCookie, token, int(loginFormLifetime/time.Second))
	u.render(c, status, "login", page{Title: "Sign in", Message: msg, Body: loginForm{Token: token, Username: username}})
}

// signIn checks a username and password against the snapshot's admins and
// the break-glass admin, with lockout, and starts a session.
func (u *UI) signIn(c *gin.Context) {
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxSignInBody)
	username := c.PostForm("username")
	password := c.PostForm("password")
	cookie, _ := c.Cookie(loginCookie)
	if !tokenEqual(cookie, c.PostForm(CSRFField)) || !sameOrigin(c.Request) {
		u.d.Log.Warn("ui: sign-in refused: bad or missing form token", "remote", c.RemoteIP(), "origin", c.GetHeader("Origin"))
		u.refuse(c, http.StatusForbidden, "Request refused",
			"Refused: this sign-in form is stale or came from another site. Reload the sign-in page and try again.")
		return
	}
	ip := c.RemoteIP()
	keys := []string{lockout.IPKey(ip)}
	if len(username) <= maxUsername { // a longer one is no login: not worth a key
		keys = append(keys, lockout.UserKey(username))
	}
	logUser := truncate(username, maxUsername)
	if locked, until := u.lockouts.Locked(keys...); locked {
		u.d.Log.Warn("ui: sign-in refused: locked out", "user", logUser, "remote", ip, "until", until.UTC().Format(time.RFC3339))
		u.renderLogin(c, http.StatusTooManyRequests, username, lockedMessage(u.d.Now(), until))
		return
	}
	role, via, ok := u.verify(c.Request.Context(), username, password)
	if !ok {
		lockedNow := u.lockouts.Fail(keys...)
		u.d.Log.Warn("ui: sign-in failed", "user", logUser, "remote", ip, "locked_out", lockedNow)
		if lockedNow {
			u.renderLogin(c, http.StatusTooManyRequests, username, lockedMessage(u.d.Now(), u.d.Now().Add(LockoutFor)))
			return
		}
		u.renderLogin(c, http.StatusUnauthorized, username, msgWrong)
		return
	}
	u.lockouts.Succeed(lockout.UserKey(username))
	sess := u.sessions.create(username, role)
	setCookie(c, SessionCookie, sess.id, 0)
	setCookie(c, loginCookie, "", -1)
	u.d.Log.Info("ui: signed in", "user", logUser, "role", role, "via", via, "remote", ip)
	u.redirect(c, "/")
}

func lockedMessage(now, until time.Time) string {
	mins := int(until.Sub(now).Round(time.Minute) / time.Minute)
	return fmt.Sprintf(msgLocked, max(mins, 1))
}

// verify checks the password of username: the snapshot's admins first,
// then the break-glass admin. It returns the role and where the login
// came from. It always compares one bcrypt hash at least.
func (u *UI) verify(ctx context.Context, username, password string) (role, via string, ok bool) {
	if username == "" || password == "" || len(username) > maxUsername || len(password) > 72 {
		_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return "", "", false
	}
	compared := false
	if u.d.Admins != nil {
		admins, err := u.d.Admins(ctx)
		if err != nil {
			u.d.Log.Error("ui: read admins", "error", err)
		}
		for _, a := range admins {
			if a.Username == username {
				compared = true
				if bcrypt.CompareHashAndPassword([]byte(a.Bcrypt), []byte(password)) == nil {
					return a.Role, "snapshot", true
				}
			}
		}
	}
	if u.d.BreakGlassFile != "" {
		bg, err := ReadBreakGlass(u.d.BreakGlassFile)
		if err != nil {
			u.d.Log.Error("ui: break-glass admin unusable", "error", err)
		}
		if bg != nil && bg.Username == username {
			compared = true
			if bcrypt.CompareHashAndPassword([]byte(bg.Bcrypt), []byte(password)) == nil {
				return account.RoleAdmin, "break-glass", true
			}
		}
	}
	if !compared {
		_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
	}
	return "", "", false
}

// signOut ends the session (the CSRF guard has checked the form).
func (u *UI) signOut(c *gin.Context) {
	if sess, ok := u.current(c, false); ok {
		u.sessions.delete(sess.id)
		u.d.Log.Info("ui: signed out", "user", truncate(sess.user, maxUsername), "remote", c.RemoteIP())
	}
	setCookie(c, SessionCookie, "", -1)
	u.redirect(c, "/login")
}

// redirect after a form: 303 for browsers, HX-Redirect (a full page load)
// for htmx, so that a new page starts with a clean state.
func (u *UI) redirect(c *gin.Context, to string) {
	c.Header("Cache-Control", "no-store")
	if c.GetHeader("HX-Request") != "" {
		c.Header("HX-Redirect", to)
		c.Status(http.StatusNoContent)
		return
	}
	c.Redirect(http.StatusSeeOther, to)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
