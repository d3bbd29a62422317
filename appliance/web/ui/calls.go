package ui

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
)

// Call history pages.
const (
	historyPage      = 100
	maxHistoryOffset = 100000
)

// Call is a call in progress on this node (calls.CallStatus).
type Call struct {
	CallID   string
	Caller   string
	Callee   string
	Dialled  string
	State    string // routing, ivr, connected
	Route    string // the path through SDGs and IVR menus so far
	Start    time.Time
	Answer   time.Time
	Anchored bool
	ID       string // the call's record ID (the API's call id)
	Owner    string // the owner's user ID
	// Participants (names) and Invitations (one line each) of a call
	// someone was invited to; empty for a plain call.
	Participants []string
	Invitations  []string
}

// CallRecord is a call of the outage journal (store.CallRecord).
type CallRecord struct {
	ID          string
	Caller      string
	CallerName  string
	Callee      string
	Dialled     string
	Destination string
	Start       time.Time
	Answer      time.Time
	End         time.Time
	Disposition string
	Status      int
	Node        string
	Route       string
}

// Duration is how long the call was connected (zero when never answered).
func (r CallRecord) Duration() time.Duration {
	if r.Answer.IsZero() {
		return 0
	}
	return r.End.Sub(r.Answer)
}

// active is the data of the Calls page's live part.
type active struct {
	Now   time.Time
	Err   string
	Calls []Call
}

// callsBody is the data of the Calls page.
type callsBody struct {
	Active     active
	HistoryErr string
	History    []CallRecord
	Offset     int
	Newer      string // link to the newer page; empty on the first
	Older      string // link to the older page; empty on the last
}

func (u *UI) active(ctx context.Context) active {
	cs, err := readAll(ctx, u, "calls", u.d.Calls)
	return active{Now: u.d.Now(), Err: err, Calls: cs}
}

func (u *UI) callsPage(c *gin.Context) {
	sess := sessionOf(c)
	ctx := c.Request.Context()
	off, _ := strconv.Atoi(c.Query("offset"))
	off = min(max(off, 0), maxHistoryOffset)
	body := callsBody{Active: u.active(ctx), Offset: off}
	if u.d.History != nil {
		recs, more, err := u.d.History(ctx, off, historyPage)
		if err != nil {
			u.d.Log.Warn("ui: read journal", "error", err)
			body.HistoryErr = "The call history cannot be read right now: " + err.Error()
		}
		body.History = recs
		if more && off+historyPage <= maxHistoryOffset {
			body.Older = "/calls?offset=" + strconv.Itoa(off+historyPage)
		}
	}
	if off > 0 {
		body.Newer = "/calls?offset=" + strconv.Itoa(max(off-historyPage, 0))
	}
	u.render(c, http.StatusOK, "calls", page{Title: "Calls", Nav: "/calls", User: sess.user, CSRF: sess.csrf, Body: body})
}
