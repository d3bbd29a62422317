package ui

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// settingsBody is the data of the Settings page.
type settingsBody struct {
	YAML string
	Err  string
}

func (u *UI) settingsPage(c *gin.Context) {
	sess := sessionOf(c)
	var body settingsBody
	if u.d.Settings == nil {
		body.Err = "This node's configuration is not available to the UI."
	} else if y, err := u.d.Settings(); err != nil {
		u.d.Log.Warn("ui: render settings", "error", err)
		body.Err = "The configuration cannot be shown right now: " + err.Error()
	} else {
		body.YAML = y
	}
	u.render(c, http.StatusOK, "settings", page{Title: "Settings", Nav: "/settings", User: sess.user, CSRF: sess.csrf, Body: body})
}
