package ui

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/outpost-voice/outpost/account"
)

// maxQuery bounds the Phones page's search text.
const maxQuery = 128

// Binding is one phone's registration (a row of the Phones page).
type Binding struct {
	User      string // SIP username
	Name      string // the user's name in the snapshot
	Extension string
	Site      string
	Contact   string
	Transport string
	UserAgent string
	Node      string // the node that holds the phone's flow
	Expires   time.Time
	// AfterRecovery: registered or refreshed here since the mode went
	// back to normal (a phone not yet back on the cloud).
	AfterRecovery bool
}

// StillLocal counts the phones registered here after recovery.
func (p phones) StillLocal() int {
	n := 0
	for _, b := range p.Bindings {
		if b.AfterRecovery {
			n++
		}
	}
	return n
}

// WidgetToken is a call-widget sign-in token issued for a user, shown
// once.
type WidgetToken struct {
	Token     string
	UserID    string
	Username  string
	Name      string
	ExpiresAt time.Time
}

// Until is when the token expires, in UTC to the second.
func (w WidgetToken) Until() string { return clock(&w.ExpiresAt) }

// Widget token form limits (embed.DefaultIssuedDays, MaxIssuedDays).
const (
	widgetTokenDays    = 90
	widgetTokenMaxDays = 365
)

// phones is the data of the Phones page.
type phones struct {
	Now      time.Time
	Query    string
	Err      string
	Bindings []Binding
	// The widget token form, for an admin: the users to choose from, the
	// form's values, and the token just issued (shown this once).
	CanIssue  bool
	Users     []account.User
	TokenUser string
	TokenDays string
	Issued    *WidgetToken
}

func (u *UI) phonesPage(c *gin.Context) {
	u.renderPhones(c, http.StatusOK, phones{}, "")
}

// renderPhones renders the Phones page (its search from the query) with
// the widget token form's state in form, and msg as its error.
func (u *UI) renderPhones(c *gin.Context, status int, form phones, msg string) {
	sess := sessionOf(c)
	ctx := c.Request.Context()
	q := strings.TrimSpace(c.Query("q"))
	if len(q) > maxQuery {
		q = q[:maxQuery]
	}
	body := form
	body.Now, body.Query = u.d.Now(), q
	if u.d.Bindings != nil {
		bs, err := u.d.Bindings(ctx, q)
		if err != nil {
			u.d.Log.Warn("ui: read bindings", "error", err)
			body.Err = "The phones cannot be read right now: " + err.Error()
		}
		body.Bindings = bs
	}
	body.CanIssue = u.d.WidgetToken != nil && sess.role == account.RoleAdmin
	if body.CanIssue {
		users, err := readAll(ctx, u, "users", u.d.Users)
		if err != "" && msg == "" {
			msg = err
		}
		body.Users = users
	}
	if body.TokenDays == "" {
		body.TokenDays = strconv.Itoa(widgetTokenDays)
	}
	u.render(c, status, "phones", page{Title: "Phones", Nav: "/phones", User: sess.user, CSRF: sess.csrf, Message: msg, Body: body})
}

// issueWidgetToken issues a call-widget sign-in token for a user through
// the API's logic (Deps.WidgetToken) and shows it once. The page is
// answered directly, never redirected to: the token must not be in a URL.
func (u *UI) issueWidgetToken(c *gin.Context) {
	sess := sessionOf(c)
	form := phones{TokenUser: strings.TrimSpace(c.PostForm("user")), TokenDays: strings.TrimSpace(c.PostForm("ttl_days"))}
	days, err := strconv.Atoi(form.TokenDays)
	switch {
	case u.d.WidgetToken == nil:
		u.renderPhones(c, http.StatusNotFound, form, "This node cannot issue widget tokens from the UI.")
		return
	case sess.role != account.RoleAdmin:
		u.renderPhones(c, http.StatusForbidden, form, "Only an admin may issue a widget token; you are signed in as a viewer.")
		return
	case form.TokenUser == "":
		u.renderPhones(c, http.StatusBadRequest, form, "Choose the user the token is for.")
		return
	case err != nil || days < 1 || days > widgetTokenMaxDays:
		u.renderPhones(c, http.StatusBadRequest, form, "Valid for: a number of days from 1 to 365.")
		return
	}
	tok, status, err := u.d.WidgetToken(c.Request.Context(), form.TokenUser, days, sess.user)
	if err != nil {
		u.d.Log.Warn("ui: widget token refused", "user_id", form.TokenUser, "by", sess.user, "status", status, "error", err)
		if status < 400 {
			status = http.StatusBadGateway
		}
		u.renderPhones(c, status, form, "No token issued: "+err.Error())
		return
	}
	u.d.Log.Info("ui: widget token issued", "user_id", tok.UserID, "by", sess.user, "days", days)
	form.Issued = &tok
	u.renderPhones(c, http.StatusOK, form, "")
}

// ExpiresIn is how long until b expires, for the page.
func (p phones) ExpiresIn(b Binding) string {
	return formatDuration(b.Expires.Sub(p.Now))
}
