package ui

import (
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
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
}

// phones is the data of the Phones page.
type phones struct {
	Now      time.Time
	Query    string
	Err      string
	Bindings []Binding
}

func (u *UI) phonesPage(c *gin.Context) {
	sess := sessionOf(c)
	q := strings.TrimSpace(c.Query("q"))
	if len(q) > maxQuery {
		q = q[:maxQuery]
	}
	body := phones{Now: u.d.Now(), Query: q}
	if u.d.Bindings != nil {
		bs, err := u.d.Bindings(c.Request.Context(), q)
		if err != nil {
			u.d.Log.Warn("ui: read bindings", "error", err)
			body.Err = "The phones cannot be read right now: " + err.Error()
		}
		body.Bindings = bs
	}
	u.render(c, http.StatusOK, "phones", page{Title: "Phones", Nav: "/phones", User: sess.user, CSRF: sess.csrf, Body: body})
}

// ExpiresIn is how long until b expires, for the page.
func (p phones) ExpiresIn(b Binding) string {
	return formatDuration(b.Expires.Sub(p.Now))
}
