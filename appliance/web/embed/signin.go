package embed

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/outpost-voice/outpost/appliance/web/lockout"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/store"
)

// Limits of the sign-in request.
const (
	maxSignInBody = 8 << 10
	maxUsername   = 64
	maxPassword   = 128
)

// Messages of the sign-in. A wrong password and an unknown username are
// told alike, and so is a lockout of either.
const (
	msgWrong      = "Wrong username or password."
	msgWrongToken = "This widget token is not valid: it may have expired, been revoked by a new SIP password, or belong to a user no longer in the account. Ask an administrator for a new one."
	msgLocked     = "Too many failed sign-ins: sign-in is paused for this username or from this address. Try again in %d minutes."
)

// SignInRequest is POST /embed/api/session's body: a SIP username and
// password, or a widget token.
type SignInRequest struct {
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	Token    string `json:"token,omitempty"`
}

// Session answers a sign-in: the bearer token for /embed/api/events and
// /embed/api/action, and who it is for.
type Session struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	User      UserInfo  `json:"user"`
}

// UserInfo is the signed-in user as the widget shows them.
type UserInfo struct {
	Username  string `json:"username"`
	Name      string `json:"name"`
	Extension string `json:"extension"`
}

func userInfo(u account.User) UserInfo {
	return UserInfo{Username: u.SIP.Username, Name: u.Name, Extension: u.Extension}
}

// signIn checks a SIP password against the user's HA1 (or an admin-issued
// token), with lockout, and answers a session token.
func (w *Widget) signIn(c *gin.Context) {
	if !jsonRequest(c) {
		fail(c, http.StatusUnsupportedMediaType, "send the body as JSON, with Content-Type: application/json")
		return
	}
	var req SignInRequest
	if !decodeJSON(c, maxSignInBody, &req) {
		return
	}
	byToken := req.Token != ""
	switch {
	case byToken && (req.Username != "" || req.Password != ""):
		fail(c, http.StatusBadRequest, "send either username and password, or token, not both")
		return
	case !byToken && (req.Username == "" || req.Password == ""):
		fail(c, http.StatusBadRequest, "username and password are required (or a widget token in token)")
		return
	}
	if w.d.Directory == nil {
		fail(c, http.StatusServiceUnavailable, errUnavailable.Error())
		return
	}
	ip := c.RemoteIP()
	keys := []string{lockout.IPKey(ip)}
	if !byToken && len(req.Username) <= maxUsername { // a longer one is no user: not worth a key
		keys = append(keys, lockout.UserKey(req.Username))
	}
	logUser := truncate(req.Username, maxUsername)
	if locked, until := w.lockouts.Locked(keys...); locked {
		w.d.Log.Warn("embed: sign-in refused: locked out", "user", logUser, "remote", ip, "until", until.UTC().Format(time.RFC3339))
		w.refuseLocked(c, until)
		return
	}
	var u account.User
	var err error
	via := "password"
	if byToken {
		via = "token"
		u, err = w.verify(c.Request.Context(), req.Token, kindIssued)
	} else {
		u, err = w.checkPassword(c.Request.Context(), req.Username, req.Password)
	}
	if errors.Is(err, errUnavailable) {
		w.d.Log.Error("embed: sign-in: read the configuration", "error", err)
		fail(c, http.StatusServiceUnavailable, errUnavailable.Error())
		return
	}
	if err != nil {
		lockedNow := w.lockouts.Fail(keys...)
		w.d.Log.Warn("embed: sign-in failed", "user", logUser, "via", via, "remote", ip, "reason", err.Error(), "locked_out", lockedNow)
		if lockedNow {
			w.refuseLocked(c, w.d.Now().Add(LockoutFor))
			return
		}
		c.Header("WWW-Authenticate", `Bearer realm="outpost-embed"`)
		if byToken {
			fail(c, http.StatusUnauthorized, msgWrongToken)
		} else {
			fail(c, http.StatusUnauthorized, msgWrong)
		}
		return
	}
	if !byToken {
		w.lockouts.Succeed(lockout.UserKey(req.Username))
	}
	tok, exp := w.sign(kindSession, u, SessionTTL)
	w.d.Log.Info("embed: signed in", "user", u.SIP.Username, "via", via, "remote", ip)
	c.JSON(http.StatusOK, Session{Token: tok, ExpiresAt: exp.UTC(), User: userInfo(u)})
}

