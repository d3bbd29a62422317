package ui

import (
	"net/http"
	"regexp"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/outpost-voice/outpost/account"
)

// e164 is what the override form accepts as a number.
var e164 = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)

// sdgsBody is the data of the SDGs page: the live groups and, for an
// admin, the emergency override form.
type sdgsBody struct {
	groups
	CanOverride bool
	Users       []account.User
	Done        string // a notice after a change
	// The form's values, kept after a refusal.
	SDG, Target, User, Number string
}

func (u *UI) renderSDGs(c *gin.Context, status int, body sdgsBody, msg string) {
	sess := sessionOf(c)
	ctx := c.Request.Context()
	body.groups = u.groups(ctx)
	body.CanOverride = u.d.Override != nil && sess.role == account.RoleAdmin
	if body.CanOverride {
		users, err := readAll(ctx, u, "users", u.d.Users)
		if err != "" && msg == "" {
			msg = err
		}
		body.Users = users
	}
	u.render(c, status, "sdgs", page{Title: "SDGs", Nav: "/sdgs", User: sess.user, CSRF: sess.csrf, Message: msg, Body: body})
}

// overrideSDG re-points an SDG at a user or a number (the two common
// emergency re-points) through the API's logic (Deps.Override).
func (u *UI) overrideSDG(c *gin.Context) {
	body := sdgsBody{SDG: strings.TrimSpace(c.PostForm("sdg")), Target: c.PostForm("target"),
		User: strings.TrimSpace(c.PostForm("user")), Number: strings.TrimSpace(c.PostForm("number"))}
	var route *account.Route
	msg := ""
	switch {
	case body.Target == "user" && body.User != "":
		route = &account.Route{Type: account.RouteUser, ID: body.User}
	case body.Target == "number" && e164.MatchString(body.Number):
		route = &account.Route{Type: account.RouteNumber, Number: body.Number}
	case body.Target == "number":
		msg = "Number: an E.164 number, e.g. +14155550123."
	default:
		msg = "Choose a user, or a number, to point the SDG at."
	}
	u.changeOverride(c, body, route, msg)
}

// clearOverride gives an SDG its snapshot route back.
func (u *UI) clearOverride(c *gin.Context) {
	u.changeOverride(c, sdgsBody{SDG: strings.TrimSpace(c.PostForm("sdg"))}, nil, "")
}

func (u *UI) changeOverride(c *gin.Context, body sdgsBody, route *account.Route, msg string) {
	sess := sessionOf(c)
	switch {
	case u.d.Override == nil:
		u.renderSDGs(c, http.StatusNotFound, body, "This node cannot override SDGs from the UI.")
		return
	case sess.role != account.RoleAdmin:
		u.renderSDGs(c, http.StatusForbidden, body, "Only an admin may override an SDG; you are signed in as a viewer.")
		return
	case body.SDG == "":
		u.renderSDGs(c, http.StatusBadRequest, body, "Choose an SDG.")
		return
	case msg != "":
		u.renderSDGs(c, http.StatusBadRequest, body, msg)
		return
	}
	if status, err := u.d.Override(c.Request.Context(), body.SDG, route, sess.user); err != nil {
		u.d.Log.Warn("ui: sdg override refused", "sdg_id", body.SDG, "user", sess.user, "status", status, "error", err)
		if status < 400 {
			status = http.StatusBadGateway
		}
		u.renderSDGs(c, status, body, "Nothing changed: "+err.Error())
		return
	}
	done := "overridden"
	if route == nil {
		done = "cleared"
	}
	u.d.Log.Info("ui: sdg override "+done, "sdg_id", body.SDG, "user", sess.user, "route", RouteLine(route))
	c.Header("Cache-Control", "no-store")
	c.Redirect(http.StatusSeeOther, "/sdgs?done="+done)
}