func (w *Widget) refuseLocked(c *gin.Context, until time.Time) {
	mins := max(int(until.Sub(w.d.Now()).Round(time.Minute)/time.Minute), 1)
	c.Header("Retry-After", fmt.Sprint(mins*60))
	fail(c, http.StatusTooManyRequests, fmt.Sprintf(msgLocked, mins))
}

// dummyHA1 is compared against when the username is unknown, so that an
// unknown user costs what a wrong password does.
const dummyHA1 = "00000000000000000000000000000000"

// checkPassword checks username's SIP password against their HA1 (MD5,
// or SHA-256 when the user has no MD5 one) in the account's realm.
func (w *Widget) checkPassword(ctx context.Context, username, password string) (account.User, error) {
	wrong := errors.New("wrong username or password")
	if len(username) > maxUsername || len(password) > maxPassword {
		return account.User{}, wrong
	}
	acct, err := w.d.Directory.Account(ctx)
	if err != nil {
		return account.User{}, fmt.Errorf("%w: %v", errUnavailable, err)
	}
	u, err := w.d.Directory.UserByUsername(ctx, username)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return account.User{}, fmt.Errorf("%w: %v", errUnavailable, err)
	}
	alg, want := account.DigestMD5, strings.ToLower(u.SIP.HA1MD5)
	if want == "" && u.SIP.HA1SHA256 != "" {
		alg, want = account.DigestSHA256, strings.ToLower(u.SIP.HA1SHA256)
	}
	known := err == nil && want != ""
	if !known {
		want = dummyHA1
	}
	got := account.HA1(alg, username, acct.SIPRealm, password)
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 || !known {
		return account.User{}, wrong
	}
	return u, nil
}

const userCtxKey = "embed.user"

// requireBearer lets requests with a valid session token through, with
// their user; others get 401.
func (w *Widget) requireBearer(c *gin.Context) {
	tok, ok := bearer(c)
	if !ok {
		c.Header("WWW-Authenticate", `Bearer realm="outpost-embed"`)
		fail(c, http.StatusUnauthorized, "sign in first: send Authorization: Bearer <token from POST /embed/api/session>")
		return
	}
	u, err := w.verify(c.Request.Context(), tok, kindSession)
	if errors.Is(err, errUnavailable) {
		w.d.Log.Error("embed: check a token: read the configuration", "error", err)
		fail(c, http.StatusServiceUnavailable, errUnavailable.Error())
		return
	}
	if err != nil {
		c.Header("WWW-Authenticate", `Bearer realm="outpost-embed", error="invalid_token"`)
		fail(c, http.StatusUnauthorized, err.Error())
		return
	}
	c.Set(userCtxKey, u)
	c.Next()
}

func bearer(c *gin.Context) (string, bool) {
	got, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	got = strings.TrimSpace(got)
	return got, ok && got != ""
}

func userOf(c *gin.Context) account.User {
	v, _ := c.Get(userCtxKey)
	u, _ := v.(account.User)
	return u
}

func fail(c *gin.Context, status int, msg string) {
	c.AbortWithStatusJSON(status, newErrorBody(msg))
}

// decodeJSON reads a JSON body of at most limit bytes into v, strictly
// (unknown fields, trailing data: 400). It answers the request itself
// when it returns false.
func decodeJSON(c *gin.Context, limit int64, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		fail(c, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes", limit))
		return false
	}
	if err != nil {
		fail(c, http.StatusBadRequest, "could not read the body: "+err.Error())
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		fail(c, http.StatusBadRequest, "the body is not the JSON expected: "+err.Error())
		return false
	}
	if dec.More() {
		fail(c, http.StatusBadRequest, "the body has data after its JSON object")
		return false
	}
	return true
}

// UserOfBearer is the user a widget session token names (for the API's
// call endpoints, which take a user's token as well as the admin's).
func (w *Widget) UserOfBearer(ctx context.Context, tok string) (account.User, error) {
	return w.verify(ctx, tok, kindSession)
}
